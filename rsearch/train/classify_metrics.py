"""Classification metrics over a whole evaluation set: ROC AUC, balanced accuracy, F1,
sensitivity and specificity (scikit-learn's definitions, computed by scikit-learn).

Top-1 and the loss are exact sums every rank adds up (rsearch.train.sums); these metrics are
not sums of per-image terms (AUC ranks every image against every other), so each rank keeps
its images' class probabilities and labels, the ranks all-gather them, and every rank computes
the same numbers from the whole set.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from rsearch.spec.data_section import DataConfig
from rsearch.spec.metrics import AUTO_MAX_CLASSES
from rsearch.train.distributed import DistContext, gather_objects

CLASS_METRICS = ("auc", "balanced_acc", "f1")
"""Reported for every task (suffixes of val_*, <split>_*)."""

BINARY_METRICS = ("sensitivity", "specificity")
"""Reported for two-class tasks only, at data.threshold on the positive class."""


def class_metrics_on(cfg: DataConfig, num_classes: int) -> bool:
    """Whether a run reports the class metrics (data.class_metrics, or its automatic rule)."""
    if cfg.class_metrics is not None:
        return cfg.class_metrics
    return num_classes <= AUTO_MAX_CLASSES


@dataclass
class Scores:
    """One rank's class probabilities and labels of an evaluation, batch by batch."""

    probs: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor] = field(default_factory=list)

    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Keep a batch's softmax probabilities, on its device: copied to the host once, when
        gathered, so evaluation keeps its one host sync per pass."""
        self.probs.append(logits.float().softmax(dim=1))
        self.labels.append(labels)

    def gathered(self, ctx: DistContext) -> tuple[np.ndarray, np.ndarray]:
        """Every rank's (probabilities N x C, labels N), in rank order."""
        mine = (
            torch.cat(self.probs).cpu().numpy() if self.probs else np.zeros((0, 0), np.float32),
            torch.cat(self.labels).cpu().numpy() if self.labels else np.zeros(0, np.int64),
        )
        parts = [p for p in gather_objects(mine, ctx) if len(p[1])]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def class_metrics(
    probs: np.ndarray, labels: np.ndarray, cfg: DataConfig, prefix: str = "val"
) -> dict[str, float]:
    """AUC, balanced accuracy and F1 (and, for two classes, sensitivity and specificity).

    Two classes: AUC of the positive class's probability, F1 of the positive class,
    sensitivity and specificity with "positive" meaning its probability >= data.threshold.
    More classes: macro one-vs-rest AUC, macro F1, balanced accuracy of the top class.
    AUC is NaN when the set holds one class only (it is undefined there).

    Args:
        probs: class probabilities, N x C.
        labels: true classes, N.
        cfg: the recipe's data section (threshold, positive_class).
        prefix: the metrics' prefix: val, or an evaluation split's name.
    """
    with warnings.catch_warnings():
        # A set holding one class (a tiny split) warns on every call; its AUC says so (NaN).
        warnings.filterwarnings("ignore", message="A single label was found")
        out = _scores(probs, labels, cfg)
    return {f"{prefix}_{name}": float(value) for name, value in out.items()}


def _scores(probs: np.ndarray, labels: np.ndarray, cfg: DataConfig) -> dict[str, float]:
    # Deferred: importing sklearn.metrics takes ~2 s, once per process.
    from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

    classes = probs.shape[1]
    if classes == 2:
        positive = cfg.positive_class
        predicted = (probs[:, positive] >= cfg.threshold).astype(np.int64)
        predicted = np.where(predicted == 1, positive, 1 - positive)
    else:
        predicted = probs.argmax(axis=1)
    out = {
        "auc": _auc(probs, labels, cfg.positive_class),
        "balanced_acc": 100.0 * balanced_accuracy_score(labels, predicted),
    }
    if classes == 2:
        out["f1"] = 100.0 * f1_score(
            labels, predicted, pos_label=cfg.positive_class, zero_division=0
        )
        kw = {"labels": [0, 1], "zero_division": 0}
        out["sensitivity"] = 100.0 * recall_score(
            labels, predicted, pos_label=cfg.positive_class, **kw
        )
        out["specificity"] = 100.0 * recall_score(
            labels, predicted, pos_label=1 - cfg.positive_class, **kw
        )
    else:
        every = list(range(classes))
        out["f1"] = 100.0 * f1_score(
            labels, predicted, labels=every, average="macro", zero_division=0
        )
    return out


def _auc(probs: np.ndarray, labels: np.ndarray, positive: int) -> float:
    from sklearn.metrics import roc_auc_score

    classes = probs.shape[1]
    present = np.unique(labels)
    if len(present) < 2:
        return float("nan")
    if classes == 2:
        return float(roc_auc_score(labels == positive, probs[:, positive]))
    if len(present) < classes:
        # sklearn's one-vs-rest needs every class present; average over the ones that are.
        per_class = [roc_auc_score(labels == c, probs[:, c]) for c in present]
        return float(np.mean(per_class))
    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
