"""Where a checkpoint Ray Train persisted can be opened from, by any process."""

from __future__ import annotations

from typing import Any

from rsearch.settings import is_uri, with_fs_path


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
