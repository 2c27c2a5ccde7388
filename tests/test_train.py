"""The run layer end to end on small synthetic data: record, checkpoints, resume, early stopping."""

from __future__ import annotations

import json
import math
import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import InterruptAfter, InterruptAtStep, SignalAtStep

import recloss
from recloss.config import config_from_dict
from recloss.data import SplitArrays
from recloss.errors import ConfigError, RecLossError, TrainingDiverged
from recloss.rundir import RunDir
from recloss.runs import resume, train
from recloss.training import Callback, checkpoint, make_optimizers
from recloss.training.streams import ValidationStream


def small_config(tmp_path, **overrides):
    cfg = {
        "data": {
            "dataset": "synthetic",
            "cache_dir": str(tmp_path / "cache"),
            "synthetic": {"rows": 6000, "fields": 6, "cardinality": 50, "seed": 3},
        },
        "model": {"name": "deepfm", "embed_dim": 8, "params": {"hidden_dims": [32, 32]}},
        "loss": {"name": "ce"},
        "train": {"epochs": 3, "batch_size": 256, "progress": False, "patience": 5, "seed": 7},
        "out": str(tmp_path / "runs"),
    }
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        cfg[section][key] = value
    return config_from_dict(cfg)


def test_train_writes_run_directory(tmp_path):
    record = train(small_config(tmp_path))
    files = {p.name for p in record.run_dir.iterdir()}
    assert {RunDir.CONFIG, RunDir.RECORD, RunDir.BEST, RunDir.CHECKPOINT} <= files
    assert RunDir(record.run_dir).read_record() == record
    assert json.loads((record.run_dir / RunDir.RECORD).read_text()) == record.model_dump()
    assert record.test["auc"] > 0.6  # planted signal is learnable
    assert 0 < record.test["logloss"] < 0.7
    assert len(record.history) == 3
    assert record.best_valid == record.history[record.best_epoch - 1].valid
    assert [e.epoch for e in record.history] == [1, 2, 3]  # counted as on screen
    assert record.samples_per_second > 0 and record.train_seconds > 0


def test_checkpoints_load_weights_only(tmp_path):
    record = train(small_config(tmp_path, **{"train.epochs": 1}))
    state = checkpoint.load(RunDir(record.run_dir).checkpoint)
    assert state["state"]["epoch"] == 1 and state["state"]["step"] > 0
    assert not list(record.run_dir.glob("*.tmp"))


def test_a_checkpoint_that_cannot_be_written_names_its_file_and_leaves_no_part_of_it(
    tmp_path, monkeypatch
):
    """As on a full disk, where torch.save raises a RuntimeError naming neither."""
    path = tmp_path / "checkpoint.pt"
    checkpoint.save_atomic({"w": torch.ones(2)}, path)

    def full_disk(obj, file):
        Path(file).write_bytes(b"PK")  # the part written before the disk filled
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=rf"^{re.escape(str(path))}: could not be written, with "):
        checkpoint.save_atomic({"w": torch.zeros(2)}, path)
    assert os.listdir(tmp_path) == ["checkpoint.pt"]
    assert checkpoint.load(path)["w"].tolist() == [1.0, 1.0]  # the one before, whole


def test_a_run_whose_controller_cannot_be_written_is_unfinished_and_resumes(tmp_path, monkeypatch):
    from recloss.search.autoloss import AutoLoss

    cfg = small_config(tmp_path, **{"train.epochs": 1})
    cfg.loss.name = "autoloss"

    def disk_full(self, path):
        raise OSError(f"{path}: could not be written")

    with monkeypatch.context() as patch:
        patch.setattr(AutoLoss, "save_artifact", disk_full)
        with pytest.raises(OSError, match="controller.safetensors"):
            train(cfg, run_dir=tmp_path / "run")
    folder = RunDir(tmp_path / "run")
    assert not folder.is_finished()  # the record, written last, marks a finished run
    resume(folder.path)
    assert folder.is_finished() and (folder.path / "controller.safetensors").is_file()


