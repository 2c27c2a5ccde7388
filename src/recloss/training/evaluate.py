"""Scoring a split with a model: probabilities in row order, and the task's metrics."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recloss.data import BatchLoader, SplitArrays
from recloss.data.schema import Task
from recloss.metrics import evaluate, probabilities


@torch.no_grad()
def predict_split(
    model: nn.Module, split: SplitArrays, batch_size: int, device: torch.device
) -> np.ndarray:
    """Class-1 probabilities [N] (binary) or class probabilities [N, C] of every row, in order."""
    model.eval()
    outputs = []
    for batch in BatchLoader(split, batch_size, shuffle=False):
        outputs.append(probabilities(model(batch.to(device)).float()).cpu())
    return torch.cat(outputs).numpy()


def evaluate_split(
    model: nn.Module, task: Task, split: SplitArrays, batch_size: int, device: torch.device
) -> dict[str, float]:
    """The task's metrics (AUC, logloss, ...) of `model` on every row of `split`."""
    scores = predict_split(model, split, batch_size, device)
    return evaluate(task, np.asarray(split.y, dtype=np.int64), scores)
