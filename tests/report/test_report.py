"""Reports from hand-made studies: sections, Pareto sets, scaling, importance, curves.

What the `report` verb does with them (where it writes, its errors) is tests/cli/test_report.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from rsearch.cli.report import report_after_search
from rsearch.report import write_report
from rsearch.report.data import load_search
from rsearch.report.pareto import COST_AXES, accuracy_front, non_dominated, search_front
from rsearch.rundir import open_run
from tests.report.rundirs import (
    COMPOUND,
    SECTIONS,
    SPACE,
    Trial,
    brute_force_front,
    make_run,
    random_trials,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def headings(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.M)


def assert_pngs(files: list[Path]) -> None:
    assert files
    for path in files:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, path


@pytest.mark.parametrize(
    ("seed", "second", "mode"), [(1, "infer_images_per_s", "max"), (2, "params_m", "min")]
)
def test_multi_objective_pareto_set_is_the_non_dominated_trials(
    tmp_path: Path, seed: int, second: str, mode: str
) -> None:
    trials = random_trials(12, seed, ("val_top1", second))
    objective = [{"metric": "val_top1", "mode": "max"}, {"metric": second, "mode": mode}]
    run_dir, _ = make_run(tmp_path, trials, objective=objective)
    expected = brute_force_front(
        {i: list(t.values or []) for i, t in enumerate(trials)}, ["max", mode]
    )
    assert 1 < len(expected) < 12  # the seeds give a real front, not everything

    report = write_report(run_dir, fmt="md")

    search = load_search(run_dir)
    assert {t.number for t in search_front(search)} == expected
    text = report.page.read_text()
    assert headings(text) == list(SECTIONS)
    listed = re.search(rf"Pareto set over val_top1 and {second} .*: (.+)\.", text)
    assert listed is not None
    assert {int(n) for n in re.findall(r"#(\d+)", listed.group(1))} == expected
    table_rows = [line for line in text.splitlines() if re.match(r"\| #\d+ \|", line)]
    assert {int(re.match(r"\| #(\d+)", r).group(1)) for r in table_rows} == expected  # type: ignore[union-attr]
    assert_pngs(report.figures)
    for figure in report.figures:  # markdown references each PNG written beside it
        assert f"]({figure.name})" in text and figure.parent == report.page.parent
    assert not report.partial


@pytest.mark.parametrize("axis", COST_AXES, ids=lambda a: a.metric)
def test_accuracy_fronts_against_each_cost(tmp_path: Path, axis: object) -> None:
    trials = random_trials(15, 3, ("val_top1",))
    run_dir, _ = make_run(tmp_path, trials)
    search = load_search(run_dir)
    mode = axis.direction  # type: ignore[attr-defined]
    metric = axis.metric  # type: ignore[attr-defined]
    points = {i: [t.metrics["val_top1"], t.metrics[metric]] for i, t in enumerate(trials)}
    assert accuracy_front(search, axis) == brute_force_front(points, ["max", mode])  # type: ignore[arg-type]


def test_non_dominated_keeps_ties_and_drops_dominated() -> None:
    points = {0: [1.0, 1.0], 1: [1.0, 1.0], 2: [0.5, 2.0], 3: [0.5, 0.5], 4: [2.0, 0.4]}
    assert non_dominated(points, ["max", "max"]) == {0, 1, 2, 4}
    assert non_dominated(points, ["max", "min"]) == {4}
    assert non_dominated(points, ["min", "min"]) == {3, 4}


def test_single_objective_html_report_with_early_stopped_trials(tmp_path: Path) -> None:
    done = random_trials(5, 4, ("val_top1",))
    pruned = Trial(
        TrialState.PRUNED,
        {"optim.lr": 0.001, "loss.label_smoothing": 0.1},
        {"epoch": 1.0, "val_top1": 20.0},
        curve={1: 20.0},
    )
    failed = Trial(TrialState.FAIL, {"optim.lr": 0.2, "loss.label_smoothing": 0.0})
    run_dir, _ = make_run(tmp_path, [*done, pruned, failed])

    report = write_report(run_dir, tmp_path / "out", fmt="html")

    html = report.page.read_text()
    assert report.page == tmp_path / "out" / "report.html"
    assert [h for h in re.findall(r"<h2>(.+?)</h2>", html)] == list(SECTIONS)
    # self-contained: every figure inline, no file reference
    assert html.count('src="data:image/png;base64,') == len(report.figures)
    assert not re.search(r'src="(?!data:)', html)
    assert "Stopped early: trial #5 after epoch 1." in html
    assert "1 pruned" in html and "1 fail" in html
    best = max(range(5), key=lambda i: done[i].metrics["val_top1"])
    first_row = re.search(r"<tbody><tr><td>#(\d+)</td>", html)
    assert first_row is not None and int(first_row.group(1)) == best
    assert_pngs(report.figures)
    names = {f.name for f in report.figures}
    assert {"learning_curves.png", "importance.png", "parallel_coordinates.png"} <= names
    assert "scaling.png" not in names


SCALED = {
    "model.depth_multiplier": [0.5, 1.0, 1.5, 2.0],
    "model.width_multiplier": [0.5, 0.75, 1.0, 2.0],
    "data.image_size": [16, 24, 32, 16],
}


@pytest.mark.parametrize("path", list(SCALED))
def test_scaling_section_when_a_scaling_field_is_searched(tmp_path: Path, path: str) -> None:
    trials = random_trials(4, 5, ("val_top1",))
    for t, value in zip(trials, SCALED[path], strict=True):
        t.params[path] = value
    low, high = min(SCALED[path]), max(SCALED[path])
    param = (
        {"type": "int", "low": low, "high": high, "step": 8}
        if path == "data.image_size"
        else {"type": "float", "low": low, "high": high}
    )
    run_dir, _ = make_run(tmp_path, trials, space={**SPACE, path: param})
    report = write_report(run_dir, fmt="md")
    text = report.page.read_text()
    assert headings(text) == [*SECTIONS, "Scaling"]
    assert f"scaling dimensions varied: {path}." in text
    assert_pngs([f for f in report.figures if f.name == "scaling.png"])


def test_scaling_from_the_recipe_values_tune_ran(tmp_path: Path) -> None:
    """A scaling strategy searches its own knob (here scaling.phi is not a recipe path);
    the depth and resolution it resolves to reach Tune's config, and the report reads them."""
    trials = random_trials(3, 6, ("val_top1",))
    for t, phi in zip(trials, (0.0, 1.0, 2.0), strict=True):
        t.params["scaling.phi"] = phi
    run_dir, _ = make_run(tmp_path, trials)
    layouts = [[1, 1, 1, 1], [2, 2, 2, 2], [3, 4, 6, 3]]
    for i, layers in enumerate(layouts):
        trial_dir = run_dir / f"trial_driver_t{i:03d}"
        trial_dir.mkdir()
        lines = [
            {
                "trial_id": f"t{i:03d}",
                "epoch": epoch,
                "val_top1": 10.0 * epoch + i,
                "config": {"params": {"model.layers": layers, "data.image_size": 16 + 8 * i}},
            }
            for epoch in (1, 2, 3)
        ]
        text = "\n".join(json.dumps(line) for line in lines)
        (trial_dir / "result.json").write_text(text + '\n{"trial_id": "t00')  # cut mid-write

    search = load_search(run_dir)
    assert search.curve_metric == "val_top1"
    assert search.trials[2].curve == {1: 12.0, 2: 22.0, 3: 32.0}
    assert search.trials[2].scaling["model.layers"] == [3, 4, 6, 3]
    report = write_report(run_dir, fmt="md")
    text = report.page.read_text()
    assert "scaling dimensions varied: model.layers, data.image_size." in text
    assert "| trial | optim.lr | loss.label_smoothing | scaling.phi |" in text


