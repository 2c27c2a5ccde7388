"""Test-only candidate losses, registered once for the whole suite."""

from __future__ import annotations

import torch

from recloss.losses import LOSSES, cross_entropy, register_loss

TEST_ONLY_LOSSES = {"flipped"}

if "flipped" not in LOSSES:

    @register_loss("flipped")
    def flipped(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """CE against the flipped label: a harmful candidate (test only)."""
        return cross_entropy(logits, 1 - y)