class Diverge(Callback):
    """Make the model's weights NaN at optimiser step `step`, as a learning rate far too high
    does."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, batch_size, mean_loss) -> None:
        if trainer.state.step == self.step:
            next(trainer.model.parameters()).data.fill_(float("nan"))


@pytest.mark.parametrize("loss", ["ce", "autoloss"])
def test_a_run_whose_model_diverges_says_so_and_names_the_learning_rates(tmp_path, loss):
    cfg = small_config(tmp_path, **{"train.epochs": 2})
    cfg.loss.name = loss
    message = (
        "training diverged: the model's outputs are NaN or infinite; lower the learning rates "
        "(train.lr, train.embedding_lr)"
    )
    with pytest.raises(TrainingDiverged, match=re.escape(message)):
        train(cfg, run_dir=tmp_path / "run", callbacks=[Diverge(30)])  # in epoch 2 of 2


def test_interrupted_run_resumes_to_same_metrics(tmp_path, caplog):
    full = train(small_config(tmp_path), run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(small_config(tmp_path), run_dir=tmp_path / "cut", callbacks=[InterruptAfter(1)])
    cut = RunDir(tmp_path / "cut")
    assert checkpoint.load(cut.checkpoint)["state"]["epoch"] == 1
    assert not cut.is_finished()  # no record until the run has finished
    resumed = resume(cut.path)
    assert not caplog.records  # the same number of processes: an exact resume, nothing to say
    assert resumed.test == full.test
    assert [h.valid for h in resumed.history] == [h.valid for h in full.history]


def test_a_run_resumed_by_another_number_of_processes_says_it_is_not_exact(tmp_path, caplog):
    cfg = small_config(tmp_path, **{"train.epochs": 2})
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[InterruptAfter(1)])
    cut = RunDir(tmp_path / "cut")
    state = checkpoint.load(cut.checkpoint)
    assert state["world"] == 1
    torch.save({**state, "world": 2}, cut.checkpoint)  # as if two ranks had written it
    resume(cut.path)
    warned = [r.getMessage() for r in caplog.records if "resumed by 1" in r.getMessage()]
    assert len(warned) == 1
    assert "trained so far by 2 processes, resumed by 1" in warned[0]
    assert "will differ from an uninterrupted run's" in warned[0]


def test_early_stopping_state_survives_a_resume(tmp_path):
    """The callback's own counter travels in the checkpoint: the resumed run stops where the
    uninterrupted one did."""
    cfg = small_config(tmp_path, **{"train.epochs": 30, "train.patience": 1, "train.lr": 0.05})
    full = train(cfg, run_dir=tmp_path / "full")
    stop = full.best_epoch + 1  # the epoch that did not improve (1-based)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[InterruptAfter(stop)])
    saved = checkpoint.load(RunDir(tmp_path / "cut").checkpoint)
    assert saved["callbacks"]["EarlyStopping"] == {"bad_epochs": 1}
    assert resume(tmp_path / "cut").epochs == full.epochs == stop


class RecordAUC(Callback):
    """A caller's callback with state of its own: the validation AUC of every epoch."""

    def __init__(self) -> None:
        self.aucs: list[float] = []

    def on_epoch_end(self, trainer, entry) -> None:
        self.aucs.append(entry.valid["auc"])

    def state_dict(self) -> dict:
        return {"aucs": self.aucs}

    def load_state_dict(self, state: dict) -> None:
        self.aucs = list(state["aucs"])


def test_a_callers_callback_has_its_epoch_in_the_checkpoint_and_resumes_whole(tmp_path):
    cfg = small_config(tmp_path, **{"train.epochs": 3})
    full = RecordAUC()
    train(cfg, run_dir=tmp_path / "full", callbacks=[full])
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[RecordAUC(), InterruptAfter(2)])
    saved = checkpoint.load(RunDir(tmp_path / "cut").checkpoint)
    assert saved["callbacks"]["RecordAUC"] == {"aucs": full.aucs[:2]}  # written after it ran
    resumed = RecordAUC()
    resume(tmp_path / "cut", callbacks=[resumed])
    assert resumed.aucs == full.aucs


def test_two_callbacks_with_state_under_one_key_are_refused(tmp_path):
    cfg = small_config(tmp_path)
    with pytest.raises(ConfigError, match="share the checkpoint key 'RecordAUC'; give one a"):
        train(cfg, callbacks=[RecordAUC(), RecordAUC()])

    class Second(RecordAUC):
        state_key = "RecordAUC-2"  # a key of its own

    # and stateless callbacks may repeat
    train(cfg, callbacks=[RecordAUC(), Second(), InterruptAfter(99), InterruptAfter(99)])


