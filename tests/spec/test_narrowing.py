"""What an extended search may change (rsearch.spec.narrowing) and its spec (extended_spec)."""

from __future__ import annotations

import pytest

from rsearch.spec import SearchSpec, SpecError, extended_spec, parse_spec_text
from rsearch.spec.narrowing import narrowing_problems, narrowing_refusal
from rsearch.spec.params import CategoricalParam, FloatParam, IntParam

SPEC = """
name: narrow
objective: {metric: val_top1, mode: max}
search:
  algorithm: tpe
  num_trials: 4
  warm_start: [{optim.lr: 0.05, model.name: test_resnet}]
scheduler: {type: asha, grace_period: 1}
base:
  model: {name: test_resnet}
  data: {dataset: digits, image_size: 16}
  optim: {name: sgd, lr: 0.1}
  epochs: 2
space:
  optim.lr: {type: float, low: 0.001, high: 0.3, log: true}
  loss.label_smoothing: {type: float, low: 0.0, high: 0.2, step: 0.05}
  data.batch_size: {type: int, low: 16, high: 128, step: 16}
  model.name: {type: categorical, choices: [test_resnet, resnet10t]}
"""


def _float(low: float, high: float, **kw: object) -> FloatParam:
    return FloatParam.model_validate({"type": "float", "low": low, "high": high, **kw})


def _extend(*sets: str, trials: int = 2) -> SearchSpec:
    return extended_spec(parse_spec_text(SPEC), sets, trials, "run/resolved.yaml")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (_float(0.001, 0.3, log=True), _float(0.001, 0.3, log=True)),
        (_float(0.001, 0.3, log=True), _float(0.01, 0.1, log=True)),
        (_float(0.0, 1.0, step=0.25), _float(0.25, 0.75, step=0.25)),
        (
            IntParam(type="int", low=16, high=128, step=16),
            IntParam(type="int", low=32, high=64, step=16),
        ),
        (
            CategoricalParam(type="categorical", choices=["a", "b"]),
            CategoricalParam(type="categorical", choices=["a", "b"]),
        ),
    ],
)
def test_narrowed_or_unchanged_is_accepted(old: FloatParam, new: FloatParam) -> None:
    assert narrowing_refusal(old, new) is None


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (_float(0.001, 0.3), _float(0.0005, 0.3), "range [0.0005, 0.3] widens [0.001, 0.3]"),
        (_float(0.001, 0.3), _float(0.01, 0.5), "range [0.01, 0.5] widens [0.001, 0.3]"),
        (_float(0.001, 0.3), _float(0.001, 0.3, log=True), "log cannot change"),
        (_float(0.0, 1.0, step=0.25), _float(0.0, 1.0, step=0.5), "step cannot change"),
        (_float(0.0, 1.0, step=0.25), _float(0.1, 0.85, step=0.25), "off the grid of [0, 1]"),
        (
            IntParam(type="int", low=16, high=128, step=16),
            IntParam(type="int", low=24, high=120, step=16),
            "off the grid of [16, 128] in steps of 16",
        ),
        (
            CategoricalParam(type="categorical", choices=["a", "b", "c"]),
            CategoricalParam(type="categorical", choices=["a", "b"]),
            "choices ['a', 'b', 'c'] cannot become ['a', 'b']",
        ),
        (
            _float(0.0, 1.0),
            IntParam(type="int", low=0, high=1),
            "a float parameter cannot become int",
        ),
        (
            _float(0.0, 1.0, when={"optim.name": "sgd"}),
            _float(0.0, 1.0, when={"optim.name": "adamw"}),
            "its conditions cannot change",
        ),
    ],
)
def test_anything_but_narrowing_is_refused(old: FloatParam, new: FloatParam, reason: str) -> None:
    refusal = narrowing_refusal(old, new)
    assert refusal is not None and reason in refusal, refusal


def test_only_the_adjustable_fields_may_change() -> None:
    old = parse_spec_text(SPEC)
    new = old.model_copy(deep=True)
    new.search.max_concurrent = 1
    new.search.max_failures = 2
    new.resources.cpus_per_worker = 2.0
    assert narrowing_problems(old, new) == []
    new.search.seed = 7
    new.base.optim.lr = 0.2
    new.space.pop("data.batch_size")
    fields = {p.field: p.message for p in narrowing_problems(old, new)}
    assert set(fields) == {"search.seed", "base.optim.lr", "space.data.batch_size"}
    assert (
        "the base recipe cannot change when extending a search (0.1 -> 0.2)"
        in fields["base.optim.lr"]
    )
    assert fields["search.seed"].startswith("cannot change when extending a search (0 -> 7)")
    assert "cannot remove a parameter" in fields["space.data.batch_size"]


def test_extended_spec_adds_the_trials_and_keeps_the_rest() -> None:
    spec = _extend("space.optim.lr.low=0.01", "search.max_concurrent=1", trials=3)
    assert spec.search.num_trials == 7
    assert spec.space["optim.lr"].low == 0.01
    assert spec.search.max_concurrent == 1
    # The warm start already ran: a range narrowed away from it is no problem.
    narrowed = _extend("space.optim.lr.high=0.01")
    assert narrowed.search.warm_start == parse_spec_text(SPEC).search.warm_start


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "space.optim.lr.low=0.0001",
            "--set:2:1: space.optim.lr: range [0.0001, 0.3] widens [0.001, 0.3]; an extended "
            "search may only narrow a range (low >= 0.001, high <= 0.3)",
        ),
        (
            "scheduler={type: none}",
            "--set:2:1: scheduler.type: the scheduler type cannot change when extending a "
            "search (asha -> none)",
        ),
        (
            "search.algorithm=random",
            "--set:2:1: search.algorithm: the sampler (search.algorithm) cannot change",
        ),
        ("objective={metric: val_loss}", "--set:2:1: objective: the objective cannot change"),
        (
            "search.num_trials=9",
            "--set:2:1: search.num_trials: the trial count (--trials adds to it) cannot change",
        ),
        ("space.optim.lr.low=abc", "--set:2:1: space.optim.lr.low: Input should be a valid"),
        (
            "space.model.name.choices=[test_resnet]",
            "--set:2:1: space.model.name: choices ['test_resnet', 'resnet10t'] cannot become",
        ),
    ],
)
def test_a_refused_override_is_named_with_its_set(override: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        _extend("search.max_concurrent=1", override)
    assert str(caught.value).startswith(message), str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_too_many_trials_in_all_names_the_trials_flag() -> None:
    with pytest.raises(SpecError, match=r"^--trials: search.num_trials: .*\(4 \+ 100000 trials\)"):
        _extend(trials=100_000)
