"""The Ray Train callback that hands each report back to the trial's driver."""

from __future__ import annotations

from typing import Any

from ray.train.v2.api.callback import UserCallback

from rsearch.settings import is_uri, with_fs_path


class ForwardReports(UserCallback):
    """Puts (rank 0's metrics, persisted checkpoint path) on a Ray queue the driver reads.

    It runs in the Train controller, after Ray Train has persisted the checkpoint, so the
    path is final and readable from any node that reaches the storage.
    """

    def __init__(self, reports: Any, storage: str | None = None):
        """Args: reports: The driver's Ray queue. storage: The Train runs' storage root."""
        self._reports = reports
        self._storage = storage

    def after_report(
        self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any
    ) -> None:
        """Forward one report; blocks while the driver is behind (the queue is unbounded)."""
        uri = checkpoint_uri(checkpoint, self._storage) if checkpoint else None
        self._reports.put((dict(metrics[0]), uri))


def checkpoint_uri(checkpoint: Any, storage: str | None = None) -> str:
    """A URI any process can open the checkpoint from (a plain path on a local filesystem).

    Args:
        checkpoint: A checkpoint Ray Train persisted.
        storage: The URI of the storage it was persisted to; its query (an endpoint override,
            say) is carried over, since the checkpoint's path alone would reach the default one.
    """
    kind = checkpoint.filesystem.type_name if checkpoint.filesystem is not None else "local"
    if kind == "local":
        return str(checkpoint.path)
    if storage is not None and is_uri(storage):
        return with_fs_path(storage, checkpoint.path)
    return f"{kind}://{checkpoint.path}"
