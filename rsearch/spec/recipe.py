"""Recipe: the fully resolved configuration of one training run (one trial).

Every knob the seed papers vary is a field here, named after the paper's or timm's term, so a
search space addresses it by a dotted path (`optim.lr`, `augment.mixup`). Component names
(models, optimizers) are timm's and are checked against the installed timm. The model and
data sections live in their own modules (rsearch.spec.model_section, rsearch.spec.data_section).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from rsearch.spec.base import Strict
from rsearch.spec.data_section import DataConfig
from rsearch.spec.model_section import ModelConfig
from rsearch.spec.names import check_model_name, check_optimizer_name
from rsearch.spec.stream_limits import shard_refusal
from rsearch.spec.strength import apply_strength

Precision = Literal["fp32", "bf16", "fp16"]
RANDAUGMENT_INCREASING_MAX = 10
"""Highest magnitude timm's severity-increasing RandAugment ops are defined for."""


class OptimConfig(Strict):
    """Optimizer (timm's create_optimizer_v2) and gradient handling."""

    name: str = "sgd"
    """timm optimizer name (sgd, momentum, adamw, lamb, lars, ...) or `sam` (around sam_base)."""
    lr: float = Field(0.05, gt=0.0, le=100.0)
    """Peak learning rate."""
    weight_decay: float = Field(5e-5, ge=0.0, le=1.0)
    """Decoupled or L2 weight decay as the optimizer defines it."""
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    """Momentum (SGD family)."""
    sam_rho: float = Field(0.05, gt=0.0, le=2.0)
    """SAM neighbourhood size; used only when name is `sam`."""
    sam_base: str = "sgd"
    """The optimizer SAM wraps."""
    clip_grad: float | None = Field(None, gt=0.0)
    """Gradient clipping threshold; off when unset."""
    clip_mode: Literal["norm", "value", "agc"] = "norm"
    """norm, value, or agc (adaptive gradient clipping, NFNets)."""
    layer_decay: float | None = Field(None, gt=0.0, le=1.0)
    """Layer-wise LR decay (BEiT/DeiT III): each layer below the head trains at this factor
    times the LR of the layer above (timm's create_optimizer_v2 layer_decay); off when unset.
    A fine-tuning knob too: the classifier keeps optim.lr, early layers move least."""
    backbone_lr_scale: float | None = Field(None, gt=0.0, le=1.0)
    """Fine-tuning: every parameter but the classifier's trains at this times the LR (the
    classifier keeps optim.lr); combines with layer_decay by multiplying; off when unset."""

    @field_validator("name")
    @classmethod
    def _known_optimizer(cls, name: str) -> str:
        return name if name == "sam" else check_optimizer_name(name)

    @field_validator("sam_base")
    @classmethod
    def _known_base(cls, name: str) -> str:
        if name == "sam":
            raise ValueError("sam_base must be a plain optimizer, not sam")
        return check_optimizer_name(name)


class ScheduleConfig(Strict):
    """Learning-rate schedule (timm's create_scheduler_v2), stepped per epoch."""

    name: Literal["cosine", "step", "multistep", "constant"] = "cosine"
    """Schedule shape."""
    warmup_epochs: int = Field(0, ge=0)
    """Linear warmup epochs from warmup_lr."""
    warmup_lr: float = Field(1e-5, ge=0.0)
    """Learning rate at the start of warmup."""
    min_lr: float = Field(0.0, ge=0.0)
    """Floor of the cosine schedule."""
    decay_epochs: list[int] = Field(default_factory=lambda: [30, 60, 80])
    """Epochs at which step/multistep decay (step uses the first as its period)."""
    decay_rate: float = Field(0.1, gt=0.0, le=1.0)
    """Factor applied at each decay."""
    restart_per_stage: bool = False
    """Start warm-up and the schedule afresh at each data.progressive stage and after the last
    one; by default one schedule spans all epochs, so a promoted trial continues its cycle."""


class LossConfig(Strict):
    """Training loss."""

    name: Literal["ce", "bce"] = "ce"
    """Cross-entropy, or binary cross-entropy as in ResNet strikes back."""
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    """Label smoothing."""
    bce_target_thresh: float | None = Field(None, gt=0.0, lt=1.0)
    """BCE only: binarise (mixed) targets above this threshold (RSB uses 0.2)."""
    class_weights: Literal["none", "balanced"] | list[Annotated[float, Field(gt=0.0)]] = "none"
    """Per-class weights of the cross-entropy: none, balanced (inverse class frequency of the
    training split, n / (classes x count), scikit-learn's compute_class_weight), or one
    positive weight per class. Cross-entropy only (see the validator for BCE)."""

    @model_validator(mode="after")
    def _weights_with_ce(self) -> LossConfig:
        # timm's BinaryCrossEntropy takes a per-class `weight`, but it scales class c's binary
        # term in every sample (negatives included), so it does not weight samples by their
        # class as cross-entropy's weight does; `pos_weight` is a different (positive/negative)
        # balance. Neither is what class_weights means, so BCE refuses them.
        if self.name == "bce" and self.class_weights != "none":
            raise ValueError(
                "loss.class_weights applies to cross-entropy (name: ce); with bce set "
                "class_weights: none, or use data.sampler: balanced"
            )
        return self


