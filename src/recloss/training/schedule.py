"""The model's learning-rate schedule, as a callback that owns its schedulers' state.

`plateau` is FuxiCTR's reduce-on-plateau: after `patience` epochs in a row without a better
validation score (`train.monitor`) every rate is multiplied by `factor` (down to `min_lr`); with
`restore_best` training then continues from the best epoch's weights (the optimisers' moments are
kept), so that the lower rate refines the best model rather than the one that overshot. `cosine` and
`step` are `torch.optim.lr_scheduler`'s. Every schedule steps once per epoch, after validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, ReduceLROnPlateau, StepLR

from recloss.config import LRScheduleConfig
from recloss.rundir import EpochRecord
from recloss.training.callbacks import Callback, TrainerLike
from recloss.training.state import selection_score

Scheduler = LRScheduler | ReduceLROnPlateau


def make_scheduler(
    cfg: LRScheduleConfig, optimizer: torch.optim.Optimizer, epochs: int
) -> Scheduler | None:
    """The `torch.optim.lr_scheduler` of one optimiser; None for a constant rate."""
    if cfg.name == "plateau":
        # torch counts the bad epochs it tolerates; `patience` counts those that trigger
        return ReduceLROnPlateau(
            optimizer,
            mode="max",
            factor=cfg.factor,
            patience=cfg.patience - 1,
            threshold=0.0,  # better means a strictly higher score, as for the best epoch
            threshold_mode="abs",
            min_lr=cfg.min_lr,
        )
    if cfg.name == "cosine":
        return CosineAnnealingLR(optimizer, T_max=epochs, eta_min=cfg.min_lr)
    if cfg.name == "step":
        return StepLR(optimizer, step_size=cfg.every, gamma=cfg.factor)
    return None


class LRSchedule(Callback):
    """Steps a scheduler of each of the model's optimisers at every epoch end."""

    def __init__(
        self, cfg: LRScheduleConfig, optimizers: Sequence[torch.optim.Optimizer], epochs: int
    ) -> None:
        self.cfg = cfg
        made = (make_scheduler(cfg, opt, epochs) for opt in optimizers)
        self.schedulers = [s for s in made if s is not None]
        self.optimizers = list(optimizers)
        self.best_weights: dict[str, torch.Tensor] | None = None

    def _rates(self) -> list[float]:
        return [group["lr"] for opt in self.optimizers for group in opt.param_groups]

    def on_epoch_end(self, trainer: TrainerLike, entry: EpochRecord) -> None:
        if not self.schedulers:
            return
        plateau = self.cfg.name == "plateau"
        if plateau and self.cfg.restore_best and trainer.state.best_epoch == entry.epoch:
            self.best_weights = {
                k: v.detach().clone() for k, v in trainer.model.state_dict().items()
            }
        before = self._rates()
        for scheduler in self.schedulers:
            if plateau:
                scheduler.step(selection_score(entry.valid, trainer.cfg.monitor))
            else:
                scheduler.step()
        dropped = self._rates() != before
        if plateau and dropped and self.best_weights is not None:
            trainer.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "schedulers": [s.state_dict() for s in self.schedulers],
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for scheduler, saved in zip(self.schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)
        self.best_weights = state["best_weights"]
