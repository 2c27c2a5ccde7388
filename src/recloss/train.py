"""The trainer: optimisers, the training loop, evaluation, early stopping, checkpoints and logs."""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from recloss import checkpoint
from recloss.config import RunConfig, TrainConfig, load_config
from recloss.data import BatchLoader, PreparedDataset, SplitArrays, prepare_dataset
from recloss.data.schema import Batch, Schema
from recloss.errors import ConfigError
from recloss.metrics import evaluate, probabilities
from recloss.models import build_model
from recloss.optim import LazyAdam
from recloss.search import LossStrategy, StepContext, build_strategy
from recloss.search.twostage import TwoStage, run_two_stage

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]


@dataclass
class TrainState:
    """Everything about the loop's progress that a resumed run needs."""

    epoch: int = 0  # epochs completed
    step: int = 0
    best_auc: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    samples: int = 0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA device is available")
    return torch.device(name)


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def make_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """Adam for dense parameters; LazyAdam (updates of the touched rows only) for sparse tables."""
    sparse = [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.Adam(dense, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ]
    if sparse:
        optimizers.append(LazyAdam(sparse, lr=cfg.embedding_lr or cfg.lr))
    return optimizers


@torch.no_grad()
def predict(
    model: nn.Module, split: SplitArrays, batch_size: int, device: torch.device
) -> np.ndarray:
    """Class-1 probabilities [N] (binary) or class probabilities [N, C] of every row, in order."""
    model.eval()
    outputs = []
    for batch in BatchLoader(split, batch_size, shuffle=False):
        outputs.append(probabilities(model(batch.to(device)).float()).cpu())
    return torch.cat(outputs).numpy()


def evaluate_split(
    model: nn.Module, schema: Schema, split: SplitArrays, batch_size: int, device: torch.device
) -> dict[str, float]:
    scores = predict(model, split, batch_size, device)
    return evaluate(schema.task, np.asarray(split.y, dtype=np.int64), scores)


class ValidationStream:
    """Endless shuffled validation batches for bi-level strategies; its position is checkpointed."""

    def __init__(
        self,
        split: SplitArrays,
        batch_size: int,
        seed: int,
        rank: int,
        world: int,
        device: torch.device,
    ) -> None:
        self.loader = BatchLoader(
            split, batch_size, shuffle=True, seed=seed, rank=rank, world_size=world
        )
        self.device = device
        self.cycle = 0
        self.position = 0
        self._batches = None

    def __call__(self) -> Batch:
        if self._batches is None:
            self.loader.set_epoch(self.cycle)
            self._batches = itertools.islice(iter(self.loader), self.position, None)
        batch = next(self._batches, None)
        if batch is None:
            self.cycle, self.position, self._batches = self.cycle + 1, 0, None
            return self()
        self.position += 1
        return batch.to(self.device)

    def state(self) -> dict[str, int]:
        return {"cycle": self.cycle, "position": self.position}

    def load_state(self, state: dict[str, int]) -> None:
        self.cycle, self.position, self._batches = state["cycle"], state["position"], None


class Trainer:
    """Trains one model with one loss strategy on one prepared data set, writing a run directory."""

    def __init__(self, cfg: RunConfig, dataset: PreparedDataset, run_dir: Path) -> None:
        t = cfg.train
        self.cfg, self.dataset, self.run_dir = cfg, dataset, run_dir
        self.device = resolve_device(t.device)
        self.rank, self.world = distributed_rank()
        torch.manual_seed(t.seed)
        self.schema = dataset.schema
        self.model = build_model(
            cfg.model.name,
            self.schema,
            cfg.model.embed_dim,
            sparse=t.sparse_embeddings,
            **cfg.model.params,
        ).to(self.device)
        self.strategy: LossStrategy = build_strategy(cfg.loss, self.schema).to(self.device)
        self.optimizers = make_optimizers(self.model, t)
        # Ranks must run the same number of steps: drop the ragged last batch when distributed.
        self.train_loader = BatchLoader(
            dataset.split("train"),
            t.batch_size,
            shuffle=True,
            seed=t.seed,
            rank=self.rank,
            world_size=self.world,
            drop_last=self.world > 1,
        )
        self.val_stream = ValidationStream(
            dataset.split("valid"), t.batch_size, t.seed + 1, self.rank, self.world, self.device
        )
        self.state = TrainState()
        self.writer = _tensorboard_writer(run_dir) if self.is_main else None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- the loop -------------------------------------------------------------------------------
    def fit(self, stop_after_epochs: int | None = None) -> dict[str, Any]:
        """Train until the epoch budget or early stopping; return the run's metrics."""
        t, s = self.cfg.train, self.state
        epochs_run = 0
        while s.epoch < t.epochs and not self._should_stop():
            if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
                raise KeyboardInterrupt  # used by tests to simulate an interrupted run
            self._run_epoch()
            epochs_run += 1
        return self._finish()

    def _should_stop(self) -> bool:
        bad = self.state.bad_epochs
        return bad > 0 and bad >= self.cfg.train.patience

    def _run_epoch(self) -> None:
        s = self.state
        started = time.perf_counter()
        train_loss, samples, train_seconds = self.train_epoch(s.epoch)
        valid = evaluate_split(
            self.model,
            self.schema,
            self.dataset.split("valid"),
            self.cfg.train.eval_batch_size,
            self.device,
        )
        s.samples += samples
        s.train_seconds += train_seconds
        s.wall_seconds += time.perf_counter() - started
        entry = {
            "epoch": s.epoch,
            "step": s.step,
            "seconds": round(s.wall_seconds, 3),
            "train_loss": train_loss,
            "samples_per_second": samples / max(train_seconds, 1e-9),
            "valid": valid,
            "strategy": self.strategy.epoch_diagnostics(),
        }
        s.history.append(entry)
        if s.best_epoch < 0 or valid["auc"] > s.best_auc:  # AUC may be NaN on a one-class split
            s.best_auc, s.best_epoch, s.bad_epochs = valid["auc"], s.epoch, 0
            if self.is_main:
                checkpoint.save_atomic(self.model.state_dict(), self.run_dir / BEST)
        else:
            s.bad_epochs += 1
        s.epoch += 1
        self._log_epoch(entry)
        if self.is_main:
            checkpoint.save_atomic(self._checkpoint_state(), self.run_dir / CHECKPOINT)

    def train_epoch(self, epoch: int) -> tuple[float, int, float]:
        """One pass over the training split: (mean loss, samples, seconds)."""
        t, s = self.cfg.train, self.state
        self.train_loader.set_epoch(epoch)
        n_batches = len(self.train_loader)
        if t.max_steps_per_epoch is not None:
            n_batches = min(n_batches, t.max_steps_per_epoch)
        bar = tqdm(
            total=n_batches * t.batch_size,
            unit="ex",
            unit_scale=True,
            desc=f"epoch {epoch + 1}/{t.epochs}",
            leave=False,
            disable=not (t.progress and self.is_main),
        )
        total_loss, samples = 0.0, 0
        started = time.perf_counter()
        for batch in itertools.islice(self.train_loader, n_batches):
            loss = self._train_step(batch.to(self.device, non_blocking=True))
            total_loss += loss * len(batch)
            samples += len(batch)
            bar.update(len(batch))
            if s.step % 20 == 0:
                bar.set_postfix(loss=f"{total_loss / samples:.4f}")
        bar.close()
        return total_loss / max(samples, 1), samples, time.perf_counter() - started

    def _train_step(self, batch: Batch) -> float:
        t, s = self.cfg.train, self.state
        self.model.train()
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        logits = self.model(batch)
        loss = self.strategy.loss(logits, batch.y, s.step)
        objective = loss
        if t.embedding_l2 > 0:
            rows = self.model.embedding.last_rows
            objective = loss + t.embedding_l2 * rows.pow(2).sum() / len(batch)
        objective.backward()
        self.strategy.update(StepContext(self.model, batch, s.step, t.lr, self.val_stream))
        for opt in self.optimizers:
            opt.step()
        s.step += 1
        return float(loss.detach())

    def _finish(self) -> dict[str, Any]:
        s = self.state
        if s.best_epoch < 0:
            raise ConfigError("train.epochs: no epoch was completed")
        self.model.load_state_dict(checkpoint.load(self.run_dir / BEST, self.device))
        test = evaluate_split(
            self.model,
            self.schema,
            self.dataset.split("test"),
            self.cfg.train.eval_batch_size,
            self.device,
        )
        metrics = {
            "test": test,
            "best_valid": s.history[s.best_epoch]["valid"],
            "best_epoch": s.best_epoch,
            "epochs": s.epoch,
            "steps": s.step,
            "history": s.history,
            "train_seconds": s.train_seconds,
            "wall_seconds": s.wall_seconds,
            "samples_per_second": s.samples / max(s.train_seconds, 1e-9),
            "strategy": self.strategy.summary(),
            "dataset": {"name": self.cfg.data.dataset, "rows": self.dataset.meta.get("rows")},
            "device": str(self.device),
        }
        if self.is_main:
            _write_json(self.run_dir / "metrics.json", metrics)
            self.strategy.save_artifacts(self.run_dir)
            if self.writer is not None:
                for key, value in test.items():
                    self.writer.add_scalar(f"test/{key}", value, s.step)
                self.writer.close()
        return metrics

    # -- logging and checkpoints -----------------------------------------------------------------
    def _log_epoch(self, entry: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = entry["step"]
        self.writer.add_scalar("train/loss", entry["train_loss"], step)
        for key, value in entry["valid"].items():
            self.writer.add_scalar(f"valid/{key}", value, step)
        for key, value in _flatten(entry["strategy"]).items():
            self.writer.add_scalar(f"strategy/{key}", value, step)

    def _checkpoint_state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "model": self.model.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "strategy": self.strategy.state_dict(),
            "strategy_extra": self.strategy.extra_state(),
            "state": asdict(self.state),
            "val_stream": self.val_stream.state(),
            "rng": rng,
        }

    def load_checkpoint(self) -> None:
        """Continue from the run directory's last epoch checkpoint."""
        ckpt = checkpoint.load(self.run_dir / CHECKPOINT, self.device)
        self.model.load_state_dict(ckpt["model"])
        for opt, state in zip(self.optimizers, ckpt["optimizers"], strict=True):
            opt.load_state_dict(state)
        self.strategy.load_state_dict(ckpt["strategy"])
        self.strategy.load_extra_state(ckpt["strategy_extra"])
        self.state = TrainState(**ckpt["state"])
        self.val_stream.load_state(ckpt["val_stream"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if "cuda" in ckpt["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([r.cpu() for r in ckpt["rng"]["cuda"]])


def _tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


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


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=True))
    os.replace(tmp, path)


def new_run_dir(cfg: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.out) / f"{cfg.data.dataset}-{cfg.model.name}-{cfg.loss.name}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir, n = base.with_name(f"{base.name}-{n}"), n + 1
    return run_dir


def train(
    cfg: RunConfig, run_dir: str | Path | None = None, stop_after_epochs: int | None = None
) -> RunResult:
    """Prepare the data, train, evaluate on the test split; the run directory holds the results."""
    dataset = prepare_dataset(cfg.data, progress=cfg.train.progress)
    path = Path(run_dir) if run_dir is not None else new_run_dir(cfg)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(cfg.to_yaml())
    return RunResult(path, _run(cfg, dataset, path, stop_after_epochs=stop_after_epochs))


def resume(run_dir: str | Path) -> RunResult:
    """Continue an interrupted run from its last checkpoint, with its saved configuration."""
    path = Path(run_dir)
    cfg = load_run_config(path)
    dataset = prepare_dataset(cfg.data, progress=cfg.train.progress)
    return RunResult(path, _run(cfg, dataset, path, resume=True))


def _run(
    cfg: RunConfig,
    dataset: PreparedDataset,
    path: Path,
    stop_after_epochs: int | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train one model, or search loss weights first for a two-stage strategy (darts, bohb ...)."""
    method = build_strategy(cfg.loss, dataset.schema)
    if isinstance(method, TwoStage):
        return run_two_stage(
            method, cfg, dataset, path, stop_after_epochs=stop_after_epochs, resume=resume
        )
    trainer = Trainer(cfg, dataset, path)
    if resume:
        trainer.load_checkpoint()
    return trainer.fit(stop_after_epochs=stop_after_epochs)


def load_run_config(run_dir: Path) -> RunConfig:
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    return load_config(run_dir / "config.yaml")


def evaluate_run(run_dir: str | Path, data_path: str | None = None) -> dict[str, float]:
    """Test metrics of a finished run's best model, on its test split or on a new file."""
    path = Path(run_dir)
    cfg = load_run_config(path)
    dataset = prepare_dataset(cfg.data, progress=cfg.train.progress)
    device = resolve_device(cfg.train.device)
    model = build_model(
        cfg.model.name,
        dataset.schema,
        cfg.model.embed_dim,
        sparse=cfg.train.sparse_embeddings,
        **cfg.model.params,
    ).to(device)
    model.load_state_dict(checkpoint.load(path / BEST, device))
    split = dataset.encode_file(data_path) if data_path else dataset.split("test")
    return evaluate_split(model, dataset.schema, split, cfg.train.eval_batch_size, device)
