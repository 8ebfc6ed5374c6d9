"""The distill section in specs and recipe files: teacher entries, missing files at file:line,
and a run pattern that matches nothing yet (accepted: resolved when training starts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.spec import SpecError, load_recipe, load_spec

SPEC = """\
name: distil
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 2}
base:
  model: {name: test_resnet}
  distill:
    teachers:
{teachers}
space:
  distill.temperature: {type: float, low: 1.0, high: 4.0}
  distill.hard_weight: {type: categorical, choices: [0.0, 0.5]}
"""


def _spec(tmp_path: Path, *teachers: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("{teachers}", "\n".join(f"      - {t}" for t in teachers)))
    return path


def _problems(path: Path, recipe: bool = False) -> list[str]:
    with pytest.raises(SpecError) as caught:
        (load_recipe if recipe else load_spec)(path)
    return [str(p) for p in caught.value.problems]


def test_missing_files_are_spec_errors_at_their_lines(tmp_path: Path) -> None:
    path = _spec(tmp_path, "checkpoint: no/such.pt", "run: no-such-run")
    assert _problems(path) == [
        f"{path}:8:9: base.distill.teachers.0.checkpoint: checkpoint 'no/such.pt' does not exist",
        f"{path}:9:9: base.distill.teachers.1.run: run directory 'no-such-run' does not exist",
    ]


def test_a_teacher_is_a_checkpoint_or_a_run(tmp_path: Path) -> None:
    path = _spec(tmp_path, "{run: x, model: resnet18}", "{top_k: 2}", "{checkpoint: a, model: y}")
    assert _problems(path) == [
        f"{path}:8:9: base.distill.teachers.0: model goes with checkpoint; a run's trials "
        "name their own models",
        f"{path}:9:9: base.distill.teachers.1: a teacher is either {{checkpoint: PATH}} or "
        "{run: RUN_DIR, top_k: K}",
        f"{path}:10:25: base.distill.teachers.2.model: unknown timm model 'y'",
    ]


def test_a_pattern_matching_nothing_yet_validates(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, f"{{run: '{tmp_path}/quickstart-*', top_k: 2}}"))
    teacher = spec.base.distill.teachers[0]
    assert teacher.run == f"{tmp_path}/quickstart-*" and teacher.top_k == 2
    assert spec.base.distill.enabled and spec.base.distill.temperature == 1.0


def test_existing_files_validate(tmp_path: Path) -> None:
    (tmp_path / "teacher.pt").write_bytes(b"weights")
    (tmp_path / "run").mkdir()
    spec = load_spec(_spec(tmp_path, f"checkpoint: {tmp_path}/teacher.pt", f"run: {tmp_path}/run"))
    assert [t.checkpoint for t in spec.base.distill.teachers] == [f"{tmp_path}/teacher.pt", None]


def test_a_recipe_file_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "model: {name: test_resnet}\n"
        "distill:\n"
        "  temperature: 0\n"
        "  teachers:\n"
        "    - {checkpoint: gone.pt, top_k: 2}\n"
    )
    assert _problems(path, recipe=True) == [
        f"{path}:3:3: distill.temperature: Input should be greater than 0",
        f"{path}:5:7: distill.teachers.0: top_k goes with run, not checkpoint",
    ]
    path.write_text(
        "model: {name: test_resnet}\ndistill:\n  teachers:\n    - checkpoint: gone.pt\n"
    )
    assert _problems(path, recipe=True) == [
        f"{path}:4:7: distill.teachers.0.checkpoint: checkpoint 'gone.pt' does not exist"
    ]


def test_distillation_is_off_by_default() -> None:
    from rsearch.spec import Recipe

    assert not Recipe().distill.enabled and Recipe().distill.hard_weight == 0.0
