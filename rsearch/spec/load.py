"""Load search specs and recipe files: YAML -> validated models, every problem at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rsearch.spec.checks import check_pretrained, check_spec, check_teachers
from rsearch.spec.errors import Loc, Location, Problem, SpecError
from rsearch.spec.input_size import check_input_sizes
from rsearch.spec.kind import EXTENDS, file_kind
from rsearch.spec.narrowing import narrowing_problems
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import SearchSpec
from rsearch.spec.sections import validate_sections
from rsearch.spec.source import Source, deep_merge, load_yaml, parse_yaml, read_yaml

MAX_EXTENDED_FILES = 32
"""Most recipe files one load may read through `extends` (shipped files chain two or three);
a chain or a fan-out of files naming each other twice would otherwise read without end."""

FLAG_FIELDS: dict[str, Loc] = {"--storage": ("storage",), "--tracking-uri": ("tracking", "uri")}
"""Command-line flags that set a spec field, as `--set` would (their values taken verbatim)."""


def load_spec(
    path: str | Path, overrides: Sequence[str] = (), flags: Mapping[str, str | None] | None = None
) -> SearchSpec:
    """Read, merge and validate a search spec.

    Args:
        path: The spec's YAML file.
        overrides: `dotted.path=value` settings applied after the file (values are YAML).
        flags: Values of the FLAG_FIELDS flags (`--storage`, `--tracking-uri`) given on the
            command line, applied last; None values are ignored.

    Raises:
        SpecError: With every problem found, each with file:line and the field path.
    """
    src, problems = _read_spec_source(Path(path), overrides, flags)
    if src is None:
        raise SpecError(problems)
    return _validated_spec(src, problems)


def extended_spec(
    current: SearchSpec, overrides: Sequence[str], trials: int, shown_as: str
) -> SearchSpec:
    """The spec of a search extended by `trials` trials, its `--set` overrides applied.

    The overrides are validated as `load_spec` validates them, except that the warm-start
    recipes are not checked against the space (they already ran, and a narrowed range may
    leave them outside); then the result is compared with `current`, and only what an
    extension may change may differ (`rsearch.spec.narrowing`).

    Args:
        current: The spec the search ran (its latest extension's, if it was extended before).
        overrides: `dotted.path=value` settings, as for `load_spec`.
        trials: Trials to add; `search.num_trials` of the result is current's plus these.
        shown_as: How locations name the current spec (the run's resolved spec file).

    Raises:
        SpecError: With every problem found, each at the `--set` that made it.
    """
    text = yaml.safe_dump(current.model_dump(mode="json"), sort_keys=False)
    src, problems = parse_yaml(text, shown_as)
    if src is None:  # a dumped spec is always a mapping; kept for the type checker
        raise SpecError(problems)
    problems += apply_overrides(src, overrides)
    try:
        spec = _validated_spec(src, problems, warm_starts_ran=True)
    except SpecError as e:  # every problem comes from an override: name it, not the dump
        raise SpecError([_at_set(src, p) for p in e.problems]) from None
    refused = narrowing_problems(current, spec)
    _raise_if_any([_at_set(src, p) for p in refused], src)
    data = spec.model_dump(mode="json")
    data["search"]["num_trials"] = spec.search.num_trials + trials
    try:
        return SearchSpec.model_validate(data)
    except ValidationError as e:
        message = f"{e.errors()[0]['msg']} ({spec.search.num_trials} + {trials} trials)"
        raise SpecError(
            [Problem(("search", "num_trials"), message, Location("--trials", 0, 0))]
        ) from None


def _at_set(src: Source, problem: Problem) -> Problem:
    """The problem located at the last `--set` that reached its field (set the field, a part
    of it, or a section holding it); as it was when no `--set` did."""
    loc = problem.loc
    found = [
        where
        for key, where in src.where.items()
        if where.file == "--set" and (key[: len(loc)] == loc or loc[: len(key)] == key)
    ]
    if not found:
        return problem
    return Problem(loc, problem.message, max(found, key=lambda w: w.line))


def _validated_spec(
    src: Source, problems: list[Problem], warm_starts_ran: bool = False
) -> SearchSpec:
    """Validate read spec data section by section plus across sections; raise every problem."""
    sections, section_problems = validate_sections(SearchSpec, src.data)
    problems = problems + section_problems + check_spec(sections, warm_starts_ran=warm_starts_ran)
    _raise_if_any(problems, src)
    spec = SearchSpec.model_validate(src.data)
    # Last, on a spec valid otherwise: the check may start a probe process and cache its answer,
    # which a refused spec must not cost.
    _raise_if_any(check_input_sizes(spec.space, spec.base, ("base",)), src)
    return spec


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, merge (`extends`) and validate a standalone recipe file.

    Raises:
        SpecError: With every problem found; a search spec (or a file of neither kind, see
            rsearch.spec.kind) is refused as a whole rather than reported key by key.
    """
    src, problems = _read_recipe_source(Path(path), (), [])
    if src is None:
        raise SpecError(problems)
    try:
        kind = file_kind(src)
    except SpecError as e:  # what extends failed to bring may be why: say both
        raise SpecError([*problems, *e.problems]) from None
    if kind == "spec":
        message = "a search spec, not a recipe (a spec's recipe is its `base:`)"
        raise SpecError([Problem((), message, src.where.get(()))])
    problems += apply_overrides(src, overrides)
    sections, section_problems = validate_sections(Recipe, src.data)
    problems += section_problems
    if "distill" in sections:
        problems += check_teachers(sections["distill"])
    if "model" in sections:
        problems += check_pretrained(sections["model"])
    _raise_if_any(problems, src)
    recipe = Recipe.model_validate(src.data)
    _raise_if_any(check_input_sizes({}, recipe), src)
    return recipe


def load_spec_or_recipe(path: str | Path) -> SearchSpec | Recipe:
    """Read and validate a file that is either a search spec or a standalone recipe.

    The file's top-level keys tell which (see rsearch.spec.kind); then it is loaded exactly as
    load_spec or load_recipe would.

    Raises:
        SpecError: The file cannot be read or its kind told (an empty file, keys of both
            kinds or of neither), or with every problem of the spec or recipe it holds.
    """
    src, problems = read_yaml(Path(path))
    if src is None:
        raise SpecError(problems)
    return load_spec(path) if file_kind(src) == "spec" else load_recipe(path)


def resolved_spec_data(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The spec as merged from its files and overrides, before defaults (for `rsearch show`)."""
    src, problems = _read_spec_source(Path(path), overrides)
    if src is None or problems:
        raise SpecError(problems)
    return dict(src.data)


def field_where(
    path: str | Path,
    loc: Loc,
    overrides: Sequence[str] = (),
    flags: Mapping[str, str | None] | None = None,
) -> str:
    """`file:line:col: field` (or `--flag: field`) where a spec field was set.

    Otherwise the field, marked as not set in the spec file (its default, or from a recipe
    file it extends).
    """
    field = ".".join(str(p) for p in loc)
    src, _ = _read_spec_source(Path(path), overrides, flags)
    at = src.where.get(loc) if src is not None else None
    return f"{at}: {field}" if at else f"{field} (not set in {Path(path).name})"


def _read_spec_source(
    path: Path, overrides: Sequence[str], flags: Mapping[str, str | None] | None = None
) -> tuple[Source | None, list[Problem]]:
    src, problems = read_yaml(path)
    if src is None:
        return None, problems
    if file_kind(src) == "recipe":  # refused whole, not key by key
        message = (
            "a recipe, not a search spec (train it with `rsearch train`, or extend it from a "
            "spec's `base:`)"
        )
        return None, [Problem((), message, src.where.get(()))]
    base = src.data.get("base")
    if isinstance(base, dict) and EXTENDS in base:
        inside = {k[1:]: v for k, v in src.where.items() if k[:1] == ("base",) and k != ("base",)}
        merged, where, extra = _merge_extends(
            base, inside, path.parent, (path.resolve(),), ("base",), []
        )
        problems += extra
        src.data["base"] = merged
        src.where = {k: v for k, v in src.where.items() if k[:1] != ("base",) or k == ("base",)}
        src.where.update({("base", *k): v for k, v in where.items()})
    problems += apply_overrides(src, overrides)
    apply_flags(src, flags or {})
    return src, problems


def _read_recipe_source(
    path: Path, stack: tuple[Path, ...], read: list[Path]
) -> tuple[Source | None, list[Problem]]:
    src, problems = read_yaml(path)
    if src is None or EXTENDS not in src.data:
        return src, problems
    inside = {k: v for k, v in src.where.items() if k}
    merged, where, extra = _merge_extends(
        src.data, inside, path.parent, (*stack, path.resolve()), (), read
    )
    return Source(merged, {(): src.where[()], **where}), problems + extra


def _merge_extends(
    section: dict[str, Any],
    where: dict[Loc, Location],
    folder: Path,
    stack: tuple[Path, ...],
    prefix: Loc,
    read: list[Path],
) -> tuple[dict[str, Any], dict[Loc, Location], list[Problem]]:
    """Merge the recipe files named by the section's `extends` under it (the section wins).

    Args:
        section: A recipe mapping holding an `extends` key.
        where: Locations of the section's keys, relative to the section.
        folder: Directory that relative `extends` paths start from.
        stack: Files being resolved, outermost first (to find cycles).
        prefix: Where the section sits in the spec (for problem paths).
        read: Files read through `extends` so far in this load (appended to; see
            MAX_EXTENDED_FILES).

    Returns:
        The merged mapping, its locations (relative to the section) and the problems.

    Raises:
        SpecError: The load would read more than MAX_EXTENDED_FILES files.
    """
    section = dict(section)
    extends = section.pop(EXTENDS)
    loc, at = (*prefix, EXTENDS), where.get((EXTENDS,))
    names = extends if isinstance(extends, list) else [extends]
    if not names or not all(isinstance(n, str) and n for n in names):
        return section, where, [Problem(loc, "must be a file path or a list of them", at)]
    merged: dict[str, Any] = {}
    merged_where: dict[Loc, Location] = {}
    problems: list[Problem] = []
    for name in names:
        try:
            target = (folder / name).resolve()
        except (OSError, RuntimeError, ValueError) as e:  # a symlink loop, a NUL in the name
            problems.append(Problem(loc, f"cannot resolve extended file {name!r}: {e}", at))
            continue
        if target in stack:
            chain = " -> ".join(p.name for p in (*stack, target))
            problems.append(Problem(loc, f"extends forms a cycle: {chain}", at))
            continue
        if not target.is_file():
            what = "is not a regular file" if target.exists() else "not found"
            problems.append(Problem(loc, f"extended file {what}: {target}", at))
            continue
        if len(read) >= MAX_EXTENDED_FILES:  # stop the whole load: one line, not one per file
            message = f"extends reads more than {MAX_EXTENDED_FILES} files in all"
            raise SpecError([Problem(loc, message, at)])
        read.append(target)
        parent, extra = _read_recipe_source(target, stack, read)
        problems += extra
        if parent is not None:
            merged = deep_merge(merged, parent.data)
            merged_where.update({k: v for k, v in parent.where.items() if k})
    merged_where.update({k: v for k, v in where.items() if k != (EXTENDS,)})
    return deep_merge(merged, section), merged_where, problems


def apply_overrides(src: Source, overrides: Sequence[str]) -> list[Problem]:
    """Apply `a.b.c=value` settings to src.data in place (values parsed as YAML).

    Keys that themselves hold dots (space entries such as `optim.lr`) are matched longest
    first, so `space.optim.lr.high=0.5` reaches the `high` of the `optim.lr` parameter.
    """
    problems: list[Problem] = []
    for i, item in enumerate(overrides, 1):
        here = Location("--set", i, 1)
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            problems.append(Problem((), f"--set expects path=value, got {item!r}", here))
            continue
        try:
            value, _ = load_yaml(text)
        except yaml.YAMLError as e:
            # the parser's problem alone: its full text quotes the value over several lines
            reason = getattr(e, "problem", None) or e
            problems.append(Problem((path,), f"--set value is not valid YAML: {reason}", here))
            continue
        loc = _set_path(src.data, path.strip().split("."), value)
        src.where[loc] = here
    return problems


def apply_flags(src: Source, flags: Mapping[str, str | None]) -> None:
    """Apply command-line flags that set spec fields (FLAG_FIELDS) to src.data in place.

    Raises:
        ValueError: For a flag FLAG_FIELDS does not know (a programming error).
    """
    for flag, value in flags.items():
        if flag not in FLAG_FIELDS:
            raise ValueError(f"{flag} does not set a spec field")
        if value is None:
            continue
        loc = _set_path(src.data, [str(p) for p in FLAG_FIELDS[flag]], value)
        src.where[loc] = Location(flag, 0, 0)


def _set_path(data: dict[str, Any], parts: list[str], value: Any) -> Loc:
    node = data
    loc: list[str] = []
    while len(parts) > 1:
        key = next(
            (
                ".".join(parts[:n])
                for n in range(len(parts) - 1, 0, -1)
                if ".".join(parts[:n]) in node
            ),
            parts[0],
        )
        parts = parts[len(key.split(".")) :]
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node, loc = child, [*loc, key]
    node[parts[0]] = value
    return (*loc, parts[0])


def _raise_if_any(problems: list[Problem], src: Source | None) -> None:
    if not problems:
        return
    located = [
        p if p.where or src is None else Problem(p.loc, p.message, src.locate(p.loc))
        for p in problems
    ]
    located.sort(
        key=lambda p: (p.where.file, p.where.line, p.where.column) if p.where else ("", 0, 0)
    )
    raise SpecError(located)


def parse_spec_text(text: str, name: str = "<string>") -> SearchSpec:
    """Validate a spec given as YAML text (no `extends`; for tests and tools)."""
    src, problems = parse_yaml(text, name)
    if src is None:
        raise SpecError(problems)
    return _validated_spec(src, problems)
