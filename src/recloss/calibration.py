"""Platt scaling (Platt, 1999): `q = sigmoid(scale * z + bias)` fitted to binary labels.

A monotone map of the logits: it changes the logloss, never the ranking (AUC). AutoLoss's
`calibrated` validation objective judges a step by the logloss it allows after this map.

The fit uses Platt's smoothed targets, `(N+ + 1) / (N+ + 2)` for positives and `1 / (N- + 2)` for
negatives, so that it stays finite on separable data or a handful of positives, and Newton's
method with step halving: plain tensor operations, usable inside torch.func transforms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEWTON_STEPS = 50


def platt_targets(y: torch.Tensor) -> torch.Tensor:
    """Platt's smoothed targets of binary labels `y`."""
    y = y.double()
    positives = y.sum()
    negatives = len(y) - positives
    return torch.where(y > 0.5, (positives + 1) / (positives + 2), 1 / (negatives + 2))


def _loss(z: torch.Tensor, t: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(params[0] * z + params[1], t)


def fit_platt(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """`(scale, bias)` minimising the logloss of `sigmoid(scale * logits + bias)` on `y`."""
    z, y = logits.detach().double().flatten(), y.detach().double().flatten()
    t = platt_targets(y)
    features = torch.stack([z, torch.ones_like(z)], dim=1)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64)
    loss = _loss(z, t, params)
    for _ in range(NEWTON_STEPS):
        q = torch.sigmoid(features @ params)
        gradient = features.T @ (q - t) / len(z)
        hessian = (features.T * (q * (1 - q))) @ features / len(z)
        step = torch.linalg.solve(hessian + 1e-9 * torch.eye(2, dtype=z.dtype), gradient)
        size = 1.0
        while size > 1e-4 and not bool(_loss(z, t, params - size * step) <= loss):
            size /= 2
        if size <= 1e-4:
            break
        params = params - size * step
        loss, previous = _loss(z, t, params), loss
        if bool(previous - loss < 1e-12):
            break
    scale, bias = params.tolist()
    return scale, bias


def calibrated_logloss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The fit's own objective at its optimum, `min_(a, b)` of the logloss of
    `sigmoid(a * logits + b)` against Platt's targets, differentiable in `logits`.

    The map is held constant in the gradient: at the optimum that is the gradient of the
    minimum itself (the envelope theorem).
    """
    scale, bias = fit_platt(logits, y)
    targets = platt_targets(y).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits * scale + bias, targets)


__all__ = ["calibrated_logloss", "fit_platt", "platt_targets"]
