"""Whether a run's spec is still the one it ran: checked before a search is resumed.

The manifest keeps the digest of the resolved spec the search started with (and of the spec
file as written), and each extension the digest of its own spec. A resumed search trains its
remaining trials with the spec in the run directory; if someone edited it in between, those
trials would follow another recipe than the finished ones, in the same study. So resuming
validates the run's spec in full again, compares the digests, and refuses a changed spec
unless forced; forced, it says what changed and records the new digests.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from rsearch.errors import UserError
from rsearch.rundir.extensions import Extension
from rsearch.rundir.layout import EXTENSIONS, MANIFEST, SPEC_AS_WRITTEN, SPEC_RESOLVED, write_atomic
from rsearch.rundir.manifest import read_manifest, spec_hash
from rsearch.rundir.run import Run, open_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpecChange:
    """One record of the run whose spec no longer has the digest recorded for it."""

    what: str
    """Which record: a file of the run directory, or an extension's line."""
    recorded: str | None
    """The digest recorded when the search started (or was extended)."""
    now: str
    """The digest of what the record holds now."""

    def __str__(self) -> str:
        return f"{self.what} (recorded {self.recorded}, now {self.now})"


def file_hash(path: Path) -> str | None:
    """A short digest of a file's bytes, None when there is no file."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        return None


def check_run_spec(run_dir: Path, force: bool = False) -> Run:
    """Validate the run's spec in full and refuse it when it changed since it was recorded.

    The resolved spec is loaded with the spec loader (errors name file:line), and so is the
    spec file as written when it changed (unchanged, it was validated when the search
    started; loading it again could fail on files it `extends` by a relative path). The
    search's name is the study's and MLflow's: it may never change, even forced.

    Args:
        run_dir: The run directory about to be resumed.
        force: Accept a changed spec: warn, naming what changed, and record its digests.

    Returns:
        The run opened (`open_run`), its manifest (and extensions) holding the new digests
        when forced.

    Raises:
        UserError: For no run directory, an invalid spec (file:line), a changed name, or a
            changed spec without force.
    """
    from rsearch.spec import load_spec  # the loader: YAML with locations, every check

    path = run_dir.expanduser().resolve()
    read_manifest(path)  # "not a run directory" comes first
    resolved = load_spec(path / SPEC_RESOLVED)  # before open_run, whose errors have no line
    run = open_run(path)
    where = run.path / (EXTENSIONS if run.extensions else SPEC_RESOLVED)
    for name, held_in in ((resolved.name, run.path / SPEC_RESOLVED), (run.spec.name, where)):
        if name != run.manifest.name:
            raise UserError(
                f"{held_in}: name is {name!r}, but the search and its Optuna study are "
                f"{run.manifest.name!r}: a search's name cannot change"
            )
    changes = _changes(run, resolved.model_dump(mode="json"))
    if not changes:
        return run
    listed = "; ".join(str(c) for c in changes)
    if not force:
        raise UserError(
            f"the spec of {run.path} changed since the search started: {listed}; restore it, "
            "or resume with --force to train the remaining trials with it"
        )
    log.warning("resuming %s with a changed spec (--force): %s", run.path, listed)
    return _record(run, changes)


def _changes(run: Run, resolved: dict[str, object]) -> list[SpecChange]:
    changes = []
    now = spec_hash(resolved)
    if run.manifest.spec_hash is not None and now != run.manifest.spec_hash:
        changes.append(SpecChange(SPEC_RESOLVED, run.manifest.spec_hash, now))
    written = file_hash(run.path / SPEC_AS_WRITTEN)
    recorded = run.manifest.spec_file_hash
    if written is not None and recorded is not None and written != recorded:
        from rsearch.spec import load_spec

        load_spec(run.path / SPEC_AS_WRITTEN)  # an edited file must at least be valid
        changes.append(SpecChange(SPEC_AS_WRITTEN, recorded, written))
    if run.extensions:
        latest = run.extensions[-1]
        _validate_extension(run, latest)
        now = spec_hash(latest.spec.model_dump(mode="json"))
        if now != latest.spec_hash:
            changes.append(
                SpecChange(f"{EXTENSIONS} extension {latest.number}", latest.spec_hash, now)
            )
    return changes


def _validate_extension(run: Run, extension: Extension) -> None:
    """Run the loader's checks on an extension's spec (its record checked only its types)."""
    from rsearch.spec import parse_spec_text

    text = yaml.safe_dump(extension.spec.model_dump(mode="json"), sort_keys=False)
    parse_spec_text(text, f"{run.path / EXTENSIONS} extension {extension.number}")


def _record(run: Run, changes: list[SpecChange]) -> Run:
    """Write the new digests: the manifest's, and the latest extension's line.

    The one rewrite of records otherwise written once: what they record must be the spec the
    remaining trials run.
    """
    fields: dict[str, object] = {}
    for change in changes:
        if change.what == SPEC_RESOLVED:
            fields["spec_hash"] = change.now
        elif change.what == SPEC_AS_WRITTEN:
            fields["spec_file_hash"] = change.now
    manifest = run.manifest.model_copy(update=fields) if fields else run.manifest
    if fields:
        write_atomic(run.path / MANIFEST, manifest.model_dump_json(indent=2))
    extensions = run.extensions
    if any(c.what.startswith(EXTENSIONS) for c in changes):
        latest = extensions[-1]
        fixed = latest.model_copy(
            update={"spec_hash": spec_hash(latest.spec.model_dump(mode="json"))}
        )
        extensions = (*extensions[:-1], fixed)
        lines = "".join(e.model_dump_json() + "\n" for e in extensions)
        write_atomic(run.path / EXTENSIONS, lines)
    return Run(run.path, manifest, run.spec, extensions)