class AugmentConfig(Strict):
    """Data augmentation, each as plain fields (the timm strings are built in one adapter)."""

    random_resized_crop: bool = True
    """Random-resized crop at train time (else resize only)."""
    crop_scale_min: float = Field(0.08, gt=0.0, le=1.0)
    """Smallest area fraction of the random-resized crop."""
    hflip: float = Field(0.5, ge=0.0, le=1.0)
    """Horizontal flip probability."""
    randaugment_layers: int = Field(0, ge=0, le=10)
    """RandAugment operations per image; 0 turns RandAugment off."""
    randaugment_magnitude: float = Field(9.0, ge=0.0, le=30.0)
    """RandAugment magnitude (timm's m, 0-10 typical; ResNet-RS uses up to 15)."""
    randaugment_magnitude_std: float = Field(0.5, ge=0.0)
    """Per-op noise on the magnitude (timm's mstd)."""
    randaugment_increasing: bool = True
    """Use the severity-increasing op set (timm's inc1)."""
    random_erasing: float = Field(0.0, ge=0.0, le=1.0)
    """Random-erasing probability."""
    mixup: float = Field(0.0, ge=0.0)
    """Mixup alpha; 0 is off."""
    cutmix: float = Field(0.0, ge=0.0)
    """CutMix alpha; 0 is off."""
    mix_prob: float = Field(1.0, ge=0.0, le=1.0)
    """Probability of mixing a batch when mixup or CutMix is on."""
    mix_switch_prob: float = Field(0.5, ge=0.0, le=1.0)
    """Probability of CutMix instead of mixup when both are on."""
    repeated_aug: int = Field(1, ge=1, le=8)
    """Repeated augmentation: each image appears this many times per epoch (DDP)."""
    strength: float | None = Field(None, ge=0.0, le=1.0)
    """One augmentation-strength dimension in [0, 1]: sets randaugment_layers/_magnitude,
    crop_scale_min and random_erasing by rsearch.spec.strength's table; null leaves them
    as given. Those fields set away from their defaults and from the table are refused."""

    @model_validator(mode="after")
    def _strength_sets_fields(self) -> AugmentConfig:
        apply_strength(self)
        return self

    @model_validator(mode="after")
    def _increasing_ops_stop_at_ten(self) -> AugmentConfig:
        # timm's severity-increasing ops map magnitudes 0-10 onto their whole range; above 10
        # posterize asks for negative bits and the run dies mid-epoch. The TF op set
        # (ResNet-RS's, magnitudes up to 15+) scales past 10.
        if (
            self.randaugment_layers
            and self.randaugment_increasing
            and self.randaugment_magnitude > RANDAUGMENT_INCREASING_MAX
        ):
            raise ValueError(
                f"randaugment_magnitude {self.randaugment_magnitude:g} is above "
                f"{RANDAUGMENT_INCREASING_MAX}, which the increasing op set "
                "(randaugment_increasing: true) cannot go past; lower the magnitude or set "
                "randaugment_increasing: false (the TF op set ResNet-RS uses)"
            )
        return self


class EmaConfig(Strict):
    """Exponential moving average of the weights (timm's ModelEmaV3)."""

    enabled: bool = False
    """Keep and evaluate an EMA copy of the weights."""
    decay: float = Field(0.9998, gt=0.0, lt=1.0)
    """EMA decay per optimizer step."""
    warmup: bool = True
    """Ramp the decay up over the first steps (useful on short runs)."""


class TeacherConfig(Strict):
    """One teacher of a distillation: a checkpoint file, or the best trials of a search.

    Paths are relative to the working directory, as model.pretrained and data.path are; they
    are made absolute when a search starts (or `rsearch train` runs), before any trial.
    """

    checkpoint: str | None = None
    """An rsearch checkpoint file written by fit (its recipe rebuilds the teacher's model), a
    checkpoint directory holding one, or a plain state dict together with `model`."""
    model: str | None = None
    """timm model name of a plain state-dict checkpoint (an rsearch checkpoint names its own)."""
    run: str | None = None
    """A search's run directory, or a glob pattern (`rsearch-runs/quickstart-*`) naming the
    newest matching one when the search starts: its top_k trials by its (first) objective
    teach, each from its last checkpoint. A pattern matching nothing is accepted at
    validation (the run it names may not exist yet) and refused when training starts."""
    top_k: int = Field(1, ge=1, le=16)
    """How many of the run's best completed trials teach (with `run` only)."""

    @field_validator("model")
    @classmethod
    def _known_teacher_model(cls, name: str | None) -> str | None:
        return None if name is None else check_model_name(name)

    @model_validator(mode="after")
    def _one_source(self) -> TeacherConfig:
        if (self.checkpoint is None) == (self.run is None):
            raise ValueError("a teacher is either {checkpoint: PATH} or {run: RUN_DIR, top_k: K}")
        if self.run is not None and self.model is not None:
            raise ValueError("model goes with checkpoint; a run's trials name their own models")
        # The default is accepted: a dumped recipe (a run's resolved spec) writes every field.
        if self.checkpoint is not None and self.top_k != 1:
            raise ValueError("top_k goes with run, not checkpoint")
        return self


