"""A full disk, however it reaches the driver, is one StorageFull line naming the disk."""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path

import pytest

from rsearch.errors import UserError
from rsearch.tune.disk_full import (
    TUNE_CONTROLLER_LOGGER,
    StorageFull,
    full_disk,
    quiet_full_disk_failures,
    storage_full,
)


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


def test_tune_logs_no_traceback_for_a_trial_a_full_disk_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_full_disk_failures()
    tune_log = logging.getLogger(TUNE_CONTROLLER_LOGGER)
    full = RemoteError("OSError: [Errno 28] No space left on device")
    with caplog.at_level(logging.ERROR, logger=TUNE_CONTROLLER_LOGGER):
        tune_log.error("Trial task failed for trial t1", exc_info=full)
        tune_log.error("Trial task failed for trial t2", exc_info=RuntimeError("bad lr"))
    assert [r.getMessage() for r in caplog.records] == ["Trial task failed for trial t2"]


SPEC = """
name: s
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 2}
scheduler: {type: asha, max_t: 3}
space:
  optim.lr: {type: float, low: 0.001, high: 0.3, log: true}
"""


@pytest.mark.parametrize(("free", "state"), [(1024, "RUNNING"), (2**30, "FAIL")])
def test_a_trial_failed_on_a_full_disk_is_not_told_to_optuna_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free: int, state: str
) -> None:
    import optuna

    from rsearch.spec import parse_spec_text
    from rsearch.tune import disk_full
    from rsearch.tune.optuna_searcher import OptunaSearcher

    searcher = OptunaSearcher(parse_spec_text(SPEC), tmp_path / "optuna.journal", budget_epochs=3)
    searcher.suggest("a")
    # The free space only: tests/reliability/test_storage_full.py fills a real disk.
    usage = shutil.disk_usage(tmp_path)._replace(free=free)
    monkeypatch.setattr(disk_full.shutil, "disk_usage", lambda path: usage)
    if state == "RUNNING":
        with pytest.raises(StorageFull, match="is full: the search stopped"):
            searcher.on_trial_complete("a", None, error=True)
    else:
        searcher.on_trial_complete("a", None, error=True)
    assert searcher.study.trials[0].state == optuna.trial.TrialState[state]
