"""The run directory's manifest: what a search was started with, written once.

Every command that reads a run directory (resume, best, report, tracking) gets the spec's
hash, the absolute MLflow store, the storage root and the study's storage from here, instead
of re-deriving them from the working directory it happens to run in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from rsearch import __version__
from rsearch.errors import UserError
from rsearch.redact import redact_kept
from rsearch.rundir.layout import MANIFEST, STUDY_FILE, write_atomic


class Manifest(BaseModel):
    """What a search was started with.

    Fields added after the first manifests default, so older run directories still read.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    """The spec's name: also the Optuna study's name."""
    spec_hash: str | None = None
    """Digest of the resolved spec (`spec_hash`): a changed spec has another."""
    spec_file_hash: str | None = None
    """Digest of the spec file as written, copied into the run directory (None: no file)."""
    spec_path: str | None = None
    """The spec file the search was started from, as given."""
    ray_address: str = "embedded"
    """The Ray cluster the search ran on ("embedded": a Ray started for it)."""
    tracked: bool = True
    """Whether the search is recorded in MLflow."""
    tracking_uri: str | None = None
    """The MLflow store actually used, absolute, credentials masked (None: untracked)."""
    storage_root: str | None = None
    """The storage root the run directory was created under (a path or a URI)."""
    experiment: str | None = None
    """Tune's experiment URI when the storage is a URI (None: the run directory itself)."""
    study_storage: str = STUDY_FILE
    """The Optuna study's journal file, relative to the run directory."""
    rsearch_version: str | None = None
    """The rsearch that started the search."""
    created: datetime | None = None
    """When the search started (timezone-aware)."""

    @field_validator("created", mode="before")
    @classmethod
    def _compact_offset(cls, value: Any) -> Any:
        # The first manifests wrote `%z` offsets (+0000), which ISO parsers reject.
        if (
            isinstance(value, str)
            and len(value) > 5
            and value[-5] in "+-"
            and ":" not in value[-5:]
        ):
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
        return value


def spec_hash(spec_resolved: Mapping[str, Any]) -> str:
    """A short digest of a resolved spec: equal specs, equal hashes."""
    canonical = json.dumps(spec_resolved, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def new_manifest(**fields: Any) -> Manifest:
    """A manifest stamped with this rsearch's version and the current time."""
    return Manifest(rsearch_version=__version__, created=datetime.now(timezone.utc), **fields)


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    """Write the manifest once, atomically, its credentials masked (`rsearch.redact`).

    `check_run_spec` alone rewrites it later, and only its spec hashes.

    The manifest is uploaded beside the run's storage and read by anyone with the run
    directory, so URIs lose their passwords and secret query values; this process keeps the
    real ones (`rsearch.settings.usable_storage_uri`, `usable_tracking_uri`).

    Raises:
        FileExistsError: When the run directory already has one (it is never rewritten).
    """
    path = run_dir / MANIFEST
    if path.exists():
        raise FileExistsError(f"{path} exists: a run's manifest is written once")
    masked = Manifest.model_validate(redact_kept(manifest.model_dump(mode="json")))
    write_atomic(path, masked.model_dump_json(indent=2))


def read_manifest(run_dir: Path) -> Manifest:
    """The run's manifest.

    Raises:
        UserError: When run_dir has none, or it cannot be read.
    """
    path = run_dir / MANIFEST
    if not path.is_file():
        raise UserError(f"{run_dir} is not an rsearch run directory (no {MANIFEST})")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<top level>"
        raise UserError(f"{path} is damaged: {where}: {first['msg']}") from None
