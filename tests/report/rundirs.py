"""Hand-made run directories for the report tests: a real spec, a real Optuna journal study.

The trials are written straight into the study (no Ray, no training): each test picks their
states, values and final metrics, so the expected report can be computed independently.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from rsearch.rundir import (
    SPEC_RESOLVED,
    STUDY_FILE,
    new_manifest,
    spec_hash,
    write_manifest,
)
from rsearch.spec import SearchSpec

SPEC = {
    "name": "report-demo",
    "search": {"algorithm": "tpe", "num_trials": 8, "seed": 0},
    "base": {
        "model": {"name": "test_resnet"},
        "data": {"dataset": "digits", "image_size": 16},
        "epochs": 3,
    },
}
SPACE: dict[str, dict[str, Any]] = {
    "optim.lr": {"type": "float", "low": 0.001, "high": 0.3, "log": True},
    "loss.label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
}
SECTIONS = [
    "Summary",
    "Best trials",
    "Pareto front",
    "Parameter importance",
    "Parallel coordinates",
    "Learning curves",
]
"""The report's sections in order (a scaling search adds "Scaling")."""
COMPOUND: dict[str, Any] = {
    "type": "compound",
    "alpha": {"type": "float", "low": 1.0, "high": 1.4},
    "beta": {"type": "float", "low": 1.0, "high": 1.3},
    "gamma": {"type": "float", "low": 1.0, "high": 1.4},
    "phi": 1,
    "base_image_size": 32,
}
"""An EfficientNet compound-scaling section whose draws the tests pick by hand."""
DISTRIBUTIONS: dict[str, BaseDistribution] = {
    "optim.lr": FloatDistribution(0.001, 0.3, log=True),
    "loss.label_smoothing": FloatDistribution(0.0, 0.2),
    "model.depth_multiplier": FloatDistribution(0.5, 2.0),
    "model.width_multiplier": FloatDistribution(0.5, 2.0),
    "data.image_size": IntDistribution(16, 32, step=8),
    "scaling.phi": FloatDistribution(0.0, 2.0),
    "scaling.alpha": FloatDistribution(1.0, 1.4),
    "scaling.beta": FloatDistribution(1.0, 1.3),
    "scaling.gamma_band": FloatDistribution(0.0, 1.0),
}


@dataclass
class Trial:
    """One hand-made trial."""

    state: TrialState
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    values: list[float] | None = None
    curve: dict[int, float] = field(default_factory=dict)


def make_run(
    root: Path,
    trials: list[Trial],
    objective: list[dict[str, str]] | None = None,
    space: dict[str, dict[str, Any]] | None = None,
    num_trials: int | None = None,
    tracked: bool = True,
    scaling: dict[str, Any] | None = None,
) -> tuple[Path, SearchSpec]:
    """A run directory under root holding the spec, manifest and a journal study of trials."""
    objective = objective or [{"metric": "val_top1", "mode": "max"}]
    spec = SearchSpec.model_validate(
        {
            **SPEC,
            "objective": objective,
            "search": {**SPEC["search"], "num_trials": num_trials or len(trials)},  # type: ignore[dict-item]
            "space": space or SPACE,
            **({"scaling": scaling} if scaling else {}),
        }
    )
    run_dir = root / "run"
    run_dir.mkdir(parents=True)
    resolved = spec.model_dump(mode="json")
    (run_dir / SPEC_RESOLVED).write_text(yaml.safe_dump(resolved, sort_keys=False))
    manifest = new_manifest(name=spec.name, spec_hash=spec_hash(resolved), tracked=tracked)
    write_manifest(run_dir, manifest)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=spec.name,
        storage=JournalStorage(JournalFileBackend(str(run_dir / STUDY_FILE))),
        directions=["maximize" if o["mode"] == "max" else "minimize" for o in objective],
    )
    for i, t in enumerate(trials):
        study.add_trial(
            optuna.trial.create_trial(
                state=t.state,
                params=t.params,
                distributions={k: DISTRIBUTIONS[k] for k in t.params},
                values=t.values,
                intermediate_values=t.curve,
                user_attrs={"metrics": t.metrics, "tune_trial_id": f"t{i:03d}"},
            )
        )
    return run_dir, spec


def random_trials(n: int, seed: int, objectives: tuple[str, ...]) -> list[Trial]:
    """n completed trials with random searched values and measured speed and accuracy."""
    rng = random.Random(seed)
    trials = []
    for _ in range(n):
        metrics = {
            "epoch": 3.0,
            "val_top1": round(rng.uniform(50, 99), 1),
            "infer_images_per_s": round(rng.uniform(500, 20000)),
            "infer_latency_ms": round(rng.uniform(0.2, 5.0), 2),
            "params_m": round(rng.uniform(0.3, 25), 2),
            "gflops": round(rng.uniform(0.01, 4), 3),
        }
        params = {"optim.lr": rng.uniform(0.001, 0.3), "loss.label_smoothing": rng.uniform(0, 0.2)}
        values = [metrics[m] for m in objectives]
        curve = {e: metrics["val_top1"] * e / 3 for e in (1, 2, 3)}
        trials.append(Trial(TrialState.COMPLETE, params, metrics, values, curve))
    return trials


def dominates(a: list[float], b: list[float], modes: list[str]) -> bool:
    """Whether point a dominates point b (written out, independently of rsearch.report)."""
    better_or_equal = all(
        (x >= y) if m == "max" else (x <= y) for x, y, m in zip(a, b, modes, strict=True)
    )
    strictly = any((x > y) if m == "max" else (x < y) for x, y, m in zip(a, b, modes, strict=True))
    return better_or_equal and strictly


def brute_force_front(points: dict[int, list[float]], modes: list[str]) -> set[int]:
    """Keys of the points no other point dominates."""
    return {
        k
        for k, p in points.items()
        if not any(dominates(q, p, modes) for j, q in points.items() if j != k)
    }