def test_scaling_section_of_a_compound_scaling_strategy(tmp_path: Path) -> None:
    """EfficientNet compound scaling: the sampler draws alpha, beta and gamma's place in its
    band; the report resolves them to depth, width and resolution through the spec."""
    trials = random_trials(4, 16, ("val_top1",))
    bases = [(1.0, 1.2, 0.0), (1.2, 1.1, 1.0), (1.4, 1.0, 1.0), (1.1, 1.15, 0.5)]
    for t, (alpha, beta, band) in zip(trials, bases, strict=True):
        t.params.update({"scaling.alpha": alpha, "scaling.beta": beta, "scaling.gamma_band": band})
    run_dir, _ = make_run(tmp_path, trials, scaling=COMPOUND)

    search = load_search(run_dir)
    assert search.trials[2].scaling["model.depth_multiplier"] == pytest.approx(1.4)
    assert search.trials[2].scaling["model.width_multiplier"] == pytest.approx(1.0)
    text = write_report(run_dir, fmt="md").page.read_text()
    assert (
        "scaling dimensions varied: model.depth_multiplier, model.width_multiplier, "
        "data.image_size." in text
    )
    assert "| scaling.alpha | scaling.beta | scaling.gamma_band |" in text


def test_no_scaling_section_when_depth_width_resolution_are_fixed(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(4, 7, ("val_top1",)))
    text = write_report(run_dir, fmt="md").page.read_text()
    assert "## Scaling" not in text


