"""A report from a real small search: real Ray, real training on digits, a real MLflow store."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.report.data import load_search
from rsearch.tracking import find_search_run
from tests.report.rundirs import SECTIONS, brute_force_front
from tests.tune.conftest import ray_2cpu, write_spec  # noqa: F401  (ray_2cpu is a fixture)

pytestmark = pytest.mark.slow

WITH_COMPUTE = [SECTIONS[0], "Compute", *SECTIONS[1:], "Scaling"]
"""A real search keeps its compute record: the Compute section follows the summary; it
searches the resolution, so a Scaling section ends the report."""
runner = CliRunner()


def test_run_writes_and_logs_the_report(ray_2cpu: None, tmp_path: Path) -> None:  # noqa: F811
    path = write_spec(
        tmp_path,
        name="report-e2e",
        objective="[{metric: val_top1, mode: max}, {metric: infer_images_per_s, mode: max}]",
        algorithm="nsga2",
        scheduler="{type: none}",
        epochs=2,
    )
    # Two resolutions, so the trials' measured speeds differ (one architecture at one size is
    # measured once and shared: it would have no speed front to draw).
    size = "  data.image_size: {type: categorical, choices: [16, 24]}\n"
    warm = "[" + ", ".join(f"{{data.image_size: {px}}}" for px in (16, 16, 24, 24)) + "]"
    text = path.read_text().replace("space:\n", "space:\n" + size)
    path.write_text(text.replace("search:\n", f"search:\n  warm_start: {warm}\n"))
    res = runner.invoke(app, ["run", str(path), "--no-live"])
    assert res.exit_code == 0, res.output
    (run_dir,) = (tmp_path / "runs").iterdir()

    # `rsearch run` wrote the report itself, with every section and non-empty PNGs
    html = (run_dir / "report" / "report.html").read_text()
    assert re.findall(r"<h2>(.+?)</h2>", html) == WITH_COMPUTE
    # one architecture at two sizes: no parameter front, and the report says why
    assert "All 4 trials have the same parameter count" in html
    assert not (run_dir / "report" / "pareto_params_m.png").exists()
    pngs = sorted((run_dir / "report").glob("*.png"))
    assert {p.name for p in pngs} >= {
        "pareto_infer_images_per_s.png",
        "pareto_infer_latency_ms.png",
        "pareto_gflops.png",
        "importance.png",
        "parallel_coordinates.png",
        "learning_curves.png",
    }
    for png in pngs:
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000

    # its Pareto set is the completed trials no other completed trial dominates
    search = load_search(run_dir)
    done = {t.number: t.values or [] for t in search.in_state("COMPLETE")}
    assert len(done) == 4
    expected = brute_force_front(done, ["max", "max"])
    listed = re.search(r"Pareto set over val_top1 and infer_images_per_s [^:]*: ([^<]+)\.", html)
    assert listed is not None
    assert {int(n) for n in re.findall(r"#(\d+)", listed.group(1))} == expected
    for t in search.in_state("COMPLETE"):  # learning curves came from every epoch Tune saw
        assert sorted(t.curve) == [1, 2]

    # the MLflow parent run of the search lists the report and every figure as artifacts
    parent = find_search_run(run_dir)
    assert parent is not None
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert logged == {f"report/{p.name}" for p in pngs} | {"report/report.html"}

    # on demand, as Markdown: the same figures beside the page, logged again
    res = runner.invoke(app, ["report", str(run_dir), "--format", "md", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "report.md").read_text()
    assert re.findall(r"^## (.+)$", text, flags=re.M) == WITH_COMPUTE
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert "report/report.md" in logged
