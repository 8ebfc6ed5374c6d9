"""Search spec or recipe: a file's top-level keys tell which, or it is refused."""

from __future__ import annotations

import pytest

from rsearch.spec import SpecError
from rsearch.spec.kind import RECIPE_KEYS, SPEC_KEYS, file_kind
from rsearch.spec.source import Source, parse_yaml


def _source(text: str) -> Source:
    src, problems = parse_yaml(text, "f.yaml")
    assert src is not None and not problems
    return src


def test_the_kinds_share_no_key() -> None:
    assert not SPEC_KEYS & RECIPE_KEYS


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("base: {epochs: 2}\n", "spec"),
        ("name: x\nobjectiv: {metric: val_top1}\n", "spec"),  # a typo does not count
        ("extends: presets/rsb_a3.yaml\n", "recipe"),
        ("epochs: 2\nmodle: {name: resnet18}\n", "recipe"),
    ],
)
def test_kind_from_keys(text: str, kind: str) -> None:
    assert file_kind(_source(text)) == kind


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("space: {}\nmodel: {name: resnet18}\n", "holds search-spec keys (space) and recipe keys"),
        ("nmae: x\n", "neither a search spec nor a recipe"),
    ],
)
def test_ambiguous_files_are_refused_at_their_top(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        file_kind(_source(text))
    (problem,) = caught.value.problems
    assert message in problem.message
    assert str(problem.where) == "f.yaml:1:1"
