"""Evaluation metrics: AUC and logloss (binary); macro one-vs-rest AUC, logloss and accuracy.

Thin wrappers over scikit-learn that give a clear result in degenerate cases instead of raising:
AUC is NaN when it is undefined, and probabilities are clipped before the logloss.
"""

from __future__ import annotations

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
    "binary_auc",
    "binary_logloss",
    "evaluate",
    "macro_auc",
    "multiclass_logloss",
    "probabilities",
]
