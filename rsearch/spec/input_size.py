"""Models that cannot take the data's resolution, refused while the spec is validated.

A model's smallest input (inception_resnet_v2 needs 75 px) and whether it is a ViT or Mixer
with a patch size are facts of the installed timm, found by building the model on torch's
meta device (rsearch.train.input_probe). That costs seconds of imports, which `rsearch
validate` must not pay: the probe runs in a child process, once per architecture and timm
version, and its answers are cached next to the timm names (rsearch.spec.names). A cache hit
starts no process.
"""

from __future__ import annotations

import atexit
import json
import select
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from itertools import product
from pathlib import Path
from typing import IO, Any

from rsearch.spec.data_section import DataConfig
from rsearch.spec.errors import Loc, Problem
from rsearch.spec.model_section import ARCHITECTURE
from rsearch.spec.names import _write_atomically, cache_dir
from rsearch.spec.params import CategoricalParam, FloatParam, IntParam
from rsearch.spec.recipe import Recipe
from rsearch.spec.resolutions import eval_sizes, train_sizes

AnyParam = FloatParam | IntParam | CategoricalParam

PROBED = (*ARCHITECTURE, "patch_size")
"""The model fields the smallest input depends on (a ViT's patch besides the architecture)."""

PROBE_TIMEOUT_S = 600
"""Longest wait for the child process (importing torch and timm takes seconds, but minutes on
a machine loaded many times over its cores); past it nothing is refused."""

MAX_VARIANTS = 64
"""Most architectures one spec's space is checked for (the product of its architecture
choices); a larger space checks its base recipe's and each choice alone."""

SIZE_FIELDS = ("data.image_size", "data.eval_image_size")
"""Searched fields that set a resolution the model sees."""


@dataclass(frozen=True)
class InputFacts:
    """What one architecture accepts, as the probe found it."""

    family: str | None
    """'vit' or 'mixer' for timm's ViT and MLP-Mixer classes (built per resolution)."""
    patch: int | None
    """A ViT's or Mixer's own patch size."""
    min_size: int | None
    """Smallest square input the model trains on; None when unknown (the probe failed)."""


def architecture_key(model: dict[str, Any]) -> str:
    """The cache key of an architecture: its PROBED fields as sorted JSON."""
    return json.dumps({k: model.get(k) for k in PROBED}, sort_keys=True)


def input_facts(models: list[dict[str, Any]]) -> dict[str, InputFacts]:
    """The facts of each architecture (model sections as dicts), by architecture_key.

    Cached answers are read from the cache file; the others are probed in one child process
    and added to it. A probe that cannot run yields no facts (nothing is refused for them).
    """
    path = cache_dir() / f"timm-{metadata.version('timm')}-input-sizes.json"
    try:
        cached: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    missing = sorted({architecture_key(m) for m in models} - set(cached))
    if missing:
        found = _probe(missing)
        if found:
            cached = {**cached, **found}
            _write_atomically(path, json.dumps(cached, sort_keys=True))
    return {k: InputFacts(**v) for k, v in cached.items() if isinstance(v, dict)}


