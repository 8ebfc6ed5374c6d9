"""A JSON file of measured or counted numbers shared by every process of the user.

The file is replaced atomically (temporary file + rename): with two writers at once the last
one wins and no reader ever sees half a file. An unreadable file (damaged, another version's)
reads as empty with a warning and is rewritten by the next `put`; an unwritable one only costs
the work of finding the numbers again.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from rsearch.spec.names import cache_dir

CACHE_VERSION = 1


class JsonCache:
    """Entries (JSON objects) by string key in one file under rsearch's cache directory."""

    def __init__(self, name: str, path: Path | None = None):
        """A cache named `name` (`<cache dir>/<name>.json`), or at an explicit path."""
        self.path = path or cache_dir() / f"{name}.json"

    def read(self) -> dict[str, Any]:
        """Every entry; an unreadable or foreign file reads as empty, with a warning."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as e:
            warnings.warn(f"cannot read the cache {self.path}: {e}", stacklevel=2)
            return {}
        try:
            data = json.loads(text)
            entries = data["entries"] if data.get("version") == CACHE_VERSION else None
        except (ValueError, AttributeError, KeyError, TypeError):
            entries = None
        if not isinstance(entries, dict):
            warnings.warn(
                f"ignoring the unreadable cache {self.path} (it will be rewritten)", stacklevel=2
            )
            return {}
        return entries

    def get(self, key: str) -> Any:
        """The entry at key, or None."""
        return self.read().get(key)

    def put(self, key: str, value: Any) -> None:
        """Add or replace one entry (read, change, replace the file)."""
        entries = self.read()
        entries[key] = value
        text = json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, self.path)  # atomic: readers see the old file or the new one
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            warnings.warn(f"cannot write the cache {self.path}: {e}", stacklevel=2)
