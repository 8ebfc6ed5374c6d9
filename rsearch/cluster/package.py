"""What a submitted job ships: the spec with every file it `extends`, and maybe rsearch itself.

The spec's files are copied into a staging directory with their relative layout kept, so
`extends:` resolves on the cluster exactly as here. The directory becomes the job's
runtime_env `working_dir`; the rsearch package becomes a `py_modules` entry when the
cluster's image may not hold this code.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

import rsearch
from rsearch.errors import UserError
from rsearch.spec.load import EXTENDS
from rsearch.spec.source import read_yaml

EXCLUDES = ["__pycache__/", "*.pyc", ".mypy_cache/", ".pytest_cache/"]
"""Left out of every upload (runtime_env `excludes`)."""


class PackageMode(str, Enum):
    """Where the job's rsearch comes from."""

    AUTO = "auto"
    """Ship rsearch when this one is a source checkout (no image can hold it), else installed."""
    INSTALLED = "installed"
    """The cluster's image has rsearch installed."""
    SHIP = "ship"
    """Upload this rsearch package with the job (its dependencies must be on the cluster)."""


@dataclass(frozen=True)
class Staged:
    """A staging directory ready to be a job's working_dir."""

    root: Path
    spec: str
    """The spec's path inside root (POSIX form, as the job's command line names it)."""
    files: list[str]
    """Every staged file, relative to root."""


def spec_files(spec_path: Path) -> list[Path]:
    """The spec and every recipe file it extends, directly or through other recipe files.

    Raises:
        UserError: When an extended file is missing or named by an absolute path (which
            would not exist on the cluster).
    """
    found: list[Path] = []
    for path in _walk(spec_path.resolve(), is_spec=True):
        if path not in found:
            found.append(path)
    return found


def _walk(path: Path, is_spec: bool) -> Iterator[Path]:
    yield path
    src, _ = read_yaml(path)
    if src is None:
        return  # load_spec has reported it already
    section = src.data.get("base") if is_spec else src.data
    if not isinstance(section, dict) or EXTENDS not in section:
        return
    names = section[EXTENDS] if isinstance(section[EXTENDS], list) else [section[EXTENDS]]
    at = src.locate(("base", EXTENDS) if is_spec else (EXTENDS,))
    for name in names:
        if Path(name).expanduser().is_absolute():
            raise UserError(
                f"{at}: extends {name!r} is an absolute path, which will not exist on the "
                "cluster; name it relative to the file that extends it"
            )
        target = (path.parent / name).resolve()
        if not target.is_file():
            raise UserError(f"{at}: extended file not found: {target}")
        yield from _walk(target, is_spec=False)


def stage(spec_path: Path, into: Path) -> Staged:
    """Copy the spec and its extends chain into `into`, relative layout kept.

    The files' common folder becomes the root, so `../presets/a.yaml` still resolves.
    """
    files = spec_files(spec_path)
    root = Path(os.path.commonpath([f.parent for f in files]))
    rel = [f.relative_to(root) for f in files]
    for source, target in zip(files, rel, strict=True):
        (into / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, into / target)
    return Staged(into, rel[0].as_posix(), [r.as_posix() for r in rel])


def rsearch_dir() -> Path:
    """The directory of the rsearch package this process runs."""
    return Path(rsearch.__file__).resolve().parent


def is_source_checkout() -> bool:
    """Whether this rsearch is an editable install or a source tree on sys.path."""
    if not any(part in ("site-packages", "dist-packages") for part in rsearch_dir().parts):
        return True
    try:
        direct = metadata.distribution("rsearch").read_text("direct_url.json") or ""
    except metadata.PackageNotFoundError:
        return True
    return '"editable": true' in direct.replace("'", '"')


def ships_rsearch(mode: PackageMode) -> bool:
    """Whether the job uploads this rsearch package."""
    if mode is PackageMode.AUTO:
        return is_source_checkout()
    return mode is PackageMode.SHIP


def runtime_env(staged: Staged, ship: bool) -> dict[str, Any]:
    """The job's runtime_env: the staged specs as working_dir, rsearch as a py_module."""
    env: dict[str, Any] = {"working_dir": str(staged.root), "excludes": list(EXCLUDES)}
    if ship:
        env["py_modules"] = [str(rsearch_dir())]
    return env
