"""search.budget: a malformed budget is a spec error at its file:line; validation prices nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsearch.spec import SearchSpec, SpecError, load_spec

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
name: b
objective: {{metric: val_top1}}
search:
  num_trials: 4
  budget: {budget}
scheduler: {{type: asha, unit: compute, grace_period: 0.5}}
base:
  data: {{dataset: digits, image_size: 32}}
  epochs: 2
"""


def _load(tmp_path: Path, budget: str) -> SearchSpec:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(budget=budget))
    return load_spec(path)


@pytest.mark.parametrize(
    ("budget", "field", "fragment"),
    [
        ("{device_hours: -2}", "search.budget.device_hours", "greater than 0"),
        ("{flops: 0}", "search.budget.flops", "greater than 0"),
        ("{flops: lots}", "search.budget.flops", "valid number"),
        ("{}", "search.budget", "needs device_hours, flops, or both"),
        ("{gpu_hours: 3}", "search.budget.gpu_hours", "unknown key"),
        ("{device_hour: 3}", "search.budget.device_hour", "did you mean 'device_hours'"),
        ("12", "search.budget", "valid dictionary"),
    ],
)
def test_bad_budget_names_its_file_and_line(
    tmp_path: Path, budget: str, field: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as caught:
        _load(tmp_path, budget)
    problems = [p for p in caught.value.problems if p.field == field]
    assert problems, caught.value.problems
    assert fragment in problems[0].message
    where = problems[0].where
    assert where is not None and where.file.endswith("spec.yaml")
    assert where.line == 5, str(problems[0])


def test_budget_and_compute_unit_are_read(tmp_path: Path) -> None:
    spec = _load(tmp_path, "{device_hours: 1.5, flops: 2e15}")
    assert spec.search.budget is not None
    assert spec.search.budget.device_hours == 1.5
    assert spec.search.budget.flops == 2e15
    assert spec.budget_unit == "compute"


def test_validation_prices_nothing(tmp_path: Path) -> None:
    # A budget below a single epoch of the cheapest trial is the planner's verdict to give,
    # not validation's: validation stays pure (no torch, no model, no FLOPs count). A fresh
    # interpreter, since this one may have imported torch for another test already.
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(budget="{flops: 1}"))
    script = (
        "import sys; from rsearch.spec import load_spec; "
        f"spec = load_spec({str(path)!r}); "
        "print(spec.search.budget.flops, sorted({m.split('.')[0] for m in sys.modules} "
        "& {'torch', 'timm', 'ray'}), any(m.startswith('rsearch.plan') for m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == ["1.0", "[]", "False"], done.stdout + done.stderr
