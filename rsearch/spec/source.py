"""YAML reading that remembers where every key came from.

Data is read with YAML's safe loader, guarded against files that would exhaust time, memory or
the stack (alias bombs, recursive aliases, deep nesting, huge files); the node tree gives each
key's line and column, so a validation error can point at `file:line:col`.
"""

from __future__ import annotations

import math
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

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


MAX_FILE_BYTES = 1 << 20
"""Largest spec or recipe file read (1 MiB): they are hand-written, a few KB each."""

MAX_NODES = 10_000
"""Most YAML values a file may hold once its aliases are expanded: the largest shipped file
holds a few hundred, and a few lines of nested aliases would otherwise expand to billions."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists, aliases expanded (shipped files nest under ten)."""


_UNUSED_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("binary", "set", "omap", "pairs"))
"""YAML's types that become bytes, sets or pair lists: nothing in a spec is one."""


class RefusedYAMLError(yaml.MarkedYAMLError):
    """Well-formed YAML refused because reading it would exhaust time, memory or the stack."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


try:  # libyaml's parser is several times faster than the pure-Python one
    from yaml._yaml import CParser as _Parser

    _BYTE_OFFSETS = True  # its reader errors count bytes, not characters
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)

    _BYTE_OFFSETS = False


class _GuardedLoader(Composer, _Parser, SafeConstructor, Resolver):
    """A safe loader refusing what would exhaust time, memory or the stack.

    Refused, each at the line of the offending anchor, alias or value: recursive aliases, files
    that hold more than MAX_NODES values once aliases are expanded, nesting deeper than
    MAX_DEPTH, integers too long for Python to convert, infinite or NaN numbers, keys that are
    not names and strings holding NUL. Composing stays in Python (the
    Composer comes first) so that every node passes these checks.
    """

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        # id(node) -> (values in it, nesting height), both with aliases expanded; a node
        # absent while its alias is met is still being composed: the alias is recursive.
        self._shape: dict[int, tuple[int, int]] = {}
        self._depth = 0
        self._expanded = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._alias(parent, index, event)
        if self._depth >= MAX_DEPTH:
            raise RefusedYAMLError(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._depth += 1
        node = super().compose_node(parent, index)
        self._depth -= 1
        _refuse_odd_values(node)
        children = _children(node)
        size = 1 + sum(self._shape[id(c)][0] for c in children)
        height = 1 + max((self._shape[id(c)][1] for c in children), default=0)
        self._shape[id(node)] = (size, height)
        self._count(1, event.start_mark)
        return node

    def _alias(self, parent: yaml.Node | None, index: Any, event: Any) -> yaml.Node | None:
        node: Any = super().compose_node(parent, index)  # refuses an undefined alias
        mark = event.start_mark
        anchor = f"&{event.anchor} at line {node.start_mark.line + 1}"
        if id(node) not in self._shape:
            raise RefusedYAMLError(f"recursive alias *{event.anchor} (inside its {anchor})", mark)
        size, height = self._shape[id(node)]
        if self._depth + height > MAX_DEPTH:
            message = f"alias *{event.anchor} ({anchor}) nests deeper than {MAX_DEPTH} levels"
            raise RefusedYAMLError(message, mark)
        self._count(size, mark, f"alias *{event.anchor} ({anchor}) expands to {size} values: ")
        return node

    def _count(self, values: int, mark: Any, why: str = "") -> None:
        self._expanded += values
        if self._expanded > MAX_NODES:
            message = f"{why}more than {MAX_NODES} values in all with aliases expanded"
            raise RefusedYAMLError(message, mark)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return int(super().construct_yaml_int(node))
        except ValueError:  # digits past Python's int conversion limit
            digits = sys.get_int_max_str_digits()
            message = f"integer longer than {digits} digits"
            raise RefusedYAMLError(message, node.start_mark) from None

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = float(super().construct_yaml_float(node))
        if not math.isfinite(value):  # no knob means anything at infinity; .nan is a typo
            raise RefusedYAMLError(f"{node.value} is not a finite number", node.start_mark)
        return value

    # Tags no spec needs are left without a constructor, so they are refused at their line.
    yaml_constructors = {
        **{
            tag: construct
            for tag, construct in SafeConstructor.yaml_constructors.items()
            if tag not in _UNUSED_TAGS
        },
        "tag:yaml.org,2002:int": construct_yaml_int,
        "tag:yaml.org,2002:float": construct_yaml_float,
    }


_NAME_TAGS = frozenset({"tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"})


def _refuse_odd_values(node: yaml.Node | None) -> None:
    """Refuse what no spec holds and later code would trip on: keys that are not names (`1:`,
    `null:`, `[a, b]:`) and strings with a NUL character (written as the escape `"\\0"`)."""
    if isinstance(node, yaml.ScalarNode) and "\0" in node.value:
        raise RefusedYAMLError("a string holds a NUL character", node.start_mark)
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag not in _NAME_TAGS:
                shown = key.value if isinstance(key, yaml.ScalarNode) else "a collection"
                message = f"a key must be a name; {shown!r} is not (quote it if it is one)"
                raise RefusedYAMLError(message, key.start_mark)


def _children(node: yaml.Node | None) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document safely: its data and its node tree (for locations).

    Raises:
        yaml.YAMLError: Malformed YAML, or YAML _GuardedLoader refuses.
    """
    loader = _GuardedLoader(text)
    node = loader.get_single_node()
    return (loader.construct_document(node) if node is not None else None), node