class _Prober:
    """One probe child for the whole process, started at the first cache miss.

    Importing torch and timm is most of a probe's cost: `rsearch validate` over many files
    pays it once. A child that fails or outlives PROBE_TIMEOUT_S is dropped and answers
    nothing (an unknown minimum refuses nothing; training still says what went wrong).
    """

    def __init__(self) -> None:
        self.child: subprocess.Popen[str] | None = None

    def ask(self, keys: list[str]) -> dict[str, Any]:
        child = self.child or self._start()
        if child is None or child.stdin is None or child.stdout is None:
            return {}
        try:
            child.stdin.write(json.dumps(keys) + "\n")
            child.stdin.flush()
            line = _read_line(child.stdout, PROBE_TIMEOUT_S)
            answer = json.loads(line) if line else None
        except (OSError, ValueError):
            answer = None
        if not isinstance(answer, dict):
            self.close()
            return {}
        return answer

    def _start(self) -> subprocess.Popen[str] | None:
        try:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "rsearch.train.input_probe"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                cwd=Path(__file__).resolve().parents[2],
            )
        except OSError:
            return None
        atexit.register(self.close)
        return self.child

    def close(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            child.kill()
            child.wait()


def _read_line(stream: IO[str], timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


_PROBER = _Prober()


def _probe(keys: list[str]) -> dict[str, Any]:
    return _PROBER.ask(keys)


def recipe_sizes(data: DataConfig) -> list[int]:
    """Every resolution a recipe trains or evaluates at, smallest first.

    The train and eval sizes of rsearch.spec.resolutions (their eval sizes under
    data.eval_rule, data.eval_resolutions), and data.train_resolutions even with
    multi_resolution off, which a search space may turn on.
    """
    return sorted({*train_sizes(data), *eval_sizes(data), *data.train_resolutions})


@dataclass(frozen=True)
class _Variant:
    model: dict[str, Any]
    """The model section checked."""
    blame: Loc
    """Where a refusal of this model points (a space choice, or the base's model name)."""


def check_input_sizes(space: dict[str, AnyParam], base: Recipe, prefix: Loc = ()) -> list[Problem]:
    """Refuse the models of a recipe or search space that cannot take its resolutions.

    Checked: the base recipe's model at every resolution it trains and evaluates at, and for
    a searched architecture (model.name, small_stem, patch_size) each combination of choices;
    a searched resolution adds its smallest value (a categorical's least choice, a range's low).

    Args:
        space: The search space (empty for a standalone recipe).
        base: The base recipe.
        prefix: Where the base recipe sits (("base",) in a spec, () in a recipe file).
    """
    sizes = recipe_sizes(base.data)
    size_blame: dict[int, Loc] = {}
    for path in SIZE_FIELDS:
        param = space.get(path)
        if param is not None:
            low, where = _smallest(param)
            if low is not None:
                size_blame.setdefault(low, ("space", path, *where))
    all_sizes = sorted({*sizes, *size_blame})
    variants = _variants(space, base, prefix)
    facts = input_facts([v.model for v in variants])
    problems: list[Problem] = []
    for variant in variants:
        fact = facts.get(architecture_key(variant.model))
        if fact is not None:
            problems += _refusals(variant, fact, sizes, all_sizes, size_blame)
    return _unique(problems)


def _smallest(param: AnyParam) -> tuple[int | None, Loc]:
    if isinstance(param, CategoricalParam):
        ints = [(v, i) for i, v in enumerate(param.choices) if isinstance(v, int)]
        if not ints:
            return None, ()
        value, index = min(ints)
        return value, ("choices", index)
    return int(param.low), ("low",)


def _variants(space: dict[str, AnyParam], base: Recipe, prefix: Loc) -> list[_Variant]:
    model = base.model.model_dump(mode="json")
    searched = [
        (path.split(".", 1)[1], param)
        for path, param in space.items()
        if path.startswith("model.")
        and path.split(".", 1)[1] in PROBED
        and isinstance(param, CategoricalParam)
    ]
    out = [_Variant(model, (*prefix, "model", "name"))]
    options = [[(field, i, v) for i, v in enumerate(p.choices)] for field, p in searched]
    combos = 1
    for o in options:
        combos *= len(o)
    picks = product(*options) if combos <= MAX_VARIANTS else ([o] for opts in options for o in opts)
    for pick in picks:
        if not pick:  # nothing searched: the base recipe's model is the only variant
            continue
        changed = {**model, **{field: value for field, _, value in pick}}
        field, index, _ = pick[0]
        named = [p for p in pick if p[0] == "name"]
        if named:
            field, index, _ = named[0]
        blame: Loc = ("space", f"model.{field}", "choices", index)
        out.append(_Variant(changed, blame))
    return out


def _refusals(
    variant: _Variant,
    fact: InputFacts,
    sizes: list[int],
    all_sizes: list[int],
    size_blame: dict[int, Loc],
) -> list[Problem]:
    name = variant.model["name"]
    if fact.family is not None:
        return _patch_refusals(variant, fact, sizes, all_sizes, size_blame)
    if variant.model.get("patch_size") is not None:
        message = f"model.patch_size applies to ViTs and MLP-Mixers; {name!r} is neither"
        return [Problem(variant.blame, message)]
    if fact.min_size is None or all_sizes[0] >= fact.min_size:
        return []
    size = all_sizes[0]
    blame = variant.blame if size in sizes else size_blame[size]
    return [
        Problem(
            blame,
            f"{name!r} cannot take {size} px inputs: its smallest input is {fact.min_size} px "
            f"(raise data.image_size / eval_image_size, or pick a model made for small images)",
        )
    ]


def _patch_refusals(
    variant: _Variant,
    fact: InputFacts,
    sizes: list[int],
    all_sizes: list[int],
    size_blame: dict[int, Loc],
) -> list[Problem]:
    name = variant.model["name"]
    patch = variant.model.get("patch_size") or fact.patch or 1
    given = "model.patch_size" if variant.model.get("patch_size") else "its own patch size"
    blame = variant.blame
    if variant.model.get("patch_size") and blame[-1:] == ("name",):
        blame = (*blame[:-1], "patch_size")
    problems = []
    for size in all_sizes:
        if size % patch:
            divisors = [p for p in range(2, min(size, 32) + 1) if size % p == 0]
            where = blame if size in sizes else size_blame[size]
            problems.append(
                Problem(
                    where,
                    f"{name!r} cuts images into {patch} px patches ({given}), which does not "
                    f"divide {size} px; set model.patch_size to one of {divisors}",
                )
            )
    if fact.family == "mixer" and len(sizes) > 1:
        problems.append(
            Problem(
                variant.blame,
                f"{name!r} is an MLP-Mixer, sized for one resolution, but the recipe trains or "
                f"evaluates at {sizes}; drop data.progressive sizes and data.eval_image_size",
            )
        )
    return problems


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Loc, str]] = set()
    out = []
    for p in problems:
        if (p.loc, p.message) not in seen:
            seen.add((p.loc, p.message))
            out.append(p)
    return out