def test_early_stopping_restores_best_epoch(tmp_path):
    # A learning rate this large overfits quickly: validation AUC stops improving.
    cfg = small_config(tmp_path, **{"train.epochs": 30, "train.patience": 1, "train.lr": 0.05})
    record = train(cfg)
    assert record.epochs < 30
    assert record.epochs == record.best_epoch + 1  # one non-improving epoch, then stop
    aucs = [h.valid["auc"] for h in record.history]
    assert record.best_valid["auc"] == max(aucs)


def test_sparse_embeddings_use_lazy_adam(tmp_path):
    cfg = small_config(tmp_path)
    from recloss.data import prepare_dataset
    from recloss.models import build_model

    schema = prepare_dataset(cfg.data, progress=False).schema
    model = build_model("deepfm", schema, 8, sparse=True)
    kinds = {type(o).__name__ for o in make_optimizers(model, cfg.train)}
    assert kinds == {"Adam", "LazyAdam"}
    dense = build_model("deepfm", schema, 8, sparse=False)
    assert {type(o).__name__ for o in make_optimizers(dense, cfg.train)} == {"Adam"}


def test_fixed_weights_strategy_trains(tmp_path):
    cfg = small_config(tmp_path, **{"train.epochs": 1})
    cfg.loss.name = "weighted"
    cfg.loss.candidates = ["ce", "focal"]
    cfg.loss.params = {"weights": [0.7, 0.3]}
    record = train(cfg)
    assert record.weights == pytest.approx({"ce": 0.7, "focal": 0.3})


def test_bad_strategy_params_name_the_key(tmp_path):
    cfg = small_config(tmp_path)
    cfg.loss.name = "weighted"
    cfg.loss.params = {"wieghts": [1.0]}
    with pytest.raises(ConfigError, match=r"loss\.params\.wieghts"):
        train(cfg)


