"""The extensions of a search: one record appended per `rsearch extend`, never rewritten.

The manifest says what a search was started with and is written once. An extension adds
trials to the same study under a spec of its own (more trials, perhaps narrowed ranges or
other resources) and runs them as a Tune experiment of its own; what it did is appended to
`extensions.jsonl`, one JSON line each. From then on the latest line's spec is the search's
spec (`rsearch.rundir.open_run`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from rsearch import __version__
from rsearch.errors import UserError
from rsearch.rundir.layout import EXTENSION_PREFIX, EXTENSIONS
from rsearch.rundir.manifest import spec_hash
from rsearch.spec.search import SearchSpec

log = logging.getLogger(__name__)


class Extension(BaseModel):
    """One `rsearch extend` of a search."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    number: int
    """1 for the first extension, then 2, 3, ..."""
    trials: int
    """Trials it added."""
    num_trials: int
    """The search's trials in all once it is done."""
    overrides: list[str]
    """Its `--set` overrides, as given."""
    experiment: str
    """Its Tune experiment's directory, inside the run's Tune experiment (`extend-<number>`)."""
    spec: SearchSpec
    """The resolved spec it ran: the search's spec from then on."""
    spec_hash: str
    """Digest of that spec (`rsearch.rundir.spec_hash`)."""
    rsearch_version: str | None = None
    """The rsearch that extended the search."""
    created: datetime | None = None
    """When the extension started (timezone-aware)."""


def new_extension(
    previous: Sequence[Extension], spec: SearchSpec, trials: int, overrides: Sequence[str]
) -> Extension:
    """The record of the next extension of a search.

    Args:
        previous: The search's extensions so far (`read_extensions`).
        spec: The extended spec (`rsearch.spec.extended_spec`): num_trials is the new total.
        trials: Trials it adds.
        overrides: Its `--set` overrides.
    """
    number = previous[-1].number + 1 if previous else 1
    resolved = spec.model_dump(mode="json")
    return Extension(
        number=number,
        trials=trials,
        num_trials=spec.search.num_trials,
        overrides=list(overrides),
        experiment=f"{EXTENSION_PREFIX}{number}",
        spec=spec,
        spec_hash=spec_hash(resolved),
        rsearch_version=__version__,
        created=datetime.now(timezone.utc),
    )


def read_extensions(run_dir: Path) -> tuple[Extension, ...]:
    """The run's extensions in order (none when it was never extended).

    A line that is not JSON at all was cut short by a crash while it was appended (before
    its extension ran a trial): it is skipped with a warning.

    Raises:
        UserError: When a whole line is not an extension record (damaged, or written by an
            rsearch that records something else).
    """
    path = run_dir / EXTENSIONS
    if not path.is_file():
        return ()
    records = []
    # Bytes a crash garbled make their line unreadable JSON (skipped), not the file unreadable.
    text = path.read_bytes().decode("utf-8", errors="replace")
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            log.warning("skipping line %d of %s: cut short by a crash", i, path)
            continue
        try:
            records.append(Extension.model_validate(data))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<line>"
            raise UserError(f"{path} is damaged: line {i}: {where}: {first['msg']}") from None
    return tuple(records)


def append_extension(run_dir: Path, extension: Extension) -> None:
    """Append an extension's record: one write, flushed to disk before it returns."""
    path = run_dir / EXTENSIONS
    line = (extension.model_dump_json() + "\n").encode()
    # A line a crash cut short must stay a line of its own, skipped when read.
    if path.is_file() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        line = b"\n" + line
    with path.open("ab") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
