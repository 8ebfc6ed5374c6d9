"""Evaluation metrics beyond top-1: AUC, balanced accuracy, F1, sensitivity, specificity
(scikit-learn's), the one-vs-rest binary task, and extra evaluation splits (data.eval_splits)."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score, roc_auc_score

from rsearch.spec.data_section import DataConfig
from rsearch.spec.metric_names import metric_info
from rsearch.train import TrainInputError, fit
from rsearch.train.classify_metrics import Scores, class_metrics
from rsearch.train.distributed import DistContext
from rsearch.train.sources import load_source
from tests.train.ood_helpers import write_rotated_digits
from tests.train.train_helpers import RecipeFactory

RNG = np.random.default_rng(7)
LABELS10 = RNG.integers(0, 10, 200)
PROBS10 = RNG.dirichlet(np.ones(10), 200)
LABELS2 = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 0])
POS = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.5, 0.9, 0.6, 0.3, 0.05, 0.7, 0.65])
PROBS2 = np.stack([1 - POS, POS], axis=1)


def test_multiclass_metrics_equal_sklearns() -> None:
    got = class_metrics(PROBS10, LABELS10, DataConfig())
    predicted = PROBS10.argmax(axis=1)
    assert got == pytest.approx(
        {
            "val_auc": roc_auc_score(LABELS10, PROBS10, multi_class="ovr", average="macro"),
            "val_balanced_acc": 100 * balanced_accuracy_score(LABELS10, predicted),
            "val_f1": 100 * f1_score(LABELS10, predicted, average="macro"),
        }
    )


def test_binary_metrics_equal_sklearns() -> None:
    got = class_metrics(PROBS2, LABELS2, DataConfig(threshold=0.5), prefix="rotated")
    predicted = (POS >= 0.5).astype(int)
    assert got == pytest.approx(
        {
            "rotated_auc": roc_auc_score(LABELS2, POS),
            "rotated_balanced_acc": 100 * balanced_accuracy_score(LABELS2, predicted),
            "rotated_f1": 100 * f1_score(LABELS2, predicted),
            "rotated_sensitivity": 100 * recall_score(LABELS2, predicted),
            "rotated_specificity": 100 * recall_score(LABELS2, predicted, pos_label=0),
        }
    )


def test_sensitivity_and_specificity_at_a_threshold_by_hand() -> None:
    # Positives (label 1) score 0.9, 0.6, 0.3, 0.7; negatives 0.1 0.4 0.35 0.8 0.2 0.5 0.05 0.65.
    at_06 = class_metrics(PROBS2, LABELS2, DataConfig(threshold=0.6))
    assert at_06["val_sensitivity"] == pytest.approx(100 * 3 / 4)  # 0.9, 0.6, 0.7
    assert at_06["val_specificity"] == pytest.approx(100 * 6 / 8)  # all but 0.8, 0.65
    at_03 = class_metrics(PROBS2, LABELS2, DataConfig(threshold=0.3))
    assert at_03["val_sensitivity"] == 100.0
    assert at_03["val_specificity"] == pytest.approx(100 * 3 / 8)  # 0.1, 0.2, 0.05
    # Class 0 positive: its probability is 1 - POS; AUC turns with it, sensitivity is class 0's.
    flipped = class_metrics(PROBS2, LABELS2, DataConfig(threshold=0.6, positive_class=0))
    assert flipped["val_auc"] == pytest.approx(roc_auc_score(LABELS2 == 0, 1 - POS))
    assert flipped["val_sensitivity"] == pytest.approx(100 * 5 / 8)  # 1-POS >= .6: POS <= .4
    assert flipped["val_specificity"] == pytest.approx(100 * 3 / 4)


def test_auc_of_a_set_with_one_class_is_nan() -> None:
    assert math.isnan(class_metrics(PROBS2[:3], LABELS2[:3], DataConfig())["val_auc"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gather_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    scores = Scores()
    # Rank 0 holds 3 batches' worth, rank 1 the rest (uneven shares, as a validation shard).
    mine = range(0, 120) if rank == 0 else range(120, 200)
    for start in range(mine.start, mine.stop, 32):
        stop = min(start + 32, mine.stop)
        scores.add(
            torch.from_numpy(np.log(PROBS10[start:stop])), torch.tensor(LABELS10[start:stop])
        )
    probs, labels = scores.gathered(DistContext(rank, 2))
    metrics = class_metrics(probs, labels, DataConfig())
    Path(out, f"{rank}.json").write_text(json.dumps({"metrics": metrics, "n": len(labels)}))
    dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_ranks_gather_the_whole_set(tmp_path: Path) -> None:
    mp.spawn(_gather_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    whole = class_metrics(PROBS10, LABELS10, DataConfig())
    for rank in ranks:
        assert rank["n"] == 200
        assert rank["metrics"] == pytest.approx(whole)


def test_one_vs_rest_digits_has_the_right_proportions() -> None:
    plain = load_source(DataConfig(), 8, 0)
    binary = load_source(DataConfig(one_vs_rest=3), 8, 0)
    assert binary.num_classes == 2
    for split in ("train", "val"):
        labels, binary_labels = getattr(plain, split).labels, getattr(binary, split).labels
        assert torch.equal(binary_labels, (labels == 3).long())
        assert 0.09 < binary_labels.float().mean().item() < 0.11  # 183 threes of 1797 images
    with pytest.raises(TrainInputError, match="one_vs_rest 10 is not a class index"):
        load_source(DataConfig(one_vs_rest=10), 8, 0)


def _digits(make_recipe: RecipeFactory, epochs: int = 1, **data: Any) -> Any:
    base = {"dataset": "digits", "image_size": 16, "fraction": 0.1, "batch_size": 16}
    return make_recipe(data={**base, **data}, epochs=epochs)


def test_extra_splits_report_their_metrics_every_epoch(
    make_recipe: RecipeFactory, tmp_path: Path
) -> None:
    rotated = write_rotated_digits(tmp_path / "rotated")
    reports: list[dict[str, Any]] = []
    splits = {"rotated": str(rotated), "same": str(rotated)}
    recipe = _digits(make_recipe, epochs=2, eval_splits=splits)
    fit(recipe, lambda metrics, _checkpoint: reports.append(metrics))
    family = [
        m.removeprefix("val_")
        for m in ("val_top1", "val_top5", "val_loss", "val_auc", "val_balanced_acc", "val_f1")
    ]
    assert len(reports) == 2
    for metrics in reports:
        for split in ("rotated", "same"):
            names = {f"{split}_{suffix}" for suffix in family}
            assert names <= set(metrics)
            assert all(metric_info(n) is not None for n in names)
            # 40 images: top-1 is a whole number of them
            hits = metrics[f"{split}_top1"] * 40 / 100
            assert hits == pytest.approx(round(hits))
        assert metrics["rotated_top1"] == metrics["same_top1"]
        assert "rotated_sensitivity" not in metrics  # ten classes: no binary metrics


def test_binary_task_reports_sensitivity_on_val_and_splits(
    make_recipe: RecipeFactory, tmp_path: Path
) -> None:
    rotated = write_rotated_digits(tmp_path / "rotated")
    final = fit(_digits(make_recipe, one_vs_rest=3, eval_splits={"rotated": str(rotated)}))
    for prefix in ("val", "rotated"):
        for suffix in ("auc", "balanced_acc", "f1", "sensitivity", "specificity"):
            assert 0 <= final[f"{prefix}_{suffix}"] <= 100  # type: ignore[operator]


def test_class_metrics_off_reports_none(make_recipe: RecipeFactory) -> None:
    final = fit(_digits(make_recipe, class_metrics=False))
    assert not {"val_auc", "val_f1", "val_balanced_acc"} & set(final)


def test_a_split_with_other_classes_is_refused(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    classes = [str(c) for c in range(9)] + ["ten"]
    odd = write_rotated_digits(tmp_path / "odd", 1, classes[:9])
    (odd / "ten").mkdir()
    with pytest.raises(TrainInputError, match=r"missing \['9'\], extra \['ten'\]"):
        fit(_digits(make_recipe, eval_splits={"odd": str(odd)}))


def test_a_missing_split_folder_is_refused(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    with pytest.raises(TrainInputError, match="data.eval_splits.gone: .* is not a directory"):
        fit(_digits(make_recipe, eval_splits={"gone": str(tmp_path / "nothing")}))


def test_splits_need_named_training_classes(make_recipe: RecipeFactory, tmp_path: Path) -> None:
    from tests.train.train_helpers import write_cifar

    root = write_cifar(tmp_path / "cifar", "cifar10")
    recipe = make_recipe(
        data={"dataset": "cifar10", "path": str(root), "eval_splits": {"x": str(tmp_path)}}
    )
    with pytest.raises(TrainInputError, match="needs the training classes' names"):
        fit(recipe)


def test_gather_keeps_rank_order_in_one_process() -> None:
    scores = Scores()
    scores.add(torch.zeros(2, 3), torch.tensor([2, 0]))
    probs, labels = scores.gathered(DistContext())
    assert probs.shape == (2, 3) and labels.tolist() == [2, 0]
    assert np.allclose(probs, 1 / 3)
