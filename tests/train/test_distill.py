"""MEAL V2 distillation: the loss, a student taught by a real digits teacher, the output cache,
and teachers that do not fit the data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rsearch.spec import Recipe
from rsearch.spec.recipe import DistillConfig
from rsearch.train import fit
from rsearch.train.checkpoint import checkpoint_file
from rsearch.train.distill import DistillLoss, DistillTargets, TeacherEnsemble
from rsearch.train.distributed import DistContext
from rsearch.train.errors import TrainInputError
from rsearch.train.session import build_session
from tests.train.train_helpers import TINY, merge

DIGITS: dict[str, Any] = {
    "model": {"name": "test_resnet"},
    "data": {"dataset": "digits", "image_size": 16, "batch_size": 32},
    "augment": {"random_resized_crop": False, "hflip": 0.0},
    "optim": {"lr": 0.1},
    "epochs": 2,
    "device": "cpu",
}
"""timm's test ResNet on the bundled digits at 16 px, the same pixels every epoch."""


def _quiet_fit(recipe: Recipe, checkpoint_dir: Path, root: Path) -> dict[str, Any]:
    """fit outside a test's own fixtures: a short speed measurement into a private cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("rsearch.train.measure.MEASURE_SECONDS", 0.05)
        mp.setenv("RSEARCH_CACHE", str(root / "cache"))
        mp.setattr("rsearch.train.speed.node_dir", lambda: root / "node")
        return fit(recipe, checkpoint_dir=checkpoint_dir, threads=1)


@pytest.fixture(scope="module")
def digits_teacher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, float]]:
    """A teacher trained for real on digits: (its checkpoint file, its val_top1)."""
    root = tmp_path_factory.mktemp("teacher")
    metrics = _quiet_fit(Recipe.model_validate(DIGITS), root / "ckpt", root)
    yield checkpoint_file(root / "ckpt"), float(metrics["val_top1"])


def _student(teacher: Path, **distill: Any) -> Recipe:
    section = {"teachers": [{"checkpoint": str(teacher)}], **distill}
    return Recipe.model_validate(merge(DIGITS, {"distill": section, "seed": 1}))


def test_loss_is_kl_to_the_teachers_averaged_softened_outputs() -> None:
    torch.manual_seed(0)
    teachers: list[nn.Module] = [nn.Linear(6, 5), nn.Linear(6, 5)]
    x = torch.randn(8, 6)
    labels = torch.randint(0, 5, (8,))
    student_logits = torch.randn(8, 5, requires_grad=True)
    t, hard_weight = 3.0, 0.25
    ensemble = TeacherEnsemble(teachers, t, data=None, dtype=None, cache=False)  # type: ignore[arg-type]
    cfg = DistillConfig(temperature=t, hard_weight=hard_weight)
    loss = DistillLoss(cfg, base=nn.CrossEntropyLoss())(
        student_logits, DistillTargets(ensemble.probabilities(x).clone(), labels)
    )
    with torch.no_grad():
        mean = sum(F.softmax(m(x) / t, dim=1) for m in teachers) / 2
    log_student = F.log_softmax(student_logits / t, dim=1)
    kl = (mean * (mean.log() - log_student)).sum(dim=1).mean()
    by_hand = kl * t**2 + hard_weight * F.cross_entropy(student_logits, labels)
    assert torch.allclose(loss, by_hand, atol=1e-6)
    loss.backward()  # the targets carry no graph; the student's logits get a gradient
    assert student_logits.grad is not None and student_logits.grad.abs().sum() > 0


def test_a_student_learns_from_a_trained_digits_teacher(
    digits_teacher: tuple[Path, float],
) -> None:
    teacher, teacher_top1 = digits_teacher
    assert teacher_top1 > 80.0
    metrics = fit(_student(teacher, temperature=2.0), threads=1)
    assert float(metrics["val_top1"]) > 50.0  # ten classes: chance is 10%


def test_cached_teacher_outputs_equal_uncached_ones(digits_teacher: tuple[Path, float]) -> None:
    session = build_session(_student(digits_teacher[0]), DistContext(), "cpu", threads=1)
    ensemble = session.step.distill
    assert ensemble is not None and ensemble.cache_on
    seen: set[int] = set()
    visits = 0
    for _ in range(2):
        for images, labels in session.data.train:
            x, targets = session.train_transform(images, labels)
            ensemble.targets(x, targets)
            assert session.data.train.current is not None  # type: ignore[attr-defined]
            seen.update(session.data.train.current.tolist())  # type: ignore[attr-defined]
            visits += labels.shape[0]
    # Each image ran through the teachers once, however often it was visited.
    assert ensemble.computed == len(seen) < visits
    for images, labels in session.data.train:
        x, targets = session.train_transform(images, labels)
        cached = ensemble.targets(x, targets).soft
        assert torch.allclose(cached, ensemble.probabilities(x), atol=1e-6)


def test_random_augmentation_turns_the_cache_off(digits_teacher: tuple[Path, float]) -> None:
    student = _student(digits_teacher[0])
    recipe = student.model_copy(
        update={"augment": student.augment.model_copy(update={"hflip": 0.5})}
    )
    session = build_session(recipe, DistContext(), "cpu", threads=1)
    assert session.step.distill is not None and not session.step.distill.cache_on


def test_a_teacher_with_another_class_count_is_refused(tmp_path: Path) -> None:
    four = Recipe.model_validate(merge(TINY, {"device": "cpu"}))
    _quiet_fit(four, tmp_path / "four", tmp_path)
    student = _student(checkpoint_file(tmp_path / "four"))
    with pytest.raises(TrainInputError, match=r"teachers\[0\].*predicts 4 classes.*has 10"):
        build_session(student, DistContext(), "cpu", threads=1)


def test_a_plain_state_dict_teacher_needs_its_model_name(
    tmp_path: Path, digits_teacher: tuple[Path, float]
) -> None:
    state = torch.load(digits_teacher[0], weights_only=True)["model"]
    plain = tmp_path / "weights.pt"
    torch.save(state, plain)
    with pytest.raises(TrainInputError, match="plain state dict: name its timm model"):
        build_session(_student(plain), DistContext(), "cpu", threads=1)
    named = _student(plain).model_copy(deep=True)
    named.distill.teachers[0] = named.distill.teachers[0].model_copy(
        update={"model": "test_resnet"}
    )
    session = build_session(named, DistContext(), "cpu", threads=1)
    assert session.step.distill is not None and len(session.step.distill.teachers) == 1


def test_a_teacher_trained_at_another_resolution_runs_at_the_students(
    digits_teacher: tuple[Path, float],
) -> None:
    recipe = _student(digits_teacher[0])
    bigger = recipe.model_copy(update={"data": recipe.data.model_copy(update={"image_size": 24})})
    session = build_session(bigger, DistContext(), "cpu", threads=1)
    images, labels = next(iter(session.data.train))
    x, targets = session.train_transform(images, labels)
    assert x.shape[-1] == 24
    assert session.step.distill is not None
    assert session.step.distill.targets(x, targets).soft.shape == (32, 10)
