"""A real search whose rungs are resolution and data fraction, counted in compute.

Every trial trains epoch 1 at 8 px on half its images, epoch 2 at 12 px, epoch 3 at 16 px;
ASHA counts `fidelity` (full-fidelity epoch equivalents, in ticks), its first rung at the end
of the cheap 8 px epoch. A trial ASHA promotes goes on at the next resolution with its
learning-rate schedule continuing; the report then ranks the rungs against each other.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsearch.report import write_report
from rsearch.rundir import TUNE_TRIAL_ID_ATTR, read_compute
from rsearch.spec import load_spec
from rsearch.tune.driver import run_search
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec

pytestmark = pytest.mark.slow

STAGES = (
    "  data: {dataset: digits, image_size: 16, batch_size: 64, fraction: 0.5}\n",
    "  data:\n"
    "    {dataset: digits, image_size: 16, batch_size: 32, fraction: 0.5,\n"
    "     progressive: [{epochs: 1, image_size: 8, fraction: 0.5}, {epochs: 1, image_size: 12}]}\n",
)


def test_promoted_trials_continue_at_the_next_resolution(ray_2cpu: None, tmp_path: Path) -> None:
    scheduler = "{type: asha, unit: compute, grace_period: 0.2, reduction_factor: 2}"
    path = write_spec(tmp_path, name="prog", trials=3, epochs=3, scheduler=scheduler)
    path.write_text(path.read_text().replace(*STAGES))
    spec = load_spec(path)
    info = run_search(spec, path, live=False)
    assert not info.errors

    results = _results(info.run_dir)
    assert len(results) == 3
    for epochs in results.values():  # every trial reported its fidelity, epoch by epoch
        sizes = [(r["train_image_size"], r["train_fraction"]) for r in epochs]
        assert sizes == [(8, 0.5), (12, 1.0), (16, 1.0)][: len(epochs)]
        assert all(r["eval_image_size"] == 16 for r in epochs)
        ticks = [r["fidelity_ticks"] for r in epochs]
        assert ticks == sorted(ticks) and ticks[0] < 100  # the 8 px epoch is cheap
    promoted = [epochs for epochs in results.values() if len(epochs) == 3]
    assert promoted, "ASHA promotes at least the first trial to reach its rung"
    for epochs in promoted:
        lrs = [r["lr"] for r in epochs]
        # One cosine cycle over three epochs: no restart at the new resolutions.
        assert lrs[0] > lrs[1] > lrs[2] > 0
        assert lrs[1] == pytest.approx(0.75 * lrs[0]) and lrs[2] == pytest.approx(0.25 * lrs[0])
        flops = [r["epoch_train_flops"] for r in epochs]
        assert flops[0] < flops[1] < flops[2]

    study_ids = {t.user_attrs.get(TUNE_TRIAL_ID_ATTR) for t in load_study(info.run_dir).trials}
    assert set(results) <= study_ids
    record = read_compute(info.run_dir)
    assert record is not None
    reported = sum(epochs[-1]["total_flops"] for epochs in results.values())
    assert record.total_flops == pytest.approx(reported)
    text = write_report(info.run_dir, fmt="md").page.read_text()
    assert "## Low-fidelity ranking" in text and "rungs in equivalent epochs" in text


def _results(run_dir: Path) -> dict[str, list[dict[str, float]]]:
    """Each Tune trial's reported epochs, from its result.json."""
    out: dict[str, list[dict[str, float]]] = {}
    for path in run_dir.glob("*/result.json"):
        for line in path.read_text().splitlines():
            result = json.loads(line)
            out.setdefault(result["trial_id"], []).append(result)
    return {k: sorted(v, key=lambda r: r["epoch"]) for k, v in out.items()}
