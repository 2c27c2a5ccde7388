"""The loop's progress: what a resumed run needs, and what its record is made of."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from recloss.config import Monitor
from recloss.rundir import EpochRecord


@dataclass
class TrainerState:
    """Epochs and steps done, time spent, the best validation AUC so far, the epochs' records."""

    epoch: int = 0  # epochs completed
    step: int = 0
    samples: int = 0
    train_seconds: float = 0.0  # inside training steps
    wall_seconds: float = 0.0  # training and validation
    best_metric: float = -math.inf  # the best epoch's `selection_score`
    best_epoch: int = 0  # 1-based; 0 before the first epoch
    history: list[EpochRecord] = field(default_factory=list)
    # the epoch in progress, so that a checkpoint taken inside it resumes exactly
    epoch_step: int = 0  # batches of it trained on
    epoch_loss: float = 0.0  # sum of batch loss x batch size
    epoch_samples: int = 0
    epoch_seconds: float = 0.0  # inside its training steps

    @property
    def samples_per_second(self) -> float:
        return self.samples / max(self.train_seconds, 1e-9)

    def close_epoch(self) -> tuple[float, int, float]:
        """The finished epoch's training (mean loss, samples, seconds); the counters reset."""
        done = (
            self.epoch_loss / max(self.epoch_samples, 1),
            self.epoch_samples,
            self.epoch_seconds,
        )
        self.epoch_step, self.epoch_loss, self.epoch_samples, self.epoch_seconds = 0, 0.0, 0, 0.0
        return done

    def record_epoch(self, entry: EpochRecord, monitor: Monitor = "auc") -> bool:
        """Append an epoch; True if its `selection_score` is the best so far (the first of
        equals)."""
        self.history.append(entry)
        score = selection_score(entry.valid, monitor)
        better = self.best_epoch == 0 or score > self.best_metric
        if better:
            self.best_metric, self.best_epoch = score, entry.epoch
        self.epoch += 1
        return better

    def state_dict(self) -> dict[str, Any]:
        """Plain Python values only, so that checkpoints load with `weights_only=True`."""
        state = asdict(self)
        state["history"] = [e.model_dump() for e in self.history]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self.history = [EpochRecord.model_validate(e) for e in state["history"]]


def selection_score(valid: dict[str, float], monitor: Monitor = "auc") -> float:
    """What picks the best epoch, higher is better: the validation AUC or gAUC
    (`train.monitor`), or minus the validation logloss, which also stands in for an AUC that is
    undefined (a validation split of one class, or no group of both)."""
    if monitor != "logloss" and not math.isnan(valid[monitor]):
        return valid[monitor]
    return -valid["logloss"]
