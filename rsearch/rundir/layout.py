"""The files of a run directory, and creating one.

A run directory (`<storage root>/<name>-<timestamp>-<6 hex>/`) is Tune's experiment directory plus
rsearch's own files, named here so the search driver, `rsearch best`, reports and tracking
agree without depending on each other.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MANIFEST = "rsearch.json"
"""The run's typed manifest (see `rsearch.rundir.manifest`)."""
SPEC_AS_WRITTEN = "spec.yaml"
"""The spec file as the user wrote it."""
SPEC_RESOLVED = "resolved.yaml"
"""The validated spec with every default, flag and override applied: what the search ran."""
STUDY_FILE = "optuna.journal"
"""The run's Optuna study: a journal file, far faster than SQLite at a thousand trials."""
TRAIN_DIR = "train"
"""Ray Train's runs of the trials (their checkpoints), under Tune's experiment directory."""
TRACKING_STATE_DIR = "mlflow"
"""The MLflow outbox and the files staged for it."""
COMPUTE_FILE = "compute.json"
SPEED_FILE = "speed.json"
"""Inference speeds the search's trials measured, by architecture and hardware
(rsearch.train.speed): the run's own cache, consulted before the user's."""
"""What the search spent (FLOPs, device-seconds) per trial, its budget and why it stopped."""
EXTENSIONS = "extensions.jsonl"
"""One line per `rsearch extend` of the search, appended (see `rsearch.rundir.extensions`)."""
CHECKPOINTS = "checkpoints.json"
"""Each trial's last checkpoint, relative to the run directory (see `rsearch.rundir.checkpoints`):
the one place the best trial's checkpoint is found for upload, after any resume."""
EXTENSION_PREFIX = "extend-"
"""The k-th extension's Tune experiment is `<Tune's experiment>/extend-<k>/`."""
RECORD_FILES = (SPEC_AS_WRITTEN, SPEC_RESOLVED, MANIFEST, STUDY_FILE, EXTENSIONS, COMPUTE_FILE)
"""rsearch's own records, copied beside Tune's experiment when the storage is a URI."""


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once (umask can only be read by setting it), at import
_MODE = 0o666 & ~_UMASK
"""A new record's permissions, as `open` would give: mkstemp's own 0600 would hide the run's
records from the other users of a shared run directory."""


def is_run_dir(run_dir: Path) -> bool:
    """Whether run_dir holds an rsearch manifest and resolved spec."""
    return (run_dir / MANIFEST).is_file() and (run_dir / SPEC_RESOLVED).is_file()


def create_run_dir(root: Path, name: str, taken: Callable[[str], bool] | None = None) -> Path:
    """Create a fresh run directory `<root>/<name>-<YYYYmmdd-HHMMSS>-<6 hex>` and return it.

    The random suffix is always there: names made in the same second on different machines
    (two jobs submitted at once, each with a control directory of its own) still differ, which
    matters where they meet, at a storage URI. Locally the `mkdir` (without exist_ok) is
    atomic, so two drivers can never share a directory; a URI has no atomic create, so the
    name is also checked there through `taken`.

    Args:
        root: Where run directories are created on this machine.
        name: The spec's name.
        taken: Whether a run-directory name is in use elsewhere (Tune's experiment at a
            storage URI); a name it reports taken is not used.

    Raises:
        FileExistsError: When no free name was found (never in practice: 2**24 per second).
    """
    root.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for _ in range(100):
        candidate = root / f"{stem}-{secrets.token_hex(3)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        if taken is None or not taken(candidate.name):
            return candidate
        candidate.rmdir()
    raise FileExistsError(f"could not create a run directory for {name} under {root}")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace path's content so that readers, and a crash, see the old file or the new one.

    The data goes to a private temporary file beside path (same file system, so the rename
    is atomic), is synced to disk before the rename, and the temporary file is removed when
    any step fails (a full disk leaves no half-written file behind).

    Args:
        path: The file to write.
        data: Its content; text is written as UTF-8.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, _MODE)
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    """Persist a rename: the directory entry is data too (best effort, POSIX only)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; the rename still held
        pass
    finally:
        os.close(fd)
