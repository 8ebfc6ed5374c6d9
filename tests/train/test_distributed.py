"""DDP: two CPU processes (gloo) train one recipe and report the same reduced metrics."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch.multiprocessing as mp

from rsearch.spec import Recipe
from rsearch.train.measure import forward_flops, train_flops
from rsearch.train.model import build_model
from tests.train.train_helpers import TINY, merge

RECIPE = merge(
    TINY,
    {
        # 110 images, 22 for validation: the two ranks get 11 each, an odd, uneven count
        "data": {"synthetic_size": 110, "batch_size": 16},
        "augment": {"repeated_aug": 2, "mixup": 0.2},
        "ema": {"enabled": True},
        "epochs": 2,
    },
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, out_dir: str) -> None:
    # The environment torchrun (or a hand launch) gives each process; fit joins from it.
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE="2",
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    from rsearch.train import fit

    reports: list[dict[str, Any]] = []
    final = fit(
        Recipe.model_validate(RECIPE),
        lambda metrics, checkpoint: reports.append({"metrics": metrics, "checkpoint": checkpoint}),
        Path(out_dir) / "checkpoint",
        threads=1,  # one core each: two ranks on a small machine must not oversubscribe it
    )
    document = {"reports": reports, "final": final}
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(document))


@pytest.mark.timeout(180)
def test_two_processes_report_one_set_of_metrics(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    metrics = [[r["metrics"] for r in rank["reports"]] for rank in ranks]
    assert len(metrics[0]) == 2
    assert metrics[0] == metrics[1]  # times and inference numbers included: all reduced
    assert ranks[0]["final"] == ranks[1]["final"] == metrics[0][-1]
    assert {"ema_val_top1", "infer_images_per_s"} <= set(metrics[0][-1])
    checkpoints = [[r["checkpoint"] for r in rank["reports"]] for rank in ranks]
    assert checkpoints[0] == [str(tmp_path / "checkpoint")] * 2
    assert checkpoints[1] == [None, None]
    # exact reduced counts: 22 validation images over both ranks, each seen once
    hits = metrics[0][-1]["val_top1"] * 22 / 100
    assert hits == pytest.approx(round(hits))
    # Compute over both workers: 48 training images each (55 a rank with the repeats of
    # repeated_aug, cut to 6 full batches of 8), 22 validation images, EMA evaluated too.
    model = build_model(Recipe.model_validate(RECIPE), 4)
    last = metrics[0][-1]
    assert last["epoch_train_flops"] == train_flops(model, 16) * 96
    assert last["epoch_eval_flops"] == forward_flops(model, 16) * 22 * 2
    assert last["device_s"] == last["epoch_s"] * 2
    assert last["total_flops"] == pytest.approx(
        2 * (last["epoch_train_flops"] + last["epoch_eval_flops"])
    )
