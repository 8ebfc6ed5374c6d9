"""A full disk, however it reaches the driver, is one StorageFull line naming the disk."""

from __future__ import annotations

import errno
from pathlib import Path

from rsearch.errors import UserError
from rsearch.tune.disk_full import StorageFull, full_disk, storage_full


class RemoteError(Exception):
    """Like Ray's RayTaskError: the worker's exception kept as `cause`, its text in the message."""

    def __init__(self, text: str, cause: BaseException | None = None):
        super().__init__(text)
        self.cause = cause


def test_a_full_disk_is_found_in_the_causes_and_names_the_file() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/mnt/runs/x/ckpt.pt")
        except OSError as e:
            raise RuntimeError("callback failed") from e
    except RuntimeError as wrapped:
        assert full_disk(wrapped) == "/mnt/runs/x/ckpt.pt"
    remote = RemoteError("job failed", cause=OSError(errno.ENOSPC, "No space left on device"))
    assert full_disk(remote) == ""


def test_a_full_disk_reported_as_text_by_ray_is_found() -> None:
    text = "ray::_RayTrainWorker.execute() ... OSError: [Errno 28] No space left on device"
    assert full_disk(RemoteError(text)) == ""


def test_other_errors_are_not_a_full_disk() -> None:
    assert full_disk(OSError(errno.EACCES, "Permission denied", "/x")) is None
    assert full_disk(RuntimeError("CUDA out of memory")) is None


def test_the_message_names_the_mount_point_and_the_resume_command(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "tiny-1"
    error = storage_full(run_dir, str(run_dir / "train" / "gone.pt"))
    assert isinstance(error, StorageFull) and isinstance(error, UserError)
    mount = tmp_path
    while not mount.is_mount():
        mount = mount.parent
    assert str(error) == (
        f"the disk at {mount} is full: the search stopped, and what it recorded is kept; "
        f"free space there, then run `rsearch resume {run_dir}`"
    )
    assert "\n" not in str(error)