def read_yaml(path: Path, shown_as: str | None = None) -> tuple[Source | None, list[Problem]]:
    """Read a YAML mapping from path; problems name the file and position.

    Only a regular file of at most MAX_FILE_BYTES is read, so a directory, a FIFO or a device
    given as the path is refused at once rather than read without end.
    """
    name = shown_as or str(path)
    top = Location(name, 1, 1)
    try:
        raw = _read_capped(path)
    except FileNotFoundError:
        return None, [Problem((), "file not found", top)]
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        return None, [Problem((), f"cannot read file: {getattr(e, 'strerror', None) or e}", top)]
    if raw is None:
        return None, [Problem((), "not a regular file", top)]
    if len(raw) > MAX_FILE_BYTES:
        limit = f"{MAX_FILE_BYTES / 2**20:g} MiB"
        return None, [Problem((), f"file is larger than {limit} (a spec is written by hand)", top)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        at = _position(raw[: e.start].decode("utf-8", "replace"), name)
        return None, [Problem((), f"not UTF-8 text: byte 0x{raw[e.start]:02x}", at)]
    return parse_yaml(text, name)


def _read_capped(path: Path) -> bytes | None:
    """The first MAX_FILE_BYTES + 1 bytes of a regular file; None for anything else."""
    # O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, left = [], MAX_FILE_BYTES + 1
        while left and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _position(before: str, name: str) -> Location:
    """The location of the character that follows the text before."""
    return Location(name, before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)


def parse_yaml(text: str, name: str) -> tuple[Source | None, list[Problem]]:
    """Parse YAML text that must hold a mapping; name is used in locations."""
    top = Location(name, 1, 1)
    try:
        data, node = load_yaml(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else top
        what = "refused" if isinstance(e, RefusedYAMLError) else "syntax error"
        if isinstance(e, yaml.constructor.ConstructorError):  # well-formed, but a tag we refuse
            what = "error"
        return None, [Problem((), f"YAML {what}: {e.problem or e}", where)]
    except yaml.reader.ReaderError as e:  # a character YAML never allows (NUL, most controls)
        message = f"YAML error: character #x{e.character:04x} is not allowed"
        if not isinstance(e.character, int):
            message = f"YAML error: {e.reason}"
        before = text.encode()[: e.position].decode(errors="replace") if _BYTE_OFFSETS else text
        return None, [Problem((), message, _position(before[: e.position], name))]
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
