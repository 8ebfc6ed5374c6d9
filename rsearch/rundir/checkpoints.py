"""Each trial's last checkpoint, kept in the run directory (`checkpoints.json`).

The search's end uploads the best trial's checkpoint, which may have ended before a resume,
an outage or in another driver process: its path is found here, in a file of the run's own,
never in what the tracking server says (anyone who may write tags there could otherwise
choose a file for the driver to upload). Paths are kept relative to the run directory, and
only paths inside it are recorded or given back, symlinks resolved.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rsearch.rundir.layout import CHECKPOINTS, write_atomic

log = logging.getLogger(__name__)


def inside_run(run_dir: Path, path: str | Path) -> Path | None:
    """path, symlinks resolved, when it exists inside run_dir; else None (with a warning).

    Args:
        run_dir: The search's run directory.
        path: A checkpoint file or directory (absolute, or relative to run_dir).
    """
    root = run_dir.resolve()
    target = (root / path).resolve()
    if target.is_relative_to(root) and target.exists():
        return target
    log.warning(
        "not uploading checkpoint %s: not a file inside the search's run directory %s",
        path,
        root,
    )
    return None


def read_checkpoints(run_dir: Path) -> dict[str, Path]:
    """Each trial's recorded checkpoint, as an absolute path inside run_dir.

    A damaged file, or an entry that leads outside the run directory, is skipped with a
    warning: it costs an upload, never the search's end.
    """
    found = {}
    for trial_id, relative in _entries(run_dir).items():
        target = inside_run(run_dir, relative)
        if target is not None:
            found[trial_id] = target
    return found


def record_checkpoint(run_dir: Path, trial_id: str, checkpoint: Path) -> Path | None:
    """Record a trial's last checkpoint; the path recorded, or None when it is refused.

    The search driver alone writes the file (one process), so read, change and replace
    (atomically) cannot lose another writer's entry.

    Args:
        run_dir: The search's run directory.
        trial_id: The trial.
        checkpoint: Its last checkpoint (file or directory); refused outside run_dir.
    """
    target = inside_run(run_dir, checkpoint)
    if target is None:
        return None
    entries = _entries(run_dir)
    entries[trial_id] = str(target.relative_to(run_dir.resolve()))
    write_atomic(run_dir / CHECKPOINTS, json.dumps(entries, indent=1, sort_keys=True))
    return target


def _entries(run_dir: Path) -> dict[str, str]:
    """The file's entries as written (empty, with a warning, when it is damaged)."""
    path = run_dir / CHECKPOINTS
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as e:
        log.warning("ignoring %s: damaged (%s)", path, e)
        return {}
    if not isinstance(entries, dict):
        log.warning("ignoring %s: damaged (not a mapping)", path)
        return {}
    return {str(t): p for t, p in entries.items() if isinstance(p, str)}
