"""A run directory opened once: its path, manifest, resolved spec and extensions, read together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from rsearch.errors import UserError
from rsearch.rundir.extensions import Extension, read_extensions
from rsearch.rundir.layout import SPEC_RESOLVED, TRACKING_STATE_DIR, TRAIN_DIR
from rsearch.rundir.manifest import Manifest, read_manifest
from rsearch.settings import uri_join, usable_storage_uri
from rsearch.spec.search import SearchSpec


@dataclass(frozen=True)
class Run:
    """A search's run directory as every reader sees it.

    Attributes:
        path: The run directory (absolute).
        manifest: What the search was started with.
        spec: The resolved spec the search runs: its latest extension's, if it was extended.
        extensions: Its extensions (`rsearch extend`), in order.
    """

    path: Path
    manifest: Manifest
    spec: SearchSpec
    extensions: tuple[Extension, ...] = ()

    @property
    def study_file(self) -> Path:
        """The Optuna study's journal file."""
        return self.path / self.manifest.study_storage

    @property
    def tune_path(self) -> str:
        """Tune's experiment: a URI for URI storage, else the run directory itself."""
        if self.manifest.experiment is None:
            return str(self.path)
        return usable_storage_uri(self.manifest.experiment)  # its credentials masked on disk

    @property
    def tune_paths(self) -> list[str]:
        """Tune's experiments of the search in order: the run's own, then each extension's."""
        return [self.tune_path, *(uri_join(self.tune_path, e.experiment) for e in self.extensions)]

    @property
    def current_tune_path(self) -> str:
        """The Tune experiment that ran (or runs) the search's latest trials."""
        return self.tune_paths[-1]

    @property
    def experiment_dirs(self) -> list[Path]:
        """The local directories of Tune's experiments, where their trial results are."""
        return [self.path, *(self.path / e.experiment for e in self.extensions)]

    def extended(self, extension: Extension) -> Run:
        """The run once extension is recorded: its spec is the extension's."""
        return Run(self.path, self.manifest, extension.spec, (*self.extensions, extension))

    @property
    def train_root(self) -> str:
        """Where Ray Train keeps the trials' runs (a path or a URI)."""
        return uri_join(self.tune_path, TRAIN_DIR)

    @property
    def tracking_state(self) -> Path:
        """The directory holding the MLflow outbox."""
        return self.path / TRACKING_STATE_DIR

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment the search is recorded in."""
        return self.spec.tracking.experiment or self.spec.name


def open_run(run_dir: Path) -> Run:
    """Read a run directory's manifest and resolved spec, once.

    Raises:
        UserError: When run_dir is not an rsearch run directory, or its records are damaged.
    """
    path = run_dir.expanduser().resolve()
    manifest = read_manifest(path)
    spec_file = path / SPEC_RESOLVED
    if not spec_file.is_file():
        raise UserError(f"{path} is not an rsearch run directory (no {SPEC_RESOLVED})")
    try:
        spec = SearchSpec.model_validate(yaml.safe_load(spec_file.read_bytes()))
    except (yaml.YAMLError, ValidationError) as e:
        raise UserError(f"{spec_file} is damaged: {_first_line(e)}") from None
    extensions = read_extensions(path)
    return Run(path, manifest, extensions[-1].spec if extensions else spec, extensions)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
