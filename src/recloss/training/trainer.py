"""The trainer: the only loop over batches. It owns the optimisers, the device and the step.

`Trainer(model, strategy, optimizers, data, cfg, callbacks)`: `fit()` trains epoch by epoch until
`cfg.epochs` or a callback sets `should_stop`; `step(batch)` is one optimiser step, public for
loops of one's own (BOHB's budgets); `evaluate(split)` scores a split and `predict(split)` gives
its probabilities; `state_dict()` is the whole training state (model, optimisers, strategy,
progress, validation stream, RNG, callbacks), which `load_state_dict` restores for an exact resume.
It knows no data pipeline and no run folder: callbacks write files.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from recloss.calibration import Calibration
from recloss.config import TrainConfig
from recloss.data import BatchLoader, SplitArrays
from recloss.data.schema import Batch, Task
from recloss.errors import ConfigError
from recloss.rundir import EpochRecord
from recloss.search.base import LossStrategy, StepContext
from recloss.training.callbacks import Callback, check_state_keys
from recloss.training.devices import distributed_rank, uses_bf16
from recloss.training.distributed import Replicas
from recloss.training.evaluate import calibrate_on_split, evaluate_split, predict_split
from recloss.training.flip_channel import FlipRates
from recloss.training.optim import catch_up_lookups, flush_regularization
from recloss.training.precondition import AdamPreconditioner
from recloss.training.state import TrainerState
from recloss.training.streams import ValidationStream, staged


@dataclass(frozen=True)
class TrainData:
    """The splits a trainer learns from: training batches, and validation for metrics and
    bi-level strategies (never the test split)."""

    train: SplitArrays
    valid: SplitArrays
    task: Task
    group: int | None = None  # the categorical column whose values group the rows for gAUC


class Trainer:
    """Trains one model with one loss strategy; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        strategy: LossStrategy,
        optimizers: Sequence[torch.optim.Optimizer],
        data: TrainData,
        cfg: TrainConfig,
        callbacks: Sequence[Callback] = (),
        device: torch.device | None = None,
        flip_rates: FlipRates | None = None,
    ) -> None:
        self.model, self.strategy, self.optimizers = model, strategy, list(optimizers)
        self.precondition = AdamPreconditioner(self.optimizers)  # for `unroll: adam`
        self.data, self.cfg, self.callbacks = data, cfg, list(callbacks)
        check_state_keys(self.callbacks)
        self.device = device or next(model.parameters()).device
        # the estimated label noise (`train.label_noise`); the loss corrects for it unless it is off
        self.flip_rates = None if flip_rates is None else flip_rates.to(self.device)
        self.rank, self.world = distributed_rank()
        # across ranks: DDP and the sparse-gradient all-reduce; cfg.batch_size is the global batch
        self.replicas = Replicas(model, strategy, self.device, cfg.seed)
        local_batch = self.replicas.local_batch(cfg.batch_size)
        self.bf16 = uses_bf16(cfg.precision, self.device)
        # Ranks must run the same number of steps: drop the ragged last batch when distributed.
        self.train_loader = BatchLoader(
            data.train,
            local_batch,
            shuffle=True,
            seed=cfg.seed,
            rank=self.rank,
            world_size=self.world,
            drop_last=self.world > 1,
            dedup=True,  # each batch's distinct embedding rows, found in the prefetch thread
        )
        if len(self.train_loader) == 0 and len(data.train) > 0:  # only when dropping
            raise ConfigError(
                f"train.batch_size: {cfg.batch_size} is more than the {len(data.train):,} training "
                f"rows, and with {self.world} processes an epoch drops its ragged last batch: "
                "no step would run; lower it"
            )
        self.val_stream = ValidationStream(
            data.valid, strategy.val_batch_rows(local_batch), cfg.seed + 1, self.rank,
            self.world, self.device,
        )  # fmt: skip
        self.state = TrainerState()
        self.should_stop = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def lr(self) -> float:
        """The dense parameters' learning rate now (a schedule may have lowered it)."""
        return self.optimizers[0].param_groups[0]["lr"]

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> TrainerState:
        """Train until `cfg.epochs` epochs are done or a callback stops it."""
        self._call("on_fit_start")
        while self.state.epoch < self.cfg.epochs and not self.should_stop:
            self._run_epoch()
        flush_regularization(self.optimizers)
        self._call("on_fit_end")
        return self.state

    def _run_epoch(self) -> None:
        s = self.state
        started = time.perf_counter()
        train_loss, samples, train_seconds = self.replicas.epoch_totals(*self.train_epoch())
        valid = self.evaluate(self.data.valid)
        s.samples += samples
        s.train_seconds += train_seconds
        s.wall_seconds += time.perf_counter() - started
        entry = EpochRecord(
            epoch=s.epoch + 1,
            step=s.step,
            seconds=round(s.wall_seconds, 3),
            train_loss=train_loss,
            samples_per_second=samples / max(train_seconds, 1e-9),
            valid=valid,
            strategy=self.strategy.on_epoch_end(),
        )
        s.record_epoch(entry, self.cfg.monitor)
        self._call("on_epoch_end", entry)

    def steps_per_epoch(self) -> int:
        """Training steps in one epoch (capped by `cfg.max_steps_per_epoch`)."""
        batches = len(self.train_loader)
        return min(batches, self.cfg.max_steps_per_epoch or batches)

    def epoch_examples(self, batches: int) -> int:
        """The training examples of all ranks in the first `batches` steps of an epoch (exact:
        distributed ranks drop the ragged last batch, so each yields as many rows)."""
        return self.train_loader.examples(batches) * self.world

    def train_epoch(self) -> tuple[float, int, float]:
        """One pass over the training split (the rest of it, when resumed inside it):
        (mean loss, samples, seconds)."""
        s = self.state
        n_batches = self.steps_per_epoch()
        self.train_loader.set_epoch(s.epoch, start_batch=s.epoch_step)
        self._call("on_train_epoch_start", n_batches)
        started, before = time.perf_counter(), s.epoch_seconds
        batches = staged(self.train_loader, self.device)  # pinned for CUDA
        for batch in itertools.islice(batches, n_batches - s.epoch_step):
            loss = self.step(batch.to(self.device, non_blocking=True))
            s.epoch_loss += loss * len(batch)
            s.epoch_samples += len(batch)
            s.epoch_step += 1
            s.epoch_seconds = before + time.perf_counter() - started
            self._call("on_train_batch_end", len(batch), s.epoch_loss / s.epoch_samples)
        self._call("on_train_epoch_end")
        return s.close_epoch()

    def step(self, batch: Batch) -> float:
        """One optimiser step on `batch` (on the trainer's device); its training loss."""
        cfg, s = self.cfg, self.state
        self.model.train()
        self.replicas.reseed(s.step)  # ranks > 0: their noise is a function of the step
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        catch_up_lookups(self.optimizers, self.model, batch)  # lazy whole-table L2, if any
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.replicas.forward(batch)
        logits = self._as_trained(logits.float(), batch)  # fp32: a no-op
        loss = self.strategy.loss(logits, batch.y, s.step)
        objective = loss
        if cfg.lookup_l2 > 0:  # embedding_regularizer is the optimisers' (lazy) weight decay
            rows = self.model.embedding.last_rows
            objective = loss + cfg.lookup_l2 * rows.pow(2).sum() / len(batch)
        objective.backward()
        self.replicas.sync_sparse_grads()
        with self.replicas.averaging():
            self.strategy.after_backward(
                StepContext(
                    self.model,
                    batch,
                    s.step,
                    self.lr,
                    self.val_stream,
                    self.precondition,
                    self._channel_forward if self._corrects_labels else None,
                )  # fmt: skip
            )
        for opt in self.optimizers:
            opt.step()
        s.step += 1
        return float(loss.detach())

    @property
    def _corrects_labels(self) -> bool:
        return self.flip_rates is not None and self.flip_rates.kind is not None

    def _as_trained(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The logits the loss is taken on: through the label-noise channel, if any, the
        probabilities of the batch's labels as they were drawn."""
        if not self._corrects_labels:
            return logits
        return self.flip_rates.noisy_logit(logits, batch.x_cat)

    def _channel_forward(self, batch: Batch) -> torch.Tensor:
        """The model's logits of `batch` through the channel (for bi-level strategies' passes)."""
        return self._as_trained(self.model(batch).float(), batch)

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(
        self, split: SplitArrays, calibration: Calibration | None = None
    ) -> dict[str, float]:
        """The task's metrics of the model as it is now on every row of `split` (its logits
        mapped by `calibration`, if any)."""
        flush_regularization(self.optimizers)  # every row with its pending L2 decay
        return evaluate_split(
            self.model,
            self.data.task,
            split,
            self.cfg.eval_batch_size,
            self.device,
            sharded=True,
            calibration=calibration,
            group=self.data.group,
        )

    def predict(self, split: SplitArrays, calibration: Calibration | None = None) -> np.ndarray:
        """The model's probabilities on every row of `split`, in order (one process)."""
        flush_regularization(self.optimizers)
        return predict_split(self.model, split, self.cfg.eval_batch_size, self.device, calibration)

    def calibrate(self) -> Calibration | None:
        """`cfg.calibration`'s map fitted to the model's logits on the validation split."""
        flush_regularization(self.optimizers)
        return calibrate_on_split(
            self.model,
            self.cfg.calibration,
            self.data.valid,
            self.cfg.eval_batch_size,
            self.device,
            sharded=True,
        )

    def test(self, split: SplitArrays, calibration: Calibration | None = None) -> dict[str, float]:
        """`evaluate(split, calibration)`, then the callbacks' `on_test_end` (after `fit`: the
        best model)."""
        metrics = self.evaluate(split, calibration)
        self._call("on_test_end", metrics)
        return metrics

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "model": self.model.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "strategy": self.strategy.state_dict(),
            "state": self.state.state_dict(),
            "val_stream": self.val_stream.state_dict(),
            "callbacks": {cb.state_key: cb.state_dict() for cb in self.callbacks},
            "rng": rng,
            "world": self.world,  # the processes that took the steps so far
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for opt, saved in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(saved)
        self.strategy.load_state_dict(state["strategy"])
        self.state.load_state_dict(state["state"])
        self.val_stream.load_state_dict(state["val_stream"])
        for cb in self.callbacks:
            if cb.state_key in state["callbacks"]:
                cb.load_state_dict(state["callbacks"][cb.state_key])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([r.cpu() for r in state["rng"]["cuda"]])
