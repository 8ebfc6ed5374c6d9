"""Malformed specs: each must fail with the expected message, field path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.spec import SpecError, load_spec

GOOD = """\
name: t
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 4}
scheduler: {type: asha, grace_period: 1}
resources: {workers_per_trial: 1, cpus_per_worker: 1}
base:
  model: {name: resnet18}
  data: {dataset: digits, image_size: 32}
  epochs: 2
space:
  optim.lr: {type: float, low: 0.01, high: 0.1, log: true}
  optim.name: {type: categorical, choices: [sgd, sam]}
  optim.sam_rho: {type: float, low: 0.01, high: 0.1, when: {optim.name: sam}}
"""


def _with(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


# (id, spec text, field path, message fragment, line)
CASES = [
    (
        "randaugment-increasing-past-ten",
        _with(
            "  epochs: 2",
            "  augment: {randaugment_layers: 2, randaugment_magnitude: 15}\n  epochs: 2",
        ),
        "base.augment",
        "randaugment_increasing: false",
        9,
    ),
    ("unknown-top-key", GOOD + "storag: x\n", "storag", "did you mean 'storage'", 14),
    (
        "unknown-nested-key",
        _with("num_trials: 4", "num_trails: 4"),
        "search.num_trails",
        "did you mean 'num_trials'",
        3,
    ),
    (
        "unknown-scheduler-key",
        _with("grace_period: 1", "grace_perid: 1"),
        "scheduler.grace_perid",
        "did you mean 'grace_period'",
        4,
    ),
    (
        "wrong-type",
        _with("num_trials: 4", "num_trials: many"),
        "search.num_trials",
        "valid integer",
        3,
    ),
    (
        "low-above-high",
        _with("low: 0.01, high: 0.1, log", "low: 0.1, high: 0.01, log"),
        "space.optim.lr",
        "must be below high",
        11,
    ),
    (
        "low-equals-high",
        _with("low: 0.01, high: 0.1, log", "low: 0.1, high: 0.1, log"),
        "space.optim.lr",
        "must be below high",
        11,
    ),
    (
        "log-nonpositive",
        _with("low: 0.01, high: 0.1, log", "low: 0.0, high: 0.1, log"),
        "space.optim.lr",
        "log scale needs low > 0",
        11,
    ),
    (
        "step-misfit",
        _with("log: true}", "step: 0.04}"),
        "space.optim.lr",
        "does not divide the range",
        11,
    ),
    (
        "step-with-log",
        _with("log: true}", "log: true, step: 0.01}"),
        "space.optim.lr",
        "cannot be combined",
        11,
    ),
    (
        "unknown-space-path",
        _with("optim.lr:", "optim.lrate:"),
        "space.optim.lrate",
        "not a Recipe field (did you mean 'optim.lr'?)",
        11,
    ),
    (
        "space-section-path",
        GOOD + "  augment: {type: float, low: 0, high: 1}\n",
        "space.augment",
        "is a section",
        14,
    ),
    (
        "float-on-int-field",
        GOOD + "  epochs: {type: float, low: 1, high: 4}\n",
        "space.epochs.type",
        "use type: int",
        14,
    ),
    (
        "choice-rejected",
        _with("[sgd, sam]", "[sgd, sam, adamq]"),
        "space.optim.name.choices.2",
        "unknown timm optimizer 'adamq'",
        12,
    ),
    (
        "range-rejected-by-field",
        GOOD + "  loss.label_smoothing: {type: float, low: 0.0, high: 1.5}\n",
        "space.loss.label_smoothing.high",
        "less than 1",
        14,
    ),
    (
        "unknown-model",
        _with("name: resnet18}", "name: resnett18}"),
        "base.model.name",
        "did you mean 'resnet18'",
        7,
    ),
    (
        "unknown-optimizer",
        _with("  epochs: 2\n", "  epochs: 2\n  optim: {name: lambb}\n"),
        "base.optim.name",
        "did you mean 'lamb'",
        10,
    ),
    (
        "condition-unknown-param",
        _with("when: {optim.name: sam}", "when: {optim.nam: sam}"),
        "space.optim.sam_rho.when.optim.nam",
        "unknown parameter 'optim.nam'",
        13,
    ),
    (
        "condition-impossible-value",
        _with("when: {optim.name: sam}", "when: {optim.name: adam}"),
        "space.optim.sam_rho.when.optim.name",
        "never takes 'adam'",
        13,
    ),
    (
        "condition-on-float",
        _with("when: {optim.name: sam}", "when: {optim.lr: 0.05}"),
        "space.optim.sam_rho.when.optim.lr",
        "must name categorical",
        13,
    ),
    (
        "multi-objective-cmaes",
        _with("objective: {metric: val_top1}", "objective: [{metric: val_top1}, {metric: gflops}]")
        .replace("algorithm: tpe", "algorithm: cmaes")
        .replace("type: asha, grace_period: 1", "type: none"),
        "search.algorithm",
        "optimises one objective",
        3,
    ),
    (
        "multi-objective-asha",
        _with("objective: {metric: val_top1}", "objective: [{metric: val_top1}, {metric: gflops}]"),
        "scheduler.type",
        "needs scheduler type 'none'",
        4,
    ),
    (
        "unknown-metric",
        _with("metric: val_top1", "metric: val_acc"),
        "objective.0.metric",
        "'val_acc' is not allowed",
        2,
    ),
    (
        "zero-workers",
        _with("workers_per_trial: 1", "workers_per_trial: 0"),
        "resources.workers_per_trial",
        "greater than or equal to 1",
        5,
    ),
    (
        "negative-cpus",
        _with("cpus_per_worker: 1", "cpus_per_worker: -2"),
        "resources.cpus_per_worker",
        "greater than 0",
        5,
    ),
    (
        "unknown-scheduler",
        _with("type: asha, grace_period: 1", "type: ashaa"),
        "scheduler",
        "does not match any of the expected tags",
        4,
    ),
    (
        "unknown-param-type",
        _with(
            "{type: float, low: 0.01, high: 0.1, log: true}", "{type: real, low: 0.01, high: 0.1}"
        ),
        "space.optim.lr",
        "expected tags",
        11,
    ),
    ("empty-choices", _with("[sgd, sam]", "[]"), "space.optim.name.choices", "at least 1", 12),
    (
        "duplicate-choices",
        _with("[sgd, sam]", "[sgd, sgd, sam]"),
        "space.optim.name.choices",
        "repeat",
        12,
    ),
    ("missing-name", GOOD.replace("name: t\n", ""), "name", "required field is missing", 1),
    ("bad-name", _with("name: t", "name: 'my search!'"), "name", "should match pattern", 1),
    (
        "duplicate-key",
        _with("  epochs: 2\n", "  epochs: 2\n  epochs: 3\n"),
        "base.epochs",
        "duplicate key",
        10,
    ),
    (
        "dataset-needs-path",
        _with("dataset: digits", "dataset: image_folder"),
        "base.data",
        "needs data.path",
        8,
    ),
    (
        "warm-start-unknown",
        _with("num_trials: 4}", "num_trials: 4, warm_start: [{optim.lrr: 0.1}]}"),
        "search.warm_start.0.optim.lrr",
        "did you mean 'optim.lr'",
        3,
    ),
    (
        "warm-start-out-of-range",
        _with("num_trials: 4}", "num_trials: 4, warm_start: [{optim.lr: 5}]}"),
        "search.warm_start.0.optim.lr",
        "outside",
        3,
    ),
    (
        "grid-continuous",
        _with("algorithm: tpe", "algorithm: grid"),
        "space.optim.lr",
        "finite grid",
        11,
    ),
    (
        "pbt-architecture",
        _with("type: asha, grace_period: 1", "type: pbt")
        + "  model.drop_path_rate: {type: float, low: 0.0, high: 0.2}\n",
        "space.model.drop_path_rate",
        "pbt cannot mutate",
        14,
    ),
    (
        "objective-repeats",
        _with(
            "objective: {metric: val_top1}", "objective: [{metric: val_top1}, {metric: val_top1}]"
        ).replace("type: asha, grace_period: 1", "type: none"),
        "objective",
        "repeats a metric",
        2,
    ),
]


def _problems(tmp_path: Path, text: str) -> list:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.problems


def test_good_spec_is_valid(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(GOOD)
    spec = load_spec(tmp_path / "spec.yaml")
    assert spec.space["optim.sam_rho"].when == {"optim.name": "sam"}


@pytest.mark.parametrize(
    ("text", "field", "fragment", "line"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_spec(tmp_path: Path, text: str, field: str, fragment: str, line: int) -> None:
    problems = _problems(tmp_path, text)
    matching = [p for p in problems if p.field == field and fragment in p.message]
    assert matching, "\n".join(str(p) for p in problems)
    assert matching[0].where is not None
    assert matching[0].where.file.endswith("spec.yaml")
    assert matching[0].where.line == line, str(matching[0])


def test_enough_malformed_cases() -> None:
    assert len(CASES) >= 25


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = _with("num_trials: 4", "num_trials: 0").replace(
        "workers_per_trial: 1", "workers_per_trial: 0"
    )
    text = text.replace("optim.lr:", "optim.lrate:").replace("name: resnet18", "name: nosuchnet")
    fields = {p.field for p in _problems(tmp_path, text)}
    assert {
        "search.num_trials",
        "resources.workers_per_trial",
        "space.optim.lrate",
        "base.model.name",
    } <= fields


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("", "file is empty", 1),
        ("# only a comment\n", "file is empty", 1),
        ("name: t\nobjective: [unclosed\n", "YAML syntax error", 3),
        ("- a\n- b\n", "expected a mapping", 1),
        ("name: t\n  bad indent: 1\n", "YAML syntax error", 2),
    ],
)
def test_unreadable_yaml(tmp_path: Path, text: str, fragment: str, line: int) -> None:
    problems = _problems(tmp_path, text)
    assert len(problems) == 1 and fragment in problems[0].message, problems
    assert problems[0].where is not None and problems[0].where.line == line


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_unsafe_yaml_tags_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "name: !!python/object/apply:os.system ['true']\n")
    assert "YAML" in problems[0].message


def _spec_extending(tmp_path: Path, target: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(_with("base:\n", f"base:\n  extends: {target}\n"))
    return spec


def test_extends_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_spec_extending(tmp_path, "presets/none.yaml"))
    (problem,) = info.value.problems
    assert problem.field == "base.extends" and "not found" in problem.message
    assert problem.where is not None and problem.where.line == 7


def test_extends_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nepochs: 3\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(SpecError, match="cycle: spec.yaml -> a.yaml -> b.yaml -> a.yaml"):
        load_spec(_spec_extending(tmp_path, "a.yaml"))


def test_extends_merges_deeply_and_spec_wins(tmp_path: Path) -> None:
    (tmp_path / "root.yaml").write_text(
        "optim: {name: lamb, lr: 0.008, weight_decay: 0.02}\nepochs: 100\n"
    )
    (tmp_path / "mid.yaml").write_text(
        "extends: root.yaml\noptim: {lr: 0.004}\nloss: {name: bce}\n"
    )
    spec = load_spec(_spec_extending(tmp_path, "mid.yaml"))
    assert spec.base.optim.name == "lamb"
    assert spec.base.optim.lr == 0.004
    assert spec.base.optim.weight_decay == 0.02
    assert spec.base.loss.name == "bce"
    assert spec.base.epochs == 2  # the spec's own value wins over the file's 100


def test_error_in_extended_file_points_there(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("epochs: 2\noptim:\n  lr: -1\n")
    with pytest.raises(SpecError) as info:
        load_spec(_spec_extending(tmp_path, "r.yaml"))
    (problem,) = info.value.problems
    assert problem.field == "base.optim.lr"
    assert problem.where is not None
    assert problem.where.file.endswith("r.yaml") and problem.where.line == 3


def test_set_overrides(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(GOOD)
    spec = load_spec(path, ["base.epochs=5", "space.optim.lr.high=0.2", "search.seed=7"])
    assert spec.base.epochs == 5 and spec.space["optim.lr"].high == 0.2 and spec.search.seed == 7
    with pytest.raises(SpecError) as info:
        load_spec(path, ["base.epochs=-1", "nonsense"])
    shown = [str(p) for p in info.value.problems]
    assert any(s.startswith("--set:1:1: base.epochs") for s in shown), shown
    assert any("expects path=value" in s for s in shown), shown


def test_example_error_text(tmp_path: Path) -> None:
    problems = _problems(tmp_path, _with("num_trials: 4", "num_trails: 4"))
    assert str(problems[0]).endswith(
        "spec.yaml:3:26: search.num_trails: unknown key 'num_trails' (did you mean 'num_trials'?)"
    )
