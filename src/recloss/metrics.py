"""Evaluation metrics: AUC and logloss (binary); macro one-vs-rest AUC, logloss and accuracy;
group AUC (binary, per user).

Thin wrappers over scikit-learn that give a clear result in degenerate cases instead of raising:
AUC is NaN when it is undefined, and probabilities are clipped before the logloss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from recloss.data.schema import Task

PROB_EPS = 1e-7  # probabilities are clipped to [PROB_EPS, 1 - PROB_EPS] for the logloss


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Scores for `evaluate`: sigmoid of binary logits `[N]`, softmax of multi-class `[N, C]`."""
    return torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, dim=1)


def binary_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC; NaN when `y_true` holds only one class."""
    if np.unique(y_true).size < 2:
        return float("nan")
    return float(roc_auc_score(y_true, scores))


def macro_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """One-vs-rest macro AUC over the classes present in `y_true` (absent classes are skipped).

    With every class present this equals scikit-learn's `roc_auc_score(multi_class="ovr")`;
    a class absent from `y_true` has no defined AUC, so it is left out of the average. NaN when
    fewer than two classes are present.
    """
    present = np.unique(y_true)
    if present.size < 2:
        return float("nan")
    return float(np.mean([roc_auc_score(y_true == c, probs[:, c]) for c in present]))


@dataclass(frozen=True)
class GroupAUC:
    """AUC within each group (a user's impressions), averaged weighted by the group's rows."""

    value: float  # NaN where no group holds both classes
    groups: int  # groups that hold both classes: the ones averaged
    of_groups: int  # all groups
    row_share: float  # the share of the rows in the groups averaged


def group_auc(y_true: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> GroupAUC:
    """gAUC (Zhou et al., KDD 2018, DIN): each group's ROC AUC, tied scores sharing their mean
    rank, averaged over the groups that hold both classes, weighted by their rows."""
    y = np.asarray(y_true, dtype=np.float64)
    if len(y) == 0:
        return GroupAUC(float("nan"), 0, 0, 0.0)
    order = np.lexsort((scores, groups))  # by group, then by score
    g, s, y = np.asarray(groups)[order], np.asarray(scores)[order], y[order]
    starts = np.r_[True, g[1:] != g[:-1]]
    group = np.cumsum(starts) - 1
    rank = np.arange(len(g)) - np.flatnonzero(starts)[group] + 1  # 1-based, within the group
    tie = np.cumsum(np.r_[True, starts[1:] | (s[1:] != s[:-1])]) - 1
    rank = (np.bincount(tie, weights=rank) / np.bincount(tie))[tie]
    rows = np.bincount(group).astype(np.float64)
    positives = np.bincount(group, weights=y)
    negatives = rows - positives
    both = (positives > 0) & (negatives > 0)
    rank_sum = np.bincount(group, weights=rank * y)[both]
    p, n = positives[both], negatives[both]
    aucs = (rank_sum - p * (p + 1) / 2) / (p * n)
    counted = rows[both].sum()
    value = float(np.sum(aucs * rows[both]) / counted) if counted else float("nan")
    return GroupAUC(value, int(both.sum()), len(rows), float(counted / max(len(g), 1)))


def binary_logloss(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mean negative log-likelihood of the probabilities of class 1, clipped to avoid log(0)."""
    q = np.clip(scores.astype(np.float64), PROB_EPS, 1 - PROB_EPS)
    return float(log_loss(y_true, q, labels=[0, 1]))


def multiclass_logloss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class; probabilities clipped and renormalised."""
    p = np.clip(probs.astype(np.float64), PROB_EPS, 1 - PROB_EPS)
    p /= p.sum(axis=1, keepdims=True)
    return float(log_loss(y_true, p, labels=np.arange(probs.shape[1])))


def evaluate(task: Task, y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """`{"auc", "logloss"}` (+ `"accuracy"` for multi-class) of scores against labels.

    `scores` holds the probability of class 1 `[N]` (binary) or class probabilities `[N, C]`.
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    scores = np.asarray(scores)
    if len(y_true) != len(scores):
        raise ValueError(f"{len(y_true)} labels but {len(scores)} scores")
    if len(y_true) == 0:
        keys = ("auc", "logloss") if task == "binary" else ("auc", "logloss", "accuracy")
        return dict.fromkeys(keys, float("nan"))
    if task == "binary":
        scores = scores.ravel()
        return {"auc": binary_auc(y_true, scores), "logloss": binary_logloss(y_true, scores)}
    if scores.ndim != 2:
        raise ValueError(f"multi-class scores must be [N, C], got shape {scores.shape}")
    return {
        "auc": macro_auc(y_true, scores),
        "logloss": multiclass_logloss(y_true, scores),
        "accuracy": float(accuracy_score(y_true, scores.argmax(axis=1))),
    }


__all__ = [
    "GroupAUC",
    "binary_auc",
    "binary_logloss",
    "evaluate",
    "group_auc",
    "macro_auc",
    "multiclass_logloss",
    "probabilities",
]
