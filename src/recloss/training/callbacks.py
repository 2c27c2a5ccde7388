"""Callbacks of the training loop; each owns its state and hands it over through `state_dict`.

Hooks run in the order the callbacks are given: the checkpoint of the whole training state goes
last, after every other callback has updated its own state for the epoch.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from recloss.atomic import append_line
from recloss.config import TrainConfig
from recloss.errors import ConfigError
from recloss.progress import ProgressBar
from recloss.rundir import EpochRecord
from recloss.training import checkpoint
from recloss.training.signals import StopRequested, StopSignals
from recloss.training.state import TrainerState

if TYPE_CHECKING:
    from recloss.training.distributed import Replicas


class TrainerLike(Protocol):
    """What a callback may use of the trainer that calls it."""

    model: nn.Module
    cfg: TrainConfig
    state: TrainerState
    device: torch.device
    should_stop: bool
    replicas: Replicas
    world: int  # ranks

    @property
    def is_main(self) -> bool: ...

    def epoch_examples(self, batches: int) -> int: ...

    def state_dict(self) -> dict[str, Any]: ...


class Callback:
    """Base class: every hook does nothing; `state_dict` is empty."""

    @property
    def state_key(self) -> str:
        return type(self).__name__

    def on_fit_start(self, trainer: TrainerLike) -> None: ...

    def on_train_epoch_start(self, trainer: TrainerLike, batches: int) -> None: ...

    def on_train_batch_end(
        self, trainer: TrainerLike, batch_size: int, mean_loss: float
    ) -> None: ...

    def on_train_epoch_end(self, trainer: TrainerLike) -> None: ...

    def on_epoch_end(self, trainer: TrainerLike, entry: EpochRecord) -> None:
        """After the epoch's validation; `trainer.state` already counts the epoch."""

    def on_fit_end(self, trainer: TrainerLike) -> None: ...

    def on_test_end(self, trainer: TrainerLike, metrics: dict[str, float]) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def check_state_keys(callbacks: list[Callback]) -> None:
    """ConfigError where two callbacks with state of their own would share a checkpoint entry."""
    keys = [cb.state_key for cb in callbacks if type(cb).state_dict is not Callback.state_dict]
    shared = sorted({key for key in keys if keys.count(key) > 1})
    if shared:
        raise ConfigError(
            f"callbacks: two callbacks with state share the checkpoint key {shared[0]!r}; "
            "give one a `state_key` of its own"
        )


