"""Problems found in a spec, each tied to a field path and a place in a file."""

from __future__ import annotations

from dataclasses import dataclass

from rsearch.errors import UserError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Location:
    """A position in a YAML file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        # A command-line flag has no line: it is named alone (`--storage`).
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where it is, which field, what is wrong."""

    loc: Loc
    message: str
    where: Location | None = None

    @property
    def field(self) -> str:
        """The dotted field path, e.g. `space.optim.lr.low`."""
        return ".".join(str(p) for p in self.loc) or "<top level>"

    def __str__(self) -> str:
        place = f"{self.where}: " if self.where else ""
        return f"{place}{self.field}: {self.message}"


class SpecError(UserError):
    """A spec or recipe that cannot be used, with every problem found in it."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