def test_cuda_request_without_gpu_is_a_config_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ConfigError, match="train.device"):
        train(small_config(tmp_path, **{"train.device": "cuda"}), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # a failed setup leaves no folder behind


@pytest.mark.parametrize(("loss", "params"), [
    ("ce", {}), ("autoloss", {}), ("autoloss", {"horizon": "window"}), ("dwa", {}),
], ids=["ce", "autoloss", "autoloss-window", "dwa"])  # fmt: skip
def test_a_run_killed_inside_its_first_epoch_resumes_exactly(tmp_path, loss, params):
    """Checkpoints every 4 steps; killed at step 6 of 19, the run resumes from step 4 and ends
    exactly as an uninterrupted one: metrics, losses and the strategy's figures (with AutoLoss's
    window, the steps since its last controller step)."""
    cfg = small_config(tmp_path, **{"train.epochs": 2, "train.checkpoint_every_steps": 4})
    cfg.loss.name, cfg.loss.params = loss, params
    full = train(cfg, run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[InterruptAtStep(6)])
    saved = checkpoint.load(RunDir(tmp_path / "cut").checkpoint)["state"]
    assert (saved["epoch"], saved["step"], saved["epoch_step"]) == (0, 4, 4)
    resumed = resume(tmp_path / "cut")
    assert resumed.test == full.test
    same = [(h.epoch, h.step, h.train_loss, h.valid, h.strategy) for h in full.history]
    assert [(h.epoch, h.step, h.train_loss, h.valid, h.strategy) for h in resumed.history] == same


def stub_trainer(world: int, epoch_step: int = 0):
    """What `Progress` reads of a trainer: 1200 examples an epoch in global batches of 64."""
    from types import SimpleNamespace

    from recloss.config import TrainConfig
    from recloss.training.state import TrainerState

    return SimpleNamespace(
        cfg=TrainConfig(batch_size=64, epochs=3),
        state=TrainerState(epoch=1, epoch_step=epoch_step),
        is_main=True,
        world=world,
        epoch_examples=lambda batches: min(batches * 64, 1200),  # the last batch: 48 rows
    )


def test_the_progress_bar_counts_an_epochs_examples_from_where_a_resumed_run_stopped(
    monkeypatch,
):
    import io

    from tqdm import tqdm

    from recloss.training import callbacks
    from recloss.training.callbacks import Progress

    def shown(show: bool, **kw):  # as on a terminal (tqdm counts nothing while disabled)
        return tqdm(**kw, disable=False, file=io.StringIO())

    monkeypatch.setattr(callbacks, "ProgressBar", shown)
    trainer, progress = stub_trainer(world=1, epoch_step=4), Progress()
    progress.on_train_epoch_start(trainer, batches=19)
    assert (progress.bar.n, progress.bar.total) == (4 * 64, 1200)
    for rows in [64] * 14 + [48]:
        progress.on_train_batch_end(trainer, rows, 0.5)
    assert progress.bar.n == progress.bar.total  # 100% at the epoch's end
    progress.on_train_epoch_end(trainer)
    trainer, progress = stub_trainer(world=2), Progress()
    progress.on_train_epoch_start(trainer, batches=18)
    progress.on_train_batch_end(trainer, 32, 0.5)  # one rank's half of a global batch
    assert progress.bar.n == 64
    progress.on_train_epoch_end(trainer)


def test_an_epochs_examples_count_its_ragged_last_batch(tmp_path):
    from recloss.data import prepare_dataset
    from recloss.runs.online import build_trainer

    cfg = small_config(tmp_path)
    trainer = build_trainer(cfg, prepare_dataset(cfg.data), run_dir=None)
    loader, rows = trainer.train_loader, len(trainer.data.train)
    assert rows % loader.batch_size  # a ragged last batch
    assert trainer.epoch_examples(len(loader)) == rows
    assert trainer.epoch_examples(2) == 2 * loader.batch_size


def test_checkpoints_inside_an_epoch_follow_the_clock(tmp_path, monkeypatch):
    """`checkpoint_every_minutes`: a checkpoint once that much time has passed since the last."""
    from recloss.training import callbacks

    clock = iter(range(0, 10_000, 50))  # each reading of the clock: 50 s later
    monkeypatch.setattr(callbacks, "monotonic", lambda: next(clock))
    cfg = small_config(tmp_path, **{"train.epochs": 1, "train.checkpoint_every_minutes": 1.5})
    saves, save = [], callbacks.checkpoint.save_atomic

    def spy(state, path):
        save(state, path)
        if path.name == RunDir.CHECKPOINT:
            saves.append(state["state"]["epoch_step"])

    monkeypatch.setattr(callbacks.checkpoint, "save_atomic", spy)
    train(cfg, run_dir=tmp_path / "run")
    steps = [s for s in saves if s]  # inside the epoch (the epoch-end save has epoch_step 0)
    assert steps and all(b - a == 2 for a, b in zip(steps, steps[1:], strict=False))


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    cfg = small_config(tmp_path, **{"train.epochs": 1})
    full = train(cfg, run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[InterruptAtStep(2)])
    assert not RunDir(tmp_path / "cut").checkpoint.exists()
    assert resume(tmp_path / "cut").test == full.test


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_stops_a_run_after_a_checkpoint_of_that_step_and_it_resumes_exactly(
    tmp_path, signum, capsys
):
    cfg = small_config(tmp_path, **{"train.epochs": 2})  # no checkpoint inside an epoch
    full = train(cfg, run_dir=tmp_path / "full")
    handlers = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[SignalAtStep(6, signum)])
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == handlers
    assert "saving a checkpoint, then stopping" in capsys.readouterr().err
    saved = checkpoint.load(RunDir(tmp_path / "cut").checkpoint)["state"]
    assert (saved["epoch"], saved["step"], saved["epoch_step"]) == (0, 6, 6)
    resumed = resume(tmp_path / "cut")
    assert resumed.test == full.test
    assert [h.train_loss for h in resumed.history] == [h.train_loss for h in full.history]


def test_train_threads_sets_the_intra_op_threads(tmp_path):
    before = torch.get_num_threads()
    try:
        train(small_config(tmp_path, **{"train.epochs": 1, "train.threads": 1}))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bf16_precision_runs_the_forward_pass_in_bf16_and_the_loss_in_fp32(tmp_path):
    from recloss.runs.online import build_trainer
    from recloss.training.devices import uses_bf16

    cfg = small_config(tmp_path, **{"train.precision": "bf16"})
    dataset = recloss.prepare_dataset(cfg.data, progress=False)
    trainer = build_trainer(cfg, dataset, run_dir=None)
    seen = []
    linear = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, inputs, out: seen.append(out.dtype))
    losses = [trainer.step(batch) for batch, _ in zip(trainer.train_loader, range(5), strict=False)]
    assert seen == [torch.bfloat16] * 5 and all(0 < loss < 2 for loss in losses)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # weights stay fp32
    assert not uses_bf16("fp32", torch.device("cpu")) and uses_bf16("bf16", torch.device("cpu"))