class EarlyStopping(Callback):
    """Stop after `patience` epochs in a row without a better validation score (0: after one)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.bad_epochs = 0

    def _exhausted(self) -> bool:
        return self.bad_epochs > 0 and self.bad_epochs >= self.patience

    def on_fit_start(self, trainer: TrainerLike) -> None:
        trainer.should_stop = trainer.should_stop or self._exhausted()

    def on_epoch_end(self, trainer: TrainerLike, entry: EpochRecord) -> None:
        self.bad_epochs = 0 if trainer.state.best_epoch == entry.epoch else self.bad_epochs + 1
        trainer.should_stop = trainer.should_stop or self._exhausted()

    def state_dict(self) -> dict[str, Any]:
        return {"bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bad_epochs = state["bad_epochs"]


class BestCheckpoint(Callback):
    """Save the weights of the best epoch; restore them when training ends (rank 0 reads the
    file and hands the weights to the other ranks, which need no access to it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch_end(self, trainer: TrainerLike, entry: EpochRecord) -> None:
        if trainer.state.best_epoch == entry.epoch and trainer.is_main:
            checkpoint.save_atomic(trainer.model.state_dict(), self.path)

    def on_fit_end(self, trainer: TrainerLike) -> None:
        if trainer.state.best_epoch == 0:
            raise ConfigError("train.epochs: no epoch was completed")
        if trainer.is_main:
            trainer.model.load_state_dict(checkpoint.load(self.path, trainer.device))
        trainer.replicas.broadcast_model()


STOP_POLL_STEPS = 10  # a collective per step would cost ranks 0.5 ms each on 2 CPU cores


class ResumeCheckpoint(Callback):
    """Save the whole training state atomically, for an exact resume: after every epoch, inside
    one every `every_steps` optimiser steps and/or every `every_minutes` minutes, and at the end of
    the step during which `stop` caught a signal on any rank, after which it stops the run
    (`StopRequested`, a KeyboardInterrupt)."""

    def __init__(
        self,
        path: Path,
        every_steps: int | None = None,
        every_minutes: float | None = None,
        stop: StopSignals | None = None,
    ) -> None:
        self.path, self.every_steps, self.every_minutes = path, every_steps, every_minutes
        self.stop = stop
        self._saved = monotonic()

    def _save(self, trainer: TrainerLike) -> None:
        if trainer.is_main:
            checkpoint.save_atomic(trainer.state_dict(), self.path)
        self._saved = monotonic()

    def _stop_requested(self, trainer: TrainerLike, epoch_end: bool = False) -> bool:
        """Whether a rank caught a signal, so that all of them stop after the same step; several
        ranks ask each other every `STOP_POLL_STEPS` steps and at the epoch's end."""
        if self.stop is None:
            return False
        polled = epoch_end or trainer.world == 1 or trainer.state.step % STOP_POLL_STEPS == 0
        return polled and trainer.replicas.any_rank(self.stop.requested is not None)

    def on_fit_start(self, trainer: TrainerLike) -> None:
        self._saved = monotonic()

    def on_train_batch_end(self, trainer: TrainerLike, batch_size: int, mean_loss: float) -> None:
        steps = self.every_steps is not None and trainer.state.step % self.every_steps == 0
        minutes = self.every_minutes is not None and (
            monotonic() - self._saved >= 60 * self.every_minutes
        )
        stop = self._stop_requested(trainer)
        if steps or minutes or stop:
            self._save(trainer)
        if stop:
            raise self._stopped()

    def on_epoch_end(self, trainer: TrainerLike, entry: EpochRecord) -> None:
        self._save(trainer)
        if self._stop_requested(trainer, epoch_end=True):
            raise self._stopped()

    def _stopped(self) -> StopRequested:
        """The stop, with this rank's signal (a rank stopped by another's: SIGINT's status)."""
        return StopRequested(self.stop.requested or signal.SIGINT)


class Progress(Callback):
    """A progress bar over each epoch's training examples (of all ranks), with the running mean
    loss."""

    def __init__(self, enabled: bool = True, every: int = 20) -> None:
        self.enabled, self.every = enabled, every
        self.bar: ProgressBar | None = None

    def on_train_epoch_start(self, trainer: TrainerLike, batches: int) -> None:
        self.bar = ProgressBar(
            total=trainer.epoch_examples(batches),
            initial=trainer.epoch_examples(trainer.state.epoch_step),  # resumed inside the epoch
            unit="ex",
            unit_scale=True,
            desc=f"epoch {trainer.state.epoch + 1}/{trainer.cfg.epochs}",
            leave=False,
            show=self.enabled and trainer.is_main,
        )

    def on_train_batch_end(self, trainer: TrainerLike, batch_size: int, mean_loss: float) -> None:
        self.bar.update(batch_size * trainer.world)  # each rank steps through as many rows
        if trainer.state.step % self.every == 0:
            self.bar.set_postfix(loss=f"{mean_loss:.4f}")

    def on_train_epoch_end(self, trainer: TrainerLike) -> None:
        self.bar.close()


class EpochLog(Callback):
    """A line per epoch (loss, validation metrics, best so far, seconds), the early stop and the
    test metrics: on screen when `show`, and appended to `path` (the run's `train.log`); a
    `header` line first, if given (what the run estimated before training)."""

    def __init__(self, path: Path | None, show: bool = True, header: str | None = None) -> None:
        self.path, self.show, self.header = path, show, header

    def on_fit_start(self, trainer: TrainerLike) -> None:
        if self.header and trainer.state.step == 0:  # not again when resumed
            self._emit(trainer, self.header)

    def _emit(self, trainer: TrainerLike, line: str, screen: bool = True) -> None:
        if not trainer.is_main:
            return
        if self.show and screen:
            # above the progress bar, and off stdout, which holds the results
            ProgressBar.write(line, file=sys.stderr)
        if self.path is not None:
            append_line(self.path, line)

    def on_epoch_end(self, trainer: TrainerLike, entry: EpochRecord) -> None:
        history = trainer.state.history
        seconds = entry.seconds - (history[-2].seconds if len(history) > 1 else 0.0)
        valid = "  ".join(f"{k} {v:.4f}" for k, v in entry.valid.items())
        best = "  (best)" if trainer.state.best_epoch == entry.epoch else ""
        line = f"epoch {entry.epoch}/{trainer.cfg.epochs}  train loss {entry.train_loss:.4f}  "
        self._emit(trainer, f"{line}valid {valid}{best}  {seconds:.1f} s")

    def on_fit_end(self, trainer: TrainerLike) -> None:
        s = trainer.state
        if trainer.should_stop and s.epoch < trainer.cfg.epochs:
            self._emit(trainer, f"early stopping after epoch {s.epoch}: best epoch {s.best_epoch}")

    def on_test_end(self, trainer: TrainerLike, metrics: dict[str, float]) -> None:
        scores = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self._emit(trainer, f"test (best epoch {trainer.state.best_epoch})  {scores}", False)


class TensorBoard(Callback):
    """Training loss, validation metrics and the strategy's figures as TensorBoard scalars.

    Does nothing when TensorBoard is not installed (it is optional).
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.writer = None

    def on_fit_start(self, trainer: TrainerLike) -> None:
        if not trainer.is_main or self.writer is not None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def on_epoch_end(self, trainer: TrainerLike, entry: EpochRecord) -> None:
        if self.writer is None:
            return
        self.writer.add_scalar("train/loss", entry.train_loss, entry.step)
        for key, value in entry.valid.items():
            self.writer.add_scalar(f"valid/{key}", value, entry.step)
        for key, value in _flatten(entry.strategy).items():
            self.writer.add_scalar(f"strategy/{key}", value, entry.step)

    def on_test_end(self, trainer: TrainerLike, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        for key, value in metrics.items():
            self.writer.add_scalar(f"test/{key}", value, trainer.state.step)
        self.writer.close()
        self.writer = None


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Scalar leaves of a nested dict as `a/b/c` keys (lists are skipped)."""
    out: dict[str, float] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out
