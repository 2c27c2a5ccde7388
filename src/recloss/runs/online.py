"""One training run of an online strategy: build the Trainer, fit, test, make the record."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from recloss.config import RunConfig
from recloss.data import PreparedDataset
from recloss.models import RecModel, build_model
from recloss.rundir import DatasetInfo, RunDir, RunRecord
from recloss.search import build_strategy
from recloss.training import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    EpochLog,
    LRSchedule,
    Progress,
    ResumeCheckpoint,
    TensorBoard,
    TrainData,
    Trainer,
    checkpoint,
    make_optimizers,
    resolve_device,
)
from recloss.training.distributed import broadcast_object, is_main
from recloss.training.evaluate import group_column
from recloss.training.label_noise import estimate_flip_rates
from recloss.training.signals import StopSignals

log = logging.getLogger("recloss.runs")


def make_model(cfg: RunConfig, dataset: PreparedDataset, device: torch.device) -> RecModel:
    """The configured model for this data set's schema, on `device`."""
    m = cfg.model
    model = build_model(
        m.name, dataset.schema, m.embed_dim, sparse=cfg.train.sparse_embeddings, **m.params
    )
    if cfg.train.compile:
        model.compile_dense()
    return model.to(device)


def build_trainer(
    cfg: RunConfig,
    dataset: PreparedDataset,
    run_dir: RunDir | None,
    callbacks: Sequence[Callback] = (),
    stop: StopSignals | None = None,
) -> Trainer:
    """A Trainer for `cfg`, seeded; with a run folder it saves checkpoints and logs there, and
    at the end of the step in which `stop` caught a signal, before stopping."""
    t = cfg.train
    device = resolve_device(t.device)
    if t.threads is not None:  # the process's setting: the run owns the process
        torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)  # the model and then the strategy draw their initial weights
    model = make_model(cfg, dataset, device)
    strategy = build_strategy(cfg.loss, dataset.schema).to(device)
    log = run_dir.log if run_dir is not None else None
    optimizers = make_optimizers(model, t)
    group = None if t.gauc_by is None else group_column(dataset.schema, t.gauc_by, "train.gauc_by")
    data = TrainData(dataset.split("train"), dataset.split("valid"), dataset.schema.task, group)
    flip_rates = None
    if t.label_noise == "channel":
        flip_rates = estimate_flip_rates(data.train, data.valid, dataset.schema.cardinalities)
    header = None if flip_rates is None else flip_rates.describe(dataset.schema.cat_fields)
    standard: list[Callback] = [
        EarlyStopping(t.patience),
        LRSchedule(t.lr_schedule, optimizers, t.epochs),
        Progress(t.progress),
        EpochLog(log, t.progress, header),
    ]
    last: list[Callback] = []  # after every callback that keeps state, the caller's included
    if run_dir is not None:
        steps, minutes = t.checkpoint_every_steps, t.checkpoint_every_minutes
        standard += [BestCheckpoint(run_dir.best), TensorBoard(run_dir.tensorboard)]
        last = [ResumeCheckpoint(run_dir.checkpoint, steps, minutes, stop)]
    return Trainer(
        model,
        strategy,
        optimizers,
        data,
        t,
        callbacks=[*standard, *callbacks, *last],
        device=device,
        flip_rates=flip_rates,
    )


def fit_run(
    cfg: RunConfig,
    dataset: PreparedDataset,
    run_dir: RunDir,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> tuple[Trainer, RunRecord]:
    """Train, test the best model. Resuming continues from the folder's checkpoint; a run killed
    before its first checkpoint has nothing to continue and starts from the beginning. While it
    trains, SIGTERM or Ctrl-C stop it after a checkpoint (`StopSignals`)."""
    run_dir.path.mkdir(parents=True, exist_ok=True)
    with StopSignals(announce=is_main()) as stop:
        trainer = build_trainer(cfg, dataset, run_dir, callbacks, stop)
        state = _saved_state(run_dir, trainer) if resume else None
        if state is not None:
            checkpoint.restore(trainer, state, run_dir.checkpoint)
            _note_other_world(run_dir, state.get("world", trainer.world), trainer)
        trainer.fit()
    calibration = trainer.calibrate()
    test = trainer.test(dataset.split("test"), calibration)
    s, noise = trainer.state, trainer.flip_rates
    record = RunRecord(
        test=test,
        calibration=calibration,
        test_uncalibrated=None if calibration is None else trainer.evaluate(dataset.split("test")),
        best_valid=s.history[s.best_epoch - 1].valid,
        best_epoch=s.best_epoch,
        epochs=s.epoch,
        steps=s.step,
        history=s.history,
        train_seconds=s.train_seconds,
        wall_seconds=s.wall_seconds,
        samples_per_second=s.samples_per_second,
        weights=trainer.strategy.weights(),
        dataset=DatasetInfo(
            name=cfg.data.dataset, rows=dataset.meta.get("rows"), task=dataset.schema.task
        ),
        device=str(trainer.device),
        world_size=trainer.world,
        backend=trainer.replicas.backend,
        label_noise=None if noise is None else noise.summary(dataset.schema.cat_fields),
    )
    return trainer, record


def _saved_state(run_dir: RunDir, trainer: Trainer) -> dict[str, Any] | None:
    """The folder's checkpoint (None without one), read by rank 0 and handed to every rank."""
    if trainer.world == 1:
        found = run_dir.checkpoint.is_file()
        return checkpoint.load(run_dir.checkpoint, trainer.device) if found else None
    found = trainer.is_main and run_dir.checkpoint.is_file()
    return broadcast_object(checkpoint.load(run_dir.checkpoint, "cpu") if found else None)


def _note_other_world(run_dir: RunDir, saved: int, trainer: Trainer) -> None:
    """A run resumed with another number of processes takes the same global batches, but not
    the same random draws: say so, since the resume is then not exact."""
    if saved != trainer.world and trainer.is_main:
        log.warning(
            "%s: trained so far by %d process%s, resumed by %d: the same global batches from "
            "here, but not the same random draws (dropout, AutoLoss's noise) or ragged last "
            "batches, so the result will differ from an uninterrupted run's",
            run_dir.path, saved, "es" if saved > 1 else "", trainer.world,
        )  # fmt: skip


def save_run(run_dir: RunDir, trainer: Trainer, record: RunRecord) -> None:
    """Write the strategy's artifact, then the record, which marks the run finished (main
    process only): a run that fails to write the artifact (a full disk) can be resumed."""
    if not trainer.is_main:
        return
    artifact = trainer.strategy.artifact
    if artifact is not None:
        trainer.strategy.save_artifact(run_dir.file(artifact.file))
    run_dir.write_record(record)


def run_online(
    cfg: RunConfig,
    dataset: PreparedDataset,
    run_dir: RunDir,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> RunRecord:
    """Train, test and write a finished run folder of an online strategy."""
    trainer, record = fit_run(cfg, dataset, run_dir, resume=resume, callbacks=callbacks)
    save_run(run_dir, trainer, record)
    return record
