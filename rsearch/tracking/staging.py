"""Files a search logs as artifacts, written first under its state directory.

A record names the files it uploads, and may wait on disk through an outage and be sent by a
later driver, so the files must outlive the process that wrote them: they live beside the
queue, not in a temporary directory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rsearch.redact import redact, redact_yaml_text
from rsearch.rundir.layout import write_atomic
from rsearch.tracking.records import Artifact


class Staging:
    """Writes files to log under `<state_dir>/artifacts`.

    Args:
        state_dir: The search's own directory for tracking state (e.g. `<run_dir>/mlflow`).
    """

    def __init__(self, state_dir: Path):
        self._root = Path(state_dir) / "artifacts"

    def text(self, relative: str, text: str) -> str:
        """Write `text` to the staged file `relative`; return its path.

        Written whole or not at all (`write_atomic`): a queued record may name it for a later
        driver to upload, after a crash or a full disk.
        """
        path = self._root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
        return str(path)

    def yaml(self, relative: str, data: Any) -> str:
        """Write data as YAML, keys in their order; return the path."""
        return self.text(relative, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def json(self, relative: str, data: Any) -> str:
        """Write data as indented JSON, keys sorted; return the path."""
        return self.text(relative, json.dumps(data, indent=2, sort_keys=True))

    def spec(self, spec_resolved: Mapping[str, Any], spec_written: Path | None) -> list[Artifact]:
        """The resolved spec and the spec as written, secrets masked, for the `spec` folder."""
        files: list[Artifact] = [
            (self.yaml("spec/resolved.yaml", redact(dict(spec_resolved))), "spec")
        ]
        if spec_written is not None:
            text = redact_yaml_text(Path(spec_written).read_text(encoding="utf-8"))
            files.append((self.text(f"spec/{Path(spec_written).name}", text), "spec"))
        return files
