"""Distillation teachers named by an earlier search: `{run: RUN_DIR, top_k: K}` -> checkpoints.

A recipe may name its teachers as the best trials of a search (`distill.teachers`). They are
resolved here once, before anything trains (when a search starts, and in `rsearch train`):
each such entry becomes K `{checkpoint: PATH}` entries, absolute paths to the trials' last
checkpoints, so every trial of a search trains with the same files, wherever its workers run.
A `run` may be a glob pattern (`rsearch-runs/quickstart-*`): the newest run directory it
matches (by its manifest's creation time) is the one read.
"""

from __future__ import annotations

import glob
from datetime import datetime, timezone
from pathlib import Path

from rsearch.errors import UserError
from rsearch.rundir.checkpoints import read_checkpoints
from rsearch.rundir.layout import is_run_dir
from rsearch.rundir.run import open_run
from rsearch.rundir.study import open_study
from rsearch.rundir.trials import TrialView, trial_views
from rsearch.spec.recipe import Recipe, TeacherConfig
from rsearch.spec.search import SearchSpec

_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


def is_pattern(run: str) -> bool:
    """Whether a teacher's `run` is a glob pattern rather than one directory."""
    return glob.has_magic(run)


def resolve_spec_teachers(spec: SearchSpec) -> SearchSpec:
    """The spec with its base recipe's run teachers resolved (unchanged when there are none).

    Raises:
        UserError: see resolve_teachers.
    """
    base = resolve_teachers(spec.base)
    return spec if base is spec.base else spec.model_copy(update={"base": base})


def resolve_teachers(recipe: Recipe) -> Recipe:
    """The recipe with every teacher an absolute checkpoint path (the same recipe if no change).

    Raises:
        UserError: a run (pattern) that names no run directory, a run with fewer completed
            trials than top_k, a trial without a recorded checkpoint, or a checkpoint file
            that does not exist; each names the teacher entry.
    """
    teachers = recipe.distill.teachers
    if not teachers:
        return recipe
    resolved: list[TeacherConfig] = []
    for i, teacher in enumerate(teachers):
        where = f"distill.teachers[{i}]"
        if teacher.run is None:
            resolved.append(_absolute(teacher, where))
        else:
            paths = run_teacher_checkpoints(teacher.run, teacher.top_k, where)
            resolved += [TeacherConfig(checkpoint=str(p)) for p in paths]
    distill = recipe.distill.model_copy(update={"teachers": resolved})
    return recipe.model_copy(update={"distill": distill})


def _absolute(teacher: TeacherConfig, where: str) -> TeacherConfig:
    assert teacher.checkpoint is not None
    path = Path(teacher.checkpoint).expanduser().resolve()
    if not path.exists():
        raise UserError(f"{where}: checkpoint {teacher.checkpoint!r} does not exist")
    return teacher.model_copy(update={"checkpoint": str(path)})


def find_run(run: str, where: str = "distill.teachers") -> Path:
    """The run directory a teacher's `run` names: itself, or a pattern's newest match.

    Raises:
        UserError: no run directory there, or none matching the pattern yet.
    """
    if not is_pattern(run):
        path = Path(run).expanduser().resolve()
        if not is_run_dir(path):
            raise UserError(f"{where}: {run!r} is not an rsearch run directory")
        return path
    matches = [Path(p).resolve() for p in glob.glob(str(Path(run).expanduser()))]
    runs = [p for p in matches if is_run_dir(p)]
    if not runs:
        raise UserError(
            f"{where}: no run directory matches {run!r} yet; run the search that makes it "
            "first (`rsearch run SPEC`, with the storage the pattern looks in)"
        )
    return max(runs, key=lambda p: (open_run(p).manifest.created or _OLDEST, p.name))


def run_teacher_checkpoints(run: str, top_k: int, where: str = "distill.teachers") -> list[Path]:
    """The last checkpoints of a search's top_k completed trials, best first.

    Trials rank by the search's objective (the first one, in its direction, when there are
    several).

    Raises:
        UserError: see find_run; fewer than top_k completed trials; a trial whose checkpoint
            the run directory does not record (it records them for tracked searches).
    """
    path = find_run(run, where)
    best = top_trials(path, top_k, where)
    recorded = read_checkpoints(path)
    out = []
    for trial in best:
        checkpoint = recorded.get(trial.tune_trial_id or "")
        if checkpoint is None:
            raise UserError(
                f"{where}: trial {trial.number} of {path} has no recorded checkpoint "
                "(checkpoints.json; a search records them when it is tracked in MLflow)"
            )
        out.append(checkpoint)
    return out


def top_trials(run_dir: Path, top_k: int, where: str = "distill.teachers") -> list[TrialView]:
    """A run's top_k completed trials by its (first) objective, best first.

    Raises:
        UserError: the run has fewer than top_k completed trials.
    """
    run = open_run(run_dir)
    study = open_study(run.study_file, run.manifest.name)
    complete = [t for t in trial_views(study) if t.state == "COMPLETE" and t.values]
    if len(complete) < top_k:
        raise UserError(
            f"{where}: {run_dir} has {len(complete)} completed trial(s), fewer than top_k {top_k}"
        )
    sign = -1.0 if run.spec.objective[0].direction == "max" else 1.0
    complete.sort(key=lambda t: (sign * (t.values or [0.0])[0], t.number))
    return complete[:top_k]