def test_importance_needs_enough_trials(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(2, 9, ("val_top1",)))
    text = write_report(run_dir, fmt="md").page.read_text()
    assert "parameter importance needs at least 3 completed trials; this search has 2" in text
    assert not (run_dir / "report" / "importance.png").exists()


def test_importance_needs_two_parameters(tmp_path: Path) -> None:
    trials = random_trials(5, 10, ("val_top1",))
    for t in trials:
        del t.params["loss.label_smoothing"]
    run_dir, _ = make_run(tmp_path, trials, space={"optim.lr": SPACE["optim.lr"]})
    text = write_report(run_dir, fmt="md").page.read_text()
    assert "two or more parameters" in text and "this search has 1 (optim.lr)" in text


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path, random_trials(2, 11, ("val_top1",)))
    with pytest.raises(ValueError, match="'pdf' is not a valid ReportFormat"):
        write_report(run_dir, fmt="pdf")  # type: ignore[arg-type]


def test_report_after_search_warns_instead_of_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A tracked search whose store holds no run for it: the report is written, logging warns.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'absent.db'}")
    run_dir, _ = make_run(tmp_path, random_trials(3, 13, ("val_top1",)))
    report_after_search(open_run(run_dir))
    captured = capsys.readouterr()
    assert (run_dir / "report" / "report.html").is_file()
    assert "warning: no report written or logged: no MLflow run was recorded" in captured.err
    assert not (tmp_path / "absent.db").exists()  # looking did not create a store


def test_resumed_trial_curve_keeps_the_last_result_of_each_epoch(tmp_path: Path) -> None:
    """A resumed trial appends to its result.json and may repeat the epoch it was cut in."""
    trials = random_trials(3, 14, ("val_top1",))
    run_dir, _ = make_run(tmp_path, trials)
    trial_dir = run_dir / "trial_driver_t001"
    trial_dir.mkdir()
    before = [(1, 30.0), (2, 41.0)]  # interrupted after epoch 2
    after = [(2, 42.0), (3, 55.0)]  # restored from its epoch-1 checkpoint by `rsearch resume`
    lines = [{"trial_id": "t001", "epoch": e, "val_top1": v} for e, v in [*before, *after]]
    (trial_dir / "result.json").write_text("".join(json.dumps(x) + "\n" for x in lines))

    search = load_search(run_dir)
    assert search.trials[1].curve == {1: 30.0, 2: 42.0, 3: 55.0}
    assert search.trials[0].curve == {}  # Tune's curves only: never mixed with Optuna's


def test_importance_ranks_a_range_an_extension_narrowed(tmp_path: Path) -> None:
    from optuna.distributions import FloatDistribution

    from rsearch.report.importance import param_importances
    from rsearch.rundir import open_study
    from tests.report.rundirs import DISTRIBUTIONS

    run_dir, spec = make_run(tmp_path, random_trials(4, 16, ("val_top1",)), num_trials=7)
    study = open_study(run_dir / "optuna.journal", spec.name)
    narrowed = {**DISTRIBUTIONS, "optim.lr": FloatDistribution(0.01, 0.1, log=True)}
    for t in random_trials(3, 17, ("val_top1",)):  # `rsearch extend --set space.optim.lr...`
        params = {**t.params, "optim.lr": min(max(t.params["optim.lr"], 0.01), 0.1)}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={k: narrowed[k] for k in params},
                values=t.values,
                state=TrialState.COMPLETE,
            )
        )
    ranked = param_importances(load_search(run_dir))
    assert ranked.note == ""
    assert set(ranked.by_objective["val_top1"]) == {"optim.lr", "loss.label_smoothing"}


def test_importance_notes_an_objective_every_trial_tied_on(tmp_path: Path) -> None:
    trials = random_trials(4, 15, ("val_top1",))
    for t in trials:
        t.values = [50.0]
    run_dir, _ = make_run(tmp_path, trials)
    text = write_report(run_dir, fmt="md").page.read_text()
    assert "no importance for val_top1: every completed trial scored the same." in text


def test_cut_labels_of_nearby_stopped_trials_share_one_line() -> None:
    from matplotlib.figure import Figure

    from rsearch.report.figures import _label_cuts

    ax = Figure().subplots()
    ax.set_ylim(0, 100)
    cuts = [(1, 25.0, "stopped", 3), (1, 25.5, "stopped", 0), (1, 29.7, "stopped", 2)]
    cuts += [(1, 10.8, "stopped", 5), (2, 25.2, "stopped", 7), (1, 26.0, "running", 9)]
    _label_cuts(ax, cuts)
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == [
        "#0, #2, #3 stopped @ 1",
        "#5 stopped @ 1",
        "#7 stopped @ 2",
        "#9 running @ 1",
    ]
