"""Recipes that a shard stream cannot train as written are refused at validation."""

from __future__ import annotations

import pytest

from rsearch.spec import parse_spec_text
from rsearch.spec.errors import SpecError

BASE = "name: s\nobjective: {metric: val_top1}\nbase:\n  data: {dataset: shards, path: /data/p"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (", fraction: 0.5}\n", "data.fraction"),
        (", train_resolutions: [24, 32]}\n", "data.train_resolutions"),
        (", sampler: balanced}\n", "data.sampler: balanced"),
        (", one_vs_rest: 3}\n", "data.one_vs_rest"),
        ("}\n  loss: {class_weights: balanced}\n", "loss.class_weights: balanced"),
    ],
)
def test_a_field_a_stream_cannot_honour_is_refused_by_name(extra: str, named: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec_text(BASE + extra, "s.yaml")
    message = str(caught.value)
    assert "data.dataset shards" in message and named in message
    assert "s.yaml:" in message  # where, as every spec error


def test_what_a_stream_can_do_passes() -> None:
    spec = parse_spec_text(BASE + "}\n  loss: {class_weights: [1.0, 3.0]}\n", "s.yaml")
    assert spec.base.data.dataset == "shards"
    image_folder = BASE.replace("shards", "image_folder") + ", fraction: 0.5, sampler: balanced}\n"
    assert parse_spec_text(image_folder, "s.yaml").base.data.fraction == 0.5
