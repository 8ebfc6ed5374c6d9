"""Recipe: the fully resolved configuration of one training run (one trial).

Every knob the seed papers vary is a field here, named after the paper's or timm's term, so a
search space addresses it by a dotted path (`optim.lr`, `augment.mixup`). Component names
(models, optimizers) are timm's and are checked against the installed timm.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from rsearch.spec import layers, pretrained_spec
from rsearch.spec.base import Strict
from rsearch.spec.metrics import split_name
from rsearch.spec.names import check_model_name, check_optimizer_name
from rsearch.spec.stream_limits import shard_refusal
from rsearch.spec.strength import apply_strength

DatasetKind = Literal["digits", "synthetic", "image_folder", "cifar10", "cifar100", "shards"]
Precision = Literal["fp32", "bf16", "fp16"]
RANDAUGMENT_INCREASING_MAX = 10
"""Highest magnitude timm's severity-increasing RandAugment ops are defined for."""


class ModelConfig(Strict):
    """Architecture: a timm model and the ResNet-family scaling knobs."""

    name: str = "resnet18"
    """timm model name (`timm.list_models()`), built with pretrained=False."""
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout before the classifier."""
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0)
    """Stochastic depth: the drop probability of the last block (linear in depth)."""
    small_stem: bool = False
    """Replace the stem with a 3x3 stride-1 conv and no max-pool (for 32-64 px inputs)."""
    depth_multiplier: float = Field(1.0, gt=0.0, le=8.0)
    """Multiplies the blocks per stage (ResNet family; rounded up, at least 1 a stage)."""
    width_multiplier: float = Field(1.0, gt=0.0, le=8.0)
    """Multiplies the channels of every stage (ResNet family)."""
    layers: list[int] | None = None
    """Explicit blocks per stage, e.g. [3, 24, 36, 3] (ResNet-RS-200); overrides depth."""
    pretrained: str | None = None
    """Local weights file to start from (fine-tuning): a timm checkpoint (a state dict, or one
    under `state_dict`/`state_dict_ema`/`model`) or an rsearch checkpoint (file or directory).
    Nothing is downloaded. A classifier for another class count is re-made. A relative path
    is made absolute against the working directory when the recipe is read."""
    frozen_stages: int | None = Field(None, ge=0, le=4)
    """Fine-tuning: freeze the stem (0) and the first N stages (1-4) of a ResNet-family model:
    no gradients, batch norm on its running statistics; null freezes nothing."""
    patch_size: int | None = Field(None, ge=1, le=256)
    """Patch size of a ViT or MLP-Mixer (timm's vision_transformer and mlp_mixer families);
    defaults to the model's own. Must divide every image size of the run (4 px at 32 px)."""
    norm_layer: str | None = None
    """timm norm layer replacing the model's own (batchnorm, groupnorm, evonorm_s0, ...; see
    rsearch.spec.layers for which model families take which); null keeps the model's."""
    norm_groups: int | None = Field(None, ge=1)
    """Groups of a grouped norm_layer (groupnorm, evonorm_s*); null is timm's 32."""
    act_layer: str | None = None
    """timm activation replacing the model's own (relu, silu, gelu, mish, ...); null keeps it."""

    @model_validator(mode="before")
    @classmethod
    def _renamed_checkpoint(cls, data: Any) -> Any:
        return pretrained_spec.renamed_checkpoint(data)

    @field_validator("pretrained", mode="before")
    @classmethod
    def _local_file(cls, value: Any) -> Any:
        return pretrained_spec.local_file(value)

    @field_validator("norm_layer")
    @classmethod
    def _accepted_norm(cls, norm: str | None, info: ValidationInfo) -> str | None:
        layers.check_norm_name(norm)
        problem = layers.norm_problem(info.data["name"], norm) if "name" in info.data else None
        if problem:
            raise ValueError(problem)
        return norm

    @field_validator("norm_groups")
    @classmethod
    def _grouped_norm(cls, groups: int | None, info: ValidationInfo) -> int | None:
        problem = layers.groups_problem(info.data.get("norm_layer"), groups)
        if problem and "norm_layer" in info.data:
            raise ValueError(problem)
        return groups

    @field_validator("act_layer")
    @classmethod
    def _accepted_act(cls, act: str | None, info: ValidationInfo) -> str | None:
        layers.check_act_name(act)
        if "name" in info.data and "norm_layer" in info.data:
            problem = layers.act_problem(info.data["name"], info.data["norm_layer"], act)
            if problem:
                raise ValueError(problem)
        return act

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return check_model_name(name)

    @field_validator("layers")
    @classmethod
    def _positive_layers(cls, layers: list[int] | None) -> list[int] | None:
        if layers is not None and (not layers or any(n < 1 for n in layers)):
            raise ValueError("layers must list at least one stage, each with >= 1 block")
        return layers


class Stage(Strict):
    """A stretch of training at a lower fidelity: smaller images and/or less data.

    Stages run in order from the first epoch; epochs after the last stage train at
    `data.image_size` on the whole training set. A trial stopped after a stage has spent that
    stage's (smaller) compute, which is what a compute-unit scheduler counts (FFCV's
    progressive resizing, ResNet-RS's low-resolution early epochs).
    """

    epochs: int = Field(ge=1)
    """Epochs trained in this stage."""
    image_size: int | None = Field(None, ge=8, le=1024)
    """Train resolution of the stage; defaults to data.image_size."""
    fraction: float | None = Field(None, gt=0.0, le=1.0)
    """Share of the training set (of data.fraction's subset) seen in the stage; defaults to all
    of it. Subsets are nested: a later, larger stage keeps the earlier stage's images."""


class DataConfig(Strict):
    """Where the images come from and how they are batched."""

    dataset: DatasetKind = "digits"
    """digits (bundled), synthetic, image_folder (train/ and val/ class folders), cifar10/100,
    shards (`rsearch data pack` output, streamed)."""
    path: str | None = None
    """Directory of an image_folder or of CIFAR python batches; of shards, also an s3:// or
    gs:// URI."""
    image_size: int = Field(32, ge=8, le=1024)
    """Train resolution in pixels."""
    eval_image_size: int | None = Field(None, ge=8, le=1024)
    """Test resolution (defaults to image_size); RSB A3 trains at 160 and tests at 224."""
    crop_pct: float = Field(1.0, gt=0.0, le=1.0)
    """Center-crop fraction at evaluation (timm's crop_pct)."""
    batch_size: int = Field(64, ge=1)
    """Global batch size across all workers of a trial."""
    fraction: float = Field(1.0, gt=0.0, le=1.0)
    """Use this stratified fraction of the training set (the budget knob of fast searches)."""
    num_classes: int = Field(10, ge=2)
    """Classes of the synthetic dataset (other datasets know their own)."""
    synthetic_size: int = Field(1024, ge=1)
    """Training images of the synthetic dataset."""
    num_workers: int = Field(0, ge=0)
    """Loader processes for streamed datasets (in-memory ones need none)."""
    progressive: list[Stage] = Field(default_factory=list)
    """Low-fidelity stages trained first (progressive resizing / data fraction), in order."""
    eval_rule: Literal["final", "fixres"] = "final"
    """Evaluate at the final resolution (eval_image_size or image_size) every epoch, or, with
    fixres, at the current train resolution times fixres_ratio (FixRes's train/test ratio)."""
    fixres_ratio: float = Field(1.15, ge=1.0, le=2.0)
    """Test-to-train resolution ratio of the fixres eval rule."""
    train_resolutions: list[Annotated[int, Field(ge=8, le=1024)]] = Field(default_factory=list)
    """Multi-resolution training (ResFormer): each step trains at a resolution drawn uniformly
    from this set (seeded by the recipe's seed and the epoch, so a resumed run draws the same
    sequence); empty trains every step at image_size. In-memory data only; not combined with
    progressive (which fixes each epoch's resolution)."""
    multi_resolution: bool = True
    """Use train_resolutions; false trains at image_size only. A search compares single- and
    multi-resolution training by this switch (categorical choices are scalars, not lists)."""
    eval_resolutions: list[Annotated[int, Field(ge=8, le=1024)]] = Field(default_factory=list)
    """Test resolutions evaluated every epoch besides the usual one, each reported as
    val_top1@N and val_loss@N, with val_top1@mean their average; empty evaluates none."""
    one_vs_rest: int | None = Field(None, ge=0)
    """Make the task binary: this class (by index: digit 3 of digits, the n-th class folder
    in sorted order) becomes class 1, every other class 0; unset keeps the dataset's classes."""
    positive_class: Literal[0, 1] = 1
    """The positive class of a two-class task (AUC, F1, sensitivity, specificity)."""
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    """A two-class image is predicted positive when its positive-class probability is at least
    this (balanced accuracy, F1, sensitivity, specificity)."""
    class_metrics: bool | None = None
    """Report AUC, balanced accuracy, F1 (and, for two classes, sensitivity and specificity)
    every epoch; null reports them for tasks of at most 100 classes. They gather every
    evaluated image's class probabilities from all workers and cost tens of milliseconds an
    evaluation on a few classes, but ~36 s on 50,000 images of 1000 classes (one CPU core)."""
    eval_splits: dict[str, str] = Field(default_factory=dict)
    """Extra evaluation sets (out-of-distribution robustness): name -> image folder of class
    subfolders named as the training classes; each evaluated every epoch and reported as
    <name>_top1, <name>_loss, <name>_auc, ... (the val_ metrics' family)."""
    sampler: Literal["uniform", "balanced"] = "uniform"
    """Training order: uniform (each image once an epoch), or balanced (an epoch's worth of
    draws with replacement, each class drawn equally often; for imbalanced data)."""
    val_fraction: float | None = Field(None, gt=0.0, lt=1.0)
    """image_folder without a val/ folder: carve this stratified fraction of train/ as the
    validation split (class proportions kept); null needs a val/ folder."""
    split_seed: int = 0
    """Seed of the val_fraction carve. Not the recipe seed: trials of a search that vary the
    seed still share one split, so their validation scores compare."""

    @model_validator(mode="after")
    def _path_when_needed(self) -> DataConfig:
        if self.dataset in ("image_folder", "cifar10", "cifar100", "shards") and not self.path:
            raise ValueError(f"dataset {self.dataset!r} needs data.path")
        return self

    @field_validator("eval_splits")
    @classmethod
    def _split_names(cls, splits: dict[str, str]) -> dict[str, str]:
        for name, folder in splits.items():
            split_name(name)
            if not folder:
                raise ValueError(f"evaluation split {name!r} needs a folder path")
        return splits

    @model_validator(mode="after")
    def _resolution_sets(self) -> DataConfig:
        for name in ("train_resolutions", "eval_resolutions"):
            sizes = getattr(self, name)
            if len(set(sizes)) != len(sizes):
                raise ValueError(f"data.{name} repeats a resolution: {sizes}")
        if self.train_resolutions and self.progressive:
            raise ValueError(
                "data.train_resolutions cannot be combined with data.progressive: progressive "
                "fixes each epoch's resolution, train_resolutions draws each step's; use one"
            )
        return self

    @model_validator(mode="after")
    def _carve_image_folders_only(self) -> DataConfig:
        if self.val_fraction is not None and self.dataset != "image_folder":
            raise ValueError(
                f"data.val_fraction carves a validation split from an image_folder's train/; "
                f"dataset {self.dataset!r} brings its own validation split"
            )
        return self


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


ARCHITECTURE = (
    "name",
    "small_stem",
    "depth_multiplier",
    "width_multiplier",
    "layers",
)
"""The model fields that shape the architecture. Dropout and stochastic depth scale
activations (no multiply-add is counted for them) and weights do not change a count."""


LAYER_FIELDS = ("patch_size", "norm_layer", "norm_groups", "act_layer")
"""Model fields that swap layers or patches: part of the architecture when set (unset, they
leave the keys of speeds and costs recorded before they existed unchanged)."""


def architecture(model: ModelConfig) -> str:
    """The fields of a model section that shape its architecture, as JSON."""
    fields = model.model_dump(mode="json", include=set(ARCHITECTURE + LAYER_FIELDS))
    for name in LAYER_FIELDS:
        if fields[name] is None:
            del fields[name]
    return json.dumps(fields, sort_keys=True)
