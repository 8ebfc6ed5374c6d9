"""Distillation teachers named by a run directory, resolved to its best trials' checkpoints.

The run directories are made by hand with a real manifest, resolved spec and Optuna journal
(tests/report/rundirs.py); the checkpoint files are placeholders of bytes, since resolution
records paths and never opens them (loading them is the training core's, tests/train).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from rsearch.errors import UserError
from rsearch.rundir.checkpoints import record_checkpoint
from rsearch.rundir.teachers import resolve_spec_teachers, resolve_teachers
from rsearch.spec import Recipe, SearchSpec
from tests.cli.helpers import fails_cleanly
from tests.report.rundirs import SPEC, Trial, make_run

LR = {"optim.lr": 0.01, "loss.label_smoothing": 0.1}


def _run(
    root: Path,
    values: list[float | None],
    objective: list[dict[str, str]] | None = None,
    recorded: bool = True,
) -> Path:
    """A run whose i-th trial completed with values[i] (None: pruned), each checkpointed."""
    trials = [
        Trial(TrialState.COMPLETE, LR, values=[v])
        if v is not None
        else Trial(TrialState.PRUNED, LR, curve={1: 10.0})
        for v in values
    ]
    run_dir, _ = make_run(root, trials, objective=objective)
    for i in range(len(values)):
        checkpoint = run_dir / "train" / f"t{i:03d}" / "checkpoint.pt"
        checkpoint.parent.mkdir(parents=True)
        checkpoint.write_bytes(b"checkpoint")
        if recorded:
            record_checkpoint(run_dir, f"t{i:03d}", checkpoint)
    return run_dir


def _teachers(**teacher: object) -> Recipe:
    return Recipe.model_validate({"distill": {"teachers": [teacher]}})


def _checkpoints(recipe: Recipe) -> list[str]:
    return [t.checkpoint or "" for t in recipe.distill.teachers]


def test_the_top_k_completed_trials_by_the_objective(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, [90.0, 95.0, None, 80.0])
    resolved = resolve_teachers(_teachers(run=str(run_dir), top_k=2))
    train = run_dir.resolve() / "train"
    assert _checkpoints(resolved) == [
        str(train / "t001" / "checkpoint.pt"),
        str(train / "t000" / "checkpoint.pt"),
    ]
    assert all(t.run is None for t in resolved.distill.teachers)
    # What a run directory records of it reads back as it was (resolved.yaml holds every field).
    assert Recipe.model_validate(resolved.model_dump(mode="json")) == resolved


def test_a_minimised_objective_ranks_lowest_first(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, [0.9, 0.3, 0.5], objective=[{"metric": "val_loss", "mode": "min"}])
    resolved = resolve_teachers(_teachers(run=str(run_dir), top_k=1))
    assert _checkpoints(resolved) == [str(run_dir.resolve() / "train/t001/checkpoint.pt")]


def test_a_pattern_names_the_newest_matching_run(tmp_path: Path) -> None:
    _run(tmp_path / "a", [99.0])
    newer = _run(tmp_path / "b", [50.0, 60.0])
    resolved = resolve_teachers(_teachers(run=str(tmp_path / "*" / "run")))
    assert _checkpoints(resolved) == [str(newer.resolve() / "train/t001/checkpoint.pt")]


def test_a_pattern_matching_no_run_is_refused_naming_the_teacher(tmp_path: Path) -> None:
    recipe = _teachers(run=str(tmp_path / "quickstart-*"))
    with pytest.raises(UserError, match=r"distill.teachers\[0\]: no run directory matches"):
        resolve_teachers(recipe)


def test_too_few_completed_trials(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, [90.0, None])
    with pytest.raises(UserError, match="has 1 completed trial.*fewer than top_k 2"):
        resolve_teachers(_teachers(run=str(run_dir), top_k=2))


def test_a_trial_without_a_recorded_checkpoint(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, [90.0], recorded=False)
    with pytest.raises(UserError, match="trial 0 of .* has no recorded checkpoint"):
        resolve_teachers(_teachers(run=str(run_dir)))


def test_a_directory_that_is_no_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not an rsearch run directory"):
        resolve_teachers(_teachers(run=str(tmp_path)))


def test_checkpoint_teachers_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "teacher.pt").write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    resolved = resolve_teachers(_teachers(checkpoint="teacher.pt", model="resnet18"))
    assert _checkpoints(resolved) == [str(tmp_path.resolve() / "teacher.pt")]
    assert resolved.distill.teachers[0].model == "resnet18"
    with pytest.raises(UserError, match="checkpoint 'gone.pt' does not exist"):
        resolve_teachers(_teachers(checkpoint="gone.pt"))


def test_a_spec_gets_its_base_resolved_and_nothing_else(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, [70.0, 80.0])
    data = {
        **SPEC,
        "objective": {"metric": "val_top1"},
        "space": {"optim.lr": {"type": "float", "low": 0.01, "high": 0.1}},
    }
    data["base"] = {**SPEC["base"], "distill": {"teachers": [{"run": str(run_dir), "top_k": 2}]}}  # type: ignore[dict-item]
    spec = SearchSpec.model_validate(data)
    resolved = resolve_spec_teachers(spec)
    assert len(_checkpoints(resolved.base)) == 2
    assert resolved.model_copy(update={"base": spec.base}) == spec
    plain = SearchSpec.model_validate({**data, "base": SPEC["base"]})
    assert resolve_spec_teachers(plain) is plain


def test_rsearch_train_resolves_before_it_trains(tmp_path: Path) -> None:
    recipe = tmp_path / "student.yaml"
    recipe.write_text(
        "model: {name: test_resnet}\n"
        f"distill: {{teachers: [{{run: '{tmp_path}/quickstart-*', top_k: 2}}]}}\n"
    )
    fails_cleanly(
        "train", recipe, "--metrics", tmp_path / "m.json", expect="no run directory matches"
    )
    run_dir = _run(tmp_path / "q", [90.0])
    fails_cleanly(
        "train",
        recipe,
        "--set",
        f"distill.teachers=[{{run: {run_dir}, top_k: 2}}]",
        expect="has 1 completed trial(s), fewer than top_k 2",
    )
    assert not (tmp_path / "m.json").exists()
