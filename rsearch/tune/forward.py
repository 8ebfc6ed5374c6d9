"""The Ray Train callback that hands each report back to the trial's driver."""

from __future__ import annotations

from typing import Any

from ray.train.v2.api.callback import UserCallback


class ForwardReports(UserCallback):
    """Puts (rank 0's metrics, persisted checkpoint path) on a Ray queue the driver reads.

    It runs in the Train controller, after Ray Train has persisted the checkpoint, so the
    path is final and readable from any node that reaches the storage.
    """

    def __init__(self, reports: Any):
        self._reports = reports

    def after_report(
        self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any
    ) -> None:
        """Forward one report; blocks while the driver is behind (the queue is unbounded)."""
        self._reports.put((dict(metrics[0]), checkpoint_uri(checkpoint) if checkpoint else None))


def checkpoint_uri(checkpoint: Any) -> str:
    """A URI any process can open the checkpoint from (a plain path on a local filesystem)."""
    kind = checkpoint.filesystem.type_name if checkpoint.filesystem is not None else "local"
    return checkpoint.path if kind == "local" else f"{kind}://{checkpoint.path}"
