"""MEAL V2 distillation: a teacher ensemble's averaged soft labels as the student's targets.

Shen & Savvides, "MEAL V2: Boosting Vanilla ResNet-50 to 80%+ Top-1 Accuracy on ImageNet
without Tricks" (arXiv:2009.08453). The student minimises the KL divergence from the mean of
the teachers' softened probabilities to its own (times T^2, so gradients keep their size
across temperatures), plus `hard_weight` times the recipe's own loss on the (mixed) labels.
The paper's optional discriminator is not built (see DistillConfig).

Teachers are rebuilt from their checkpoints with `build_model`, run in eval mode under
inference_mode with the student's device, memory layout and autocast, and see exactly the
images the student sees (mixed ones too). When the train transform gives an image the same
pixels every epoch, the ensemble's output for it is computed once and cached by image index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rsearch.spec.recipe import DistillConfig, Recipe, TeacherConfig
from rsearch.spec.resolutions import train_sizes
from rsearch.train.checkpoint import FORMAT, checkpoint_file, load_file, model_state
from rsearch.train.data import DataBundle, MemoryBatches
from rsearch.train.errors import TrainInputError
from rsearch.train.model import build_model
from rsearch.train.runtime import autocast


@dataclass(frozen=True)
class DistillTargets:
    """What the distillation loss compares a batch's student logits with."""

    soft: torch.Tensor
    """The teachers' mean softened probabilities (N x classes, float32)."""
    hard: torch.Tensor
    """The batch's own targets: labels, or dense mixed/smoothed targets."""


class DistillLoss(nn.Module):
    """KL(teachers' mean || student) at temperature T, times T^2, plus hard_weight x base."""

    def __init__(self, cfg: DistillConfig, base: nn.Module):
        """Args: cfg: the recipe's distill section; base: the recipe's loss on the labels."""
        super().__init__()
        self.temperature = cfg.temperature
        self.hard_weight = cfg.hard_weight
        self.base = base

    def forward(self, logits: torch.Tensor, targets: DistillTargets) -> torch.Tensor:
        t = self.temperature
        log_student = F.log_softmax(logits.float() / t, dim=1)
        loss = F.kl_div(log_student, targets.soft, reduction="batchmean") * t * t
        if self.hard_weight > 0:
            loss = loss + self.hard_weight * self.base(logits, targets.hard)
        return loss


