"""Which kind of YAML file a mapping is: a search spec or a standalone recipe.

The two share no top-level key. A search spec has SearchSpec's fields (`name`, `objective`,
`search`, `space`, `base`, `scaling`, ...), its recipe nested under `base:`; a recipe has
Recipe's fields (`model`, `data`, `optim`, `epochs`, ...) or `extends`. So the keys a file
holds tell its kind; keys of neither kind (typos) do not count. A file with keys of both kinds,
or of neither, is refused rather than guessed at.
"""

from __future__ import annotations

import difflib
from typing import Literal

from rsearch.spec.errors import Problem, SpecError
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import SearchSpec
from rsearch.spec.source import Source

Kind = Literal["spec", "recipe"]

EXTENDS = "extends"
"""The key naming recipe files merged under a recipe (top level of a recipe, or a spec's base)."""

SPEC_KEYS = frozenset(SearchSpec.model_fields)
"""Top-level keys of a search spec."""

RECIPE_KEYS = frozenset(Recipe.model_fields) | {EXTENDS}
"""Top-level keys of a recipe file."""


def file_kind(src: Source) -> Kind:
    """Tell a read YAML mapping a search spec or a recipe by its top-level keys.

    Raises:
        SpecError: The keys are of both kinds, or of neither (the problem points at the file).
    """
    keys = [str(k) for k in src.data]
    spec_keys = [k for k in keys if k in SPEC_KEYS]
    recipe_keys = [k for k in keys if k in RECIPE_KEYS]
    if spec_keys and recipe_keys:
        message = (
            f"holds search-spec keys ({', '.join(spec_keys)}) and recipe keys "
            f"({', '.join(recipe_keys)}): a search spec keeps its recipe under `base:`"
        )
        raise SpecError([Problem((), message, src.where.get(()))])
    if not spec_keys and not recipe_keys:
        raise SpecError([Problem((), _neither(keys), src.where.get(()))])
    return "spec" if spec_keys else "recipe"


def _neither(keys: list[str]) -> str:
    if not keys:
        return "an empty mapping: neither a search spec nor a recipe"
    close = difflib.get_close_matches(keys[0], sorted(SPEC_KEYS | RECIPE_KEYS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"neither a search spec nor a recipe, no top-level key of either: {', '.join(keys)}"
        f"{hint}; a spec has name, objective, space, base, ...; a recipe has model, data, "
        f"optim, epochs, ..."
    )
