"""YAML reading that remembers where every key came from.

Data is read with `yaml.safe_load`; the node tree (same safe loader) gives each key's line
and column, so a validation error can point at `file:line:col`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rsearch.spec.errors import Loc, Location, Problem


@dataclass
class Source:
    """Parsed YAML data with the location of every mapping key and list item."""

    data: Any
    where: dict[Loc, Location] = field(default_factory=dict)

    def locate(self, loc: Loc) -> Location | None:
        """The location of the deepest part of loc present in the file."""
        best = self.where.get(())
        cur: Loc = ()
        for part in loc:
            nxt = (*cur, part)
            if nxt in self.where:  # parts absent from the file (union tags) are skipped
                cur, best = nxt, self.where[nxt]
        return best

    def prefixed(self, prefix: Loc) -> dict[Loc, Location]:
        """The locations with prefix put in front of every path."""
        return {(*prefix, *k): v for k, v in self.where.items() if k}


def read_yaml(path: Path, shown_as: str | None = None) -> tuple[Source | None, list[Problem]]:
    """Read a YAML mapping from path; problems name the file and position."""
    name = shown_as or str(path)
    top = Location(name, 1, 1)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, [Problem((), "file not found", top)]
    except (OSError, UnicodeDecodeError) as e:
        return None, [Problem((), f"cannot read file: {e}", top)]
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> tuple[Source | None, list[Problem]]:
    """Parse YAML text that must hold a mapping; name is used in locations."""
    top = Location(name, 1, 1)
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else top
        return None, [Problem((), f"YAML syntax error: {e.problem or e}", where)]
    except yaml.YAMLError as e:
        return None, [Problem((), f"YAML error: {e}", top)]
    if data is None:
        return None, [Problem((), "file is empty", top)]
    if not isinstance(data, dict):
        return None, [Problem((), f"expected a mapping of keys, got {type(data).__name__}", top)]
    src = Source(data, {(): top})
    problems: list[Problem] = []
    if node is not None:
        _record(node, (), name, src.where, problems)
    return src, problems


def _record(
    node: yaml.Node, loc: Loc, name: str, where: dict[Loc, Location], problems: list[Problem]
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            mark = key_node.start_mark
            here = Location(name, mark.line + 1, mark.column + 1)
            if key in seen:  # safe_load keeps the last silently; say so instead
                problems.append(Problem((*loc, key), "duplicate key", here))
            seen.add(key)
            where[(*loc, key)] = here
            _record(value_node, (*loc, key), name, where, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            mark = item.start_mark
            where[(*loc, i)] = Location(name, mark.line + 1, mark.column + 1)
            _record(item, (*loc, i), name, where, problems)


def deep_merge(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge over onto under: mappings merge key by key, anything else is replaced."""
    out = dict(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