class TeacherEnsemble:
    """The teachers, frozen, and the cache of their averaged outputs by image index."""

    def __init__(
        self,
        teachers: list[nn.Module],
        temperature: float,
        data: DataBundle,
        dtype: torch.dtype | None,
        cache: bool,
    ):
        """Args:
        teachers: the teacher models, on the training device, frozen.
        temperature: softmax temperature.
        data: the run's data (its current training batches tell which images a batch holds).
        dtype: the student's autocast dtype (None: fp32).
        cache: the train transform is deterministic per image: outputs may be reused.
        """
        self.teachers = teachers
        self.temperature = temperature
        self.data = data
        self.dtype = dtype
        self.cache_on = cache
        self._cache: torch.Tensor | None = None
        self._filled: torch.Tensor | None = None
        self._cached_size: int | None = None
        self.computed = 0
        """Images the teachers were run on (tests and docs read it)."""

    @torch.inference_mode()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The teachers' mean softened probabilities of a batch of model inputs."""
        total = torch.zeros((), device=x.device)
        for teacher in self.teachers:
            with autocast(x.device, self.dtype):
                logits = teacher(x)
            total = total + F.softmax(logits.float() / self.temperature, dim=1)
        self.computed += x.shape[0]
        return total / len(self.teachers)

    def targets(self, x: torch.Tensor, hard: torch.Tensor) -> DistillTargets:
        """The batch's distillation targets, from the cache where it holds them."""
        index = self._batch_index(x)
        if index is None:
            return DistillTargets(self.probabilities(x).clone(), hard)
        cache, filled = self._cache_for(x)
        missing = ~filled[index]
        if bool(missing.any()):
            fresh = self.probabilities(x[missing])
            with torch.no_grad():
                cache[index[missing]] = fresh
                filled[index[missing]] = True
        return DistillTargets(cache[index].clone(), hard)

    def _batch_index(self, x: torch.Tensor) -> torch.Tensor | None:
        batches = self.data.train
        if not self.cache_on or not isinstance(batches, MemoryBatches):
            return None
        index = batches.current
        if index is None or index.shape[0] != x.shape[0]:
            return None
        return index

    def _cache_for(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # A new train resolution (data.progressive) gives new pixels: start the cache afresh.
        if self._cache is None or self._cached_size != x.shape[-1]:
            images = self.data.maker.source.train
            count = len(images.labels)
            classes = self.data.num_classes
            # Plain tensors, not inference ones: the loss saves its targets for backward.
            self._cache = torch.zeros(count, classes, device=x.device)
            self._filled = torch.zeros(count, dtype=torch.bool, device=x.device)
            self._cached_size = x.shape[-1]
        assert self._filled is not None
        return self._cache, self._filled


def cacheable(recipe: Recipe, in_memory: bool) -> bool:
    """Whether an image's training input is the same every epoch, so its outputs may be reused.

    Any random crop, flip, RandAugment, random erasing or mixup/CutMix changes the pixels
    the teachers would see from one epoch to the next; streamed data carries no image index.
    """
    aug = recipe.augment
    return (
        in_memory
        and not aug.random_resized_crop
        and aug.hflip == 0
        and aug.randaugment_layers == 0
        and aug.random_erasing == 0
        and aug.mixup == 0
        and aug.cutmix == 0
    )


def build_ensemble(
    recipe: Recipe,
    data: DataBundle,
    device: torch.device,
    dtype: torch.dtype | None,
) -> TeacherEnsemble:
    """Load the recipe's teachers onto the device, checked against the data.

    Raises:
        TrainInputError: a teacher that cannot be read, predicts another number of classes,
            or cannot take the student's training resolution; each names the teacher.
    """
    teachers = []
    for i, cfg in enumerate(recipe.distill.teachers):
        name = f"distill.teachers[{i}] ({cfg.checkpoint or cfg.run})"
        teacher = load_teacher(cfg, data.num_classes, name)
        teacher = teacher.to(device)
        if recipe.channels_last:
            teacher = teacher.to(memory_format=torch.channels_last)
        _check_resolutions(teacher, recipe, device, name)
        teachers.append(teacher)
    return TeacherEnsemble(
        teachers, recipe.distill.temperature, data, dtype, cacheable(recipe, data.in_memory)
    )


def load_teacher(cfg: TeacherConfig, num_classes: int, name: str) -> nn.Module:
    """One teacher, built from its checkpoint's recipe (or its `model` name), frozen, eval mode.

    Raises:
        TrainInputError: an unresolved run teacher, an unreadable file, a state dict without
            a model name, weights that do not fit, or another class count than the data's.
    """
    if cfg.checkpoint is None:
        raise TrainInputError(
            f"{name}: run teachers are resolved to checkpoints before training "
            "(by `rsearch run` and `rsearch train`); fit was given an unresolved one"
        )
    path = _checkpoint_path(Path(cfg.checkpoint).expanduser())
    loaded = load_file(path)
    teacher_recipe = _teacher_recipe(loaded, cfg, name)
    state = model_state(loaded, path)
    classes = _classes_of(teacher_recipe, state)
    if classes is not None and classes != num_classes:
        raise TrainInputError(
            f"{name} predicts {classes} classes but the student's data has {num_classes}: "
            "a teacher must be trained on the same classes"
        )
    model = build_model(teacher_recipe, num_classes, load_weights=False)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise TrainInputError(f"{name}: its weights do not fit its model: {e}") from e
    model.eval()
    model.requires_grad_(False)
    return model


def _checkpoint_path(path: Path) -> Path:
    # A checkpoint directory (as a search keeps them) holds fit's checkpoint file.
    return checkpoint_file(path) if path.is_dir() else path


def _teacher_recipe(loaded: Any, cfg: TeacherConfig, name: str) -> Recipe:
    if isinstance(loaded, dict) and loaded.get("format") == FORMAT:
        saved = Recipe.model_validate(loaded["recipe"])
        # Only the architecture matters: its own teachers, weights file and dropout do not.
        model = saved.model.model_copy(update={"checkpoint": None})
        return Recipe(model=model)
    if cfg.model is None:
        raise TrainInputError(
            f"{name} is a plain state dict: name its timm model with `model:` "
            "(an rsearch checkpoint names its own)"
        )
    return Recipe.model_validate({"model": {"name": cfg.model}})


def _classes_of(recipe: Recipe, state: dict[str, torch.Tensor]) -> int | None:
    """Outputs of the state dict's classifier (None when the model names none)."""
    with torch.device("meta"):
        probe = build_model(recipe, 2, load_weights=False)
    cfg = getattr(probe, "pretrained_cfg", None) or {}
    classifier = cfg.get("classifier")
    weight = state.get(f"{classifier}.weight") if isinstance(classifier, str) else None
    return int(weight.shape[0]) if weight is not None else None


def _check_resolutions(teacher: nn.Module, recipe: Recipe, device: torch.device, name: str) -> None:
    """A teacher trained at another resolution is run at the student's; refuse one that can't."""
    for size in sorted(set(train_sizes(recipe.data))):
        probe = torch.zeros(2, 3, size, size, device=device)
        try:
            with torch.inference_mode():
                teacher(probe)
        except (RuntimeError, AssertionError, ValueError) as e:
            raise TrainInputError(
                f"{name} cannot take the student's {size} px training images: {e}"
            ) from e
