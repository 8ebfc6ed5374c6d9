"""Where a search keeps its files: a local control directory and Tune's experiment location.

With a local storage root, both are one run directory, `<storage>/<name>-<timestamp>-<6 hex>/`.
With a URI root (`s3://bucket/path`, `gs://...`, any pyarrow filesystem URI, its query
included, e.g. `?endpoint_override=host:9000&scheme=http` for an S3-compatible server), Tune's
experiment and the trials' Train checkpoints live at `<uri>/<name>-<timestamp>-<6 hex>/`, while the
driver keeps the files it writes itself (Optuna journal, which needs file locks; the MLflow
outbox; spec copies and manifest) in a local control directory of the same name. Those record
files are uploaded beside Tune's, so a copy of the experiment's URI directory is a complete run
directory (`rsearch best` reads it), and Tune's per-trial results are copied down into the
control directory, so it is complete too.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any


def fs_path(uri: str) -> str:
    """The path a pyarrow filesystem uses for a URI (`bucket/key...`, no scheme or query)."""
    parsed = urllib.parse.urlparse(uri)
    return str(PurePosixPath(parsed.netloc + parsed.path))


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow.fs import FileSystem  # type: ignore[import-untyped]

    return FileSystem.from_uri(uri)


def _file_type() -> Any:
    from pyarrow.fs import FileType

    return FileType


def make_dir(uri: str) -> None:
    """Create the directory at uri (and its parents) if missing."""
    fs, root = _filesystem(uri)
    fs.create_dir(root, recursive=True)


def exists(uri: str) -> bool:
    """Whether anything (a file or a directory) is at uri."""
    fs, path = _filesystem(uri)
    return bool(fs.get_file_info(path).type != _file_type().NotFound)


def upload_files(files: Iterable[Path], dest_uri: str) -> None:
    """Copy local files into the directory dest_uri (created when missing)."""
    fs, root = _filesystem(dest_uri)
    fs.create_dir(root, recursive=True)
    for path in files:
        with fs.open_output_stream(f"{root}/{path.name}") as out:
            out.write(path.read_bytes())


def download_trial_results(experiment_uri: str, run_dir: Path) -> int:
    """Copy the files of Tune's trial directories (results, params, errors) into run_dir.

    Checkpoints and the Train runs stay in the storage. Returns how many files were copied.
    """
    import pyarrow.fs  # type: ignore[import-untyped]

    fs, root = _filesystem(experiment_uri)
    copied = 0
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True)):
        rel = PurePosixPath(info.path).relative_to(root)
        # Only files directly inside a trial directory: not Tune's experiment state, not
        # checkpoint directories, not train/.
        if info.type != pyarrow.fs.FileType.File or len(rel.parts) != 2 or rel.parts[0] == "train":
            continue
        target = run_dir.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src:
            target.write_bytes(src.read())
        copied += 1
    return copied
