"""The compute a search spent: per trial, in total, against its budget and its plan.

The search driver's ledger (`rsearch.tune.ledger`) writes `compute.json` while trials report;
`rsearch best`, the report and the MLflow parent run read it. FLOPs count 2 per multiply-add
(training forward and backward, and evaluation); device-seconds are epoch wall time times the
trial's workers, by device kind (cpu, or the GPU's name). Epochs a stopped trial left unfinished
are not counted: only what an epoch reported is.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rsearch.errors import UserError
from rsearch.rundir.layout import COMPUTE_FILE, write_atomic

SECONDS_PER_HOUR = 3600.0


class TrialSpend(BaseModel):
    """What one trial has spent so far (its latest cumulative report)."""

    model_config = ConfigDict(extra="ignore")

    flops: float = 0.0
    device_s: float = 0.0
    device_kind: str = "cpu"
    epochs: int = 0


class Planned(BaseModel):
    """The estimate made before the search ran (`rsearch plan`)."""

    model_config = ConfigDict(extra="ignore")

    total_flops: float
    total_device_hours: float


class ComputeRecord(BaseModel):
    """A search's compute: trials by Tune trial id, the limit, the plan, why it stopped."""

    model_config = ConfigDict(extra="ignore")

    trials: dict[str, TrialSpend] = Field(default_factory=dict)
    budget_flops: float | None = None
    budget_device_hours: float | None = None
    planned: Planned | None = None
    stop_reason: str | None = None
    """Why the search stopped proposing before num_trials (the budget), else None."""
    wall_s: float = 0.0
    """Wall-clock seconds the search's drivers ran, summed over run/resume/extend."""

    @property
    def total_flops(self) -> float:
        """FLOPs of every trial."""
        return sum(t.flops for t in self.trials.values())

    @property
    def total_device_hours(self) -> float:
        """Device-hours of every trial, all device kinds together."""
        return sum(t.device_s for t in self.trials.values()) / SECONDS_PER_HOUR

    @property
    def device_hours_by_kind(self) -> dict[str, float]:
        """Device-hours per device kind."""
        out: dict[str, float] = {}
        for t in self.trials.values():
            out[t.device_kind] = out.get(t.device_kind, 0.0) + t.device_s / SECONDS_PER_HOUR
        return out

    def summary_line(self) -> str:
        """One line: FLOPs, device-hours by kind, wall time, and the budget when there is one."""
        kinds = ", ".join(f"{h:.3g} {k}" for k, h in sorted(self.device_hours_by_kind.items()))
        line = (
            f"compute: {self.total_flops:.3g} FLOPs, {self.total_device_hours:.3g} "
            f"device-hours ({kinds or 'none'}), wall {self.wall_s / 60:.1f} min"
        )
        limits = []
        if self.budget_flops is not None:
            limits.append(f"{self.budget_flops:.3g} FLOPs")
        if self.budget_device_hours is not None:
            limits.append(f"{self.budget_device_hours:.3g} device-hours")
        if limits:
            line += f"; budget {' and '.join(limits)}"
        if self.stop_reason:
            line += f"; stopped: {self.stop_reason}"
        return line


def read_compute(run_dir: Path) -> ComputeRecord | None:
    """The run's compute record, or None for a run that has not written one (yet).

    Raises:
        UserError: The file exists but is not a compute record.
    """
    path = run_dir / COMPUTE_FILE
    if not path.is_file():
        return None
    try:
        return ComputeRecord.model_validate_json(path.read_bytes())
    except ValidationError as e:
        raise UserError(f"{path} is damaged: {e.errors()[0]['msg']}") from None


def write_compute(run_dir: Path, record: ComputeRecord) -> None:
    """Replace the run's compute record (atomically: readers never see half a file)."""
    write_atomic(run_dir / COMPUTE_FILE, record.model_dump_json(indent=1))