class DistillConfig(Strict):
    """MEAL V2 distillation: the student learns the averaged soft labels of a teacher ensemble.

    Off while `teachers` is empty. MEAL V2's optional discriminator is not built: the paper's
    own ablation credits it with a small gain, and it needs a second network and optimiser
    trained alongside the student; the loss here is MEAL V2's KL term (plus an optional
    hard-label term, which MEAL V2 leaves out).
    """

    teachers: list[TeacherConfig] = Field(default_factory=list)
    """The ensemble; each teacher runs in eval mode without gradients."""
    temperature: float = Field(1.0, gt=0.0, le=100.0)
    """Softmax temperature of teachers and student in the KL term (scaled back by T^2)."""
    hard_weight: float = Field(0.0, ge=0.0, le=100.0)
    """Weight of the recipe's loss on the one-hot (or mixed) labels; 0 drops them (MEAL V2)."""

    @property
    def enabled(self) -> bool:
        """Whether the recipe distils."""
        return bool(self.teachers)


QuantMethod = Literal["minmax", "lsq"]
BITS_MIN, BITS_MAX = 2, 8
"""Bit-widths quantisation-aware training accepts."""


class QuantConfig(Strict):
    """Quantisation-aware training: fake-quantised weights and activations (PyTorch's
    torch.ao.quantization), bit-widths as search dimensions. Off while both widths are null."""

    weight_bits: int | None = Field(None, ge=BITS_MIN, le=BITS_MAX)
    """Bits of every conv/linear weight (per output channel, symmetric); null: full precision."""
    act_bits: int | None = Field(None, ge=BITS_MIN, le=BITS_MAX)
    """Bits of every conv/linear input (per tensor, affine); null: full precision."""
    first_last_bits: int | None = Field(8, ge=BITS_MIN, le=BITS_MAX)
    """Bits of the first conv and the classifier, for what the rest quantises (8 in the 4-bit
    ResNet paper); null keeps these two layers at full precision."""
    method: QuantMethod = "minmax"
    """minmax: FakeQuantize with min/max observers; lsq: learned step size
    (_LearnableFakeQuantize, scales trained with the weights)."""

    @property
    def enabled(self) -> bool:
        """Whether anything is quantised."""
        return self.weight_bits is not None or self.act_bits is not None


class Recipe(Strict):
    """Everything one trial trains with."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    ema: EmaConfig = Field(default_factory=EmaConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    quant: QuantConfig = Field(default_factory=QuantConfig)
    epochs: int = Field(10, ge=1, le=10000)
    """Training epochs (also the budget unit of the schedulers)."""
    precision: Precision = "fp32"
    """fp32, or bf16/fp16 autocast."""
    channels_last: bool = False
    """Train in channels_last memory layout."""
    compile: bool = False
    """torch.compile the model."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto picks CUDA when present, else the CPU."""
    seed: int = 0
    """Seed of every random generator of the run."""
    deterministic: bool = False
    """Deterministic kernels (slower); needed for bit-exact resume comparisons."""

    @model_validator(mode="after")
    def _stages_fit_in_epochs(self) -> Recipe:
        staged = sum(stage.epochs for stage in self.data.progressive)
        if staged > self.epochs:
            raise ValueError(
                f"data.progressive stages train {staged} epochs but the recipe has "
                f"epochs: {self.epochs}; lower the stages' epochs or raise epochs"
            )
        return self

    @model_validator(mode="after")
    def _balanced_without_repeats(self) -> Recipe:
        # Repeated augmentation repeats each image of a uniform order; a balanced order draws
        # with replacement already, and timm's RepeatAugSampler cannot take its draws.
        if self.data.sampler == "balanced" and self.augment.repeated_aug > 1:
            raise ValueError(
                "data.sampler: balanced cannot be combined with augment.repeated_aug > 1; use one"
            )
        return self

    @model_validator(mode="after")
    def _streamable_when_shards(self) -> Recipe:
        refusal = shard_refusal(self.data, self.loss)
        if refusal:
            raise ValueError(f"data.dataset shards: {refusal}")
        return self

    def stage_at(self, epoch: int) -> tuple[int, float]:
        """(train image size, training-set share) of a 0-based epoch under data.progressive."""
        start = 0
        for stage in self.data.progressive:
            if epoch < start + stage.epochs:
                return (stage.image_size or self.data.image_size, stage.fraction or 1.0)
            start += stage.epochs
        return self.data.image_size, 1.0
