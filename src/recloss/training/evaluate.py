"""Scoring a split with a model: probabilities in row order, and the task's metrics.

Across ranks (`sharded=True` under a process group) every rank scores a contiguous block of
the rows, the blocks are gathered in row order, and rank 0 computes the metrics over all rows
exactly and hands them to the others, so that every rank takes the same early-stopping and
best-epoch decisions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recloss.data import BatchLoader, SplitArrays
from recloss.data.schema import Task
from recloss.metrics import evaluate, probabilities
from recloss.training import distributed
from recloss.training.devices import distributed_rank
from recloss.training.streams import staged


@torch.no_grad()
def _scores(
    model: nn.Module, split: SplitArrays, batch_size: int, device: torch.device
) -> torch.Tensor:
    model.eval()
    batches = staged(BatchLoader(split, batch_size, shuffle=False), device)  # pinned for CUDA
    outputs = [probabilities(model(b.to(device, non_blocking=True)).float()) for b in batches]
    return torch.cat(outputs) if outputs else torch.empty(0, device=device)


def predict_split(
    model: nn.Module, split: SplitArrays, batch_size: int, device: torch.device
) -> np.ndarray:
    """Class-1 probabilities [N] (binary) or class probabilities [N, C] of every row, in order."""
    return _scores(model, split, batch_size, device).cpu().numpy()


def _rows(split: SplitArrays, lo: int, hi: int) -> SplitArrays:
    """Rows `[lo, hi)` of a split, as views of its (memory-mapped) arrays."""
    x_num = None if split.x_num is None else split.x_num[lo:hi]
    y = split.y[lo:hi] if split.labeled else None
    return SplitArrays(split.x_cat[lo:hi], x_num, y, source=split.source)


def evaluate_split(
    model: nn.Module,
    task: Task,
    split: SplitArrays,
    batch_size: int,
    device: torch.device,
    *,
    sharded: bool = False,
) -> dict[str, float]:
    """The task's metrics (AUC, logloss, ...) of `model` on every row of `split`.

    `sharded`: every rank of the process group scores its block of rows (all ranks must call).
    """
    rank, world = distributed_rank()
    if not sharded or world == 1:
        scores = predict_split(model, split, batch_size, device)
        return evaluate(task, np.asarray(split.y, dtype=np.int64), scores)
    lo, hi = distributed.shard_bounds(len(split), rank, world)
    local = _scores(model, _rows(split, lo, hi), batch_size, device)
    scores = distributed.gather_rows(local, len(split)).cpu().numpy()
    metrics = evaluate(task, np.asarray(split.y, dtype=np.int64), scores) if rank == 0 else None
    return distributed.broadcast_object(metrics)
