"""The validation objectives a controller step lowers (`objective` of AutoLoss's remedies)."""

from __future__ import annotations

import torch

from recloss.calibration import calibrated_logloss
from recloss.losses import cross_entropy

OBJECTIVES = ("logloss", "pairwise", "calibrated")
PAIRWISE_ROWS = 4096  # validation rows the pairwise objective compares at most (pairs: rows^2)


def flat(logits: torch.Tensor) -> torch.Tensor:
    """Binary logits may come as `[B, 1]`; the objectives and hypergradients use `[B]`."""
    return logits.squeeze(1) if logits.dim() == 2 and logits.shape[1] == 1 else logits


def task_loss(logits: torch.Tensor, y: torch.Tensor, objective: str = "logloss") -> torch.Tensor:
    """The validation objective: mean logloss (binary) or cross-entropy (multi-class), or for a
    binary task `pairwise`, the logistic pairwise loss of AUC (see `pairwise_loss`), or
    `calibrated`, the logloss after the Platt map fitted to these logits
    (`recloss.calibration.calibrated_logloss`): blind to every shift and scale of the logits, it
    judges how a step ranks the examples, not how it calibrates them.
    """
    if objective == "pairwise":
        return pairwise_loss(flat(logits), y)
    if objective == "calibrated":
        return calibrated_logloss(flat(logits), y)
    return cross_entropy(flat(logits), y).mean()


def pairwise_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean `softplus(z_neg - z_pos)` over the batch's positive-negative pairs (0 if none).

    A smooth surrogate of `1 - AUC` (the pairwise logistic loss of RankNet, Burges et al., ICML
    2005). It is blind to a shift of every logit, so the controller judges how the step ranks
    examples, not how it moves the class prior, which dominates the logloss's one-step signal on
    noisy or shifted labels.
    """
    z, y = logits[:PAIRWISE_ROWS], y[:PAIRWISE_ROWS].to(logits.dtype)
    pairs = y[:, None] * (1 - y[None, :])  # [pos, neg]
    margins = torch.nn.functional.softplus(z[None, :] - z[:, None])
    return (margins * pairs).sum() / pairs.sum().clamp_min(1)


__all__ = ["OBJECTIVES", "flat", "pairwise_loss", "task_loss"]