def test_compile_trains_the_dense_blocks_compiled_to_the_same_metrics(tmp_path):
    eager = train(small_config(tmp_path / "eager", **{"train.epochs": 1}))
    cfg = small_config(tmp_path / "compiled", **{"train.epochs": 1, "train.compile": True})
    from recloss.runs.online import make_model

    model = make_model(cfg, recloss.prepare_dataset(cfg.data, progress=False), torch.device("cpu"))
    compiled = {name for name, m in model.named_children() if m._compiled_call_impl is not None}
    assert compiled == {"fm", "dnn"}  # not the embedding tables, not a lone Linear
    record = train(cfg)
    assert record.test["auc"] == pytest.approx(eager.test["auc"], abs=1e-4)
    assert record.test["logloss"] == pytest.approx(eager.test["logloss"], abs=1e-4)


def test_autoloss_hypergrad_rows_sizes_the_validation_batches_and_adam_unroll_trains(tmp_path):
    from recloss.runs.online import build_trainer

    params = {"hypergrad_rows": 64, "unroll": "adam"}
    cfg = small_config(tmp_path, **{"loss.name": "autoloss", "loss.params": params})
    dataset = recloss.prepare_dataset(cfg.data, progress=False)
    trainer = build_trainer(cfg, dataset, run_dir=None)
    assert len(trainer.val_stream()) == 64 and len(next(iter(trainer.train_loader))) == 256
    before = [p.detach().clone() for p in trainer.strategy.controller.parameters()]
    for batch, _ in zip(trainer.train_loader, range(8), strict=False):
        trainer.step(batch)
    moved = trainer.strategy.controller.parameters()
    assert trainer.strategy.controller_steps > 0
    assert not all(torch.equal(a, b) for a, b in zip(before, moved, strict=True))


def test_an_empty_validation_split_is_an_error_not_an_endless_loop():
    empty = SplitArrays(np.zeros((0, 2), np.int32), None, np.zeros(0, np.int8))
    stream = ValidationStream(empty, 4, seed=0, rank=0, world=1, device=torch.device("cpu"))
    with pytest.raises(RecLossError, match="the validation split has no rows"):
        stream()


def test_a_validation_split_too_small_to_share_says_so_on_the_rank_left_without():
    one = SplitArrays(np.zeros((1, 2), np.int32), None, np.zeros(1, np.int8))
    stream = ValidationStream(one, 4, seed=0, rank=1, world=2, device=torch.device("cpu"))
    with pytest.raises(RecLossError, match="^the validation split's 1 row cannot give each"):
        stream()


@pytest.mark.parametrize(
    ("aucs", "monitor", "best"),
    [
        ([math.nan] * 3, "auc", 2),
        ([0.6, 0.7, 0.8], "auc", 3),
        ([0.6, 0.7, 0.8], "logloss", 2),
        ([0.6, 0.7, 0.8], "gauc", 1),
        ([math.nan] * 3, "gauc", 1),  # the gAUC is defined where the whole split's AUC is not
    ],
    ids=["auc-undefined", "auc", "logloss", "gauc", "gauc-auc-undefined"],
)
def test_the_best_epoch_is_the_monitored_metrics_or_the_logloss_where_the_auc_is_undefined(
    aucs, monitor, best
):
    from recloss.rundir import EpochRecord
    from recloss.training.state import TrainerState

    state = TrainerState()
    for epoch, (auc, logloss) in enumerate(zip(aucs, [0.6, 0.5, 0.55], strict=True), start=1):
        valid = {"auc": auc, "logloss": logloss, "gauc": [0.75, 0.72, 0.71][epoch - 1]}
        state.record_epoch(EpochRecord(epoch=epoch, step=epoch, seconds=1.0, train_loss=0.7,
                                       samples_per_second=1.0, valid=valid), monitor)  # fmt: skip
    assert state.best_epoch == best
