"""The public Python API: lazy exports, config forms, in-memory data, the building blocks."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import torch
import yaml
from conftest import InterruptAfter

import recloss
from recloss import AutoLoss, Callback
from recloss.config import LossConfig, RunConfig
from recloss.data.schema import Batch
from recloss.errors import CompatibilityError, ConfigError, DataError
from recloss.rundir import RunDir
from recloss.runs import resolve_config

PUBLIC = {
    "train", "resume", "evaluate", "predict", "RunConfig", "RunRecord", "prepare_dataset",
    "prepare_frame", "build_model", "build_strategy", "AutoLoss", "Trainer", "Callback",
}  # fmt: skip


def test_dir_lists_the_public_names_and_each_resolves():
    assert set(dir(recloss)) >= PUBLIC
    for name in PUBLIC:
        assert getattr(recloss, name) is not None
    assert callable(recloss.train)  # the function, not the training package
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        recloss.nope  # noqa: B018


def test_config_forms_and_overrides_agree(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: {name: ipnn}\ntrain: {epochs: 3}\n")
    raw = {"model": {"name": "ipnn"}, "train": {"epochs": 3}}
    from_path = resolve_config(path, train__lr=0.01)
    from_dict = resolve_config(raw, **{"train.lr": 0.01})
    from_cfg = resolve_config(RunConfig.model_validate(raw), train__lr=0.01)
    assert from_path == from_dict == from_cfg
    assert from_path.train.lr == 0.01 and from_path.model.name == "ipnn"
    assert raw == {"model": {"name": "ipnn"}, "train": {"epochs": 3}}  # the caller's, untouched
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        resolve_config(raw, train__epochs=0)
    with pytest.raises(TypeError, match="^config must be a RunConfig, .*, not int$"):
        resolve_config(123)
    with pytest.raises(ConfigError, match=r"^'train\.\.lr': not a key; keys are dotted names"):
        resolve_config(raw, **{"train..lr": 0.01})


def planted_rows(n: int, seed: int) -> dict[str, np.ndarray]:
    """Two categorical fields whose agreement sets the label, plus a noise column."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 6, n), rng.integers(0, 6, n)
    flip = rng.random(n) < 0.1
    label = ((a % 2 == b % 2) ^ flip).astype(np.int64)
    return {"a": a.astype(str), "b": b.astype(str), "noise": rng.normal(size=n), "y": label}


def write_csv(path, rows: dict[str, np.ndarray]) -> None:
    pa_csv.write_csv(pa.table(rows), path)


def frame_config(tmp_path) -> dict:
    return {
        "data": {
            "cache_dir": str(tmp_path / "cache"),
            "table": {"label": "y", "categorical": ["a", "b"], "numeric": ["noise"]},
        },
        "model": {"name": "deepfm", "embed_dim": 8, "params": {"hidden_dims": [16]}},
        "loss": {"name": "ce"},
        "train": {"epochs": 4, "batch_size": 128, "progress": False, "lr": 0.01},
    }


def test_train_evaluate_predict_on_in_memory_rows(tmp_path):
    rows = planted_rows(3000, seed=0)
    record = recloss.train(frame_config(tmp_path), run_dir=tmp_path / "run", data=rows)
    assert record.test["auc"] > 0.8  # the planted parity of (a, b) is learned
    assert RunDir(record.run_dir).read_config().data.dataset == "frame"

    assert recloss.evaluate(record.run_dir, train_data=rows) == record.test
    new = planted_rows(500, seed=1)
    probs = recloss.predict(record.run_dir, pa.table(new), train_data=rows)
    assert probs.shape == (500,) and ((probs > 0) & (probs < 1)).all()
    reversed_rows = {k: v[::-1].copy() for k, v in new.items()}
    again = recloss.predict(record.run_dir, reversed_rows, train_data=rows)
    np.testing.assert_allclose(again, probs[::-1], rtol=1e-6)  # row order is kept
    scored = recloss.evaluate(record.run_dir, new, train_data=rows)
    assert scored["auc"] > 0.8


def test_rows_given_beside_a_config_that_names_files_are_refused_not_the_files_ignored(tmp_path):
    rows = planted_rows(300, seed=0)
    cfg = frame_config(tmp_path)
    cfg["data"] |= {"dataset": "csv", "path": str(tmp_path / "rows.csv")}
    with pytest.raises(ConfigError, match=r"^data\.path: .*rows\.csv names data, and rows are "):
        recloss.train(cfg, data=rows, out=str(tmp_path))
    splits = {"train": "a.csv", "valid": "b.csv", "test": "c.csv"}
    with pytest.raises(ConfigError, match=r"^data\.splits: .* \(data__splits=None leaves"):
        recloss.train(cfg, data=rows, data__path=None, data__splits=splits, out=str(tmp_path))
    assert not list(tmp_path.glob("frame-*"))
    record = recloss.train(cfg, data=rows, data__path=None, train__epochs=1, out=str(tmp_path))
    assert RunDir(record.run_dir).read_config().data.dataset == "frame"


def test_paths_that_start_with_a_tilde_are_in_the_home_folder(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    rows = planted_rows(600, seed=0)
    write_csv(home / "rows.csv", rows)
    cfg = frame_config(tmp_path)
    cfg["data"] |= {"dataset": "csv", "path": "~/rows.csv", "cache_dir": "~/cache"}
    (home / "run.yaml").write_text(yaml.safe_dump(cfg))
    record = recloss.train("~/run.yaml", out="~/runs", train__epochs=1)
    assert record.run_dir.parent == home / "runs" and (home / "cache").is_dir()
    folder = f"~/runs/{record.run_dir.name}"
    assert RunDir(folder).read_record().test == record.test
    recloss.runs.save_predictions(recloss.predict(folder, "~/rows.csv"), "~/p.csv")
    assert (home / "p.csv").is_file() and not list(work.iterdir())  # no folder named ~


def missing_criteo(tmp_path) -> dict[str, str]:
    """Overrides naming a Criteo file that does not exist: any step that reads it fails."""
    return {"data.dataset": "criteo", "data.path": str(tmp_path / "train.txt")}


@pytest.mark.parametrize(
    "override, start",
    [
        (
            {"loss.name": "focall"},
            "loss.name: unknown loss or strategy 'focall' (did you mean focal?)",
        ),
        ({"model.name": "deepfn"}, "model.name: unknown model 'deepfn' (did you mean deepfm?)"),
        ({"model.params": {"dropout": 2}}, "model.params.dropout: "),
        ({"loss.params": {"controler_lr": 0.1}}, "loss.params.controler_lr: unknown parameter"),
        ({"loss.params": {"controller_lr": "fast"}}, "loss.params.controller_lr: Input should"),
        ({"loss.params": {"controller_every": 0}}, "loss.params.controller_every: must be a"),
        ({"loss.name": "slf", "loss.params": {"tau0": -1}}, "loss.params.tau0: must be"),
        ({"loss.params": {"controller": "nope.st"}}, "loss.params.controller: nope.st: control"),
        ({"loss.name": "slf", "loss.params": {"network": "nope.st"}}, "loss.params.network: nope"),
        ({"loss.name": "focal", "loss.params": {"gamma": 2}}, "loss.params.gamma: a single loss"),
        ({"loss.name": "race", "loss.params": {"budgt": 1}}, "loss.params.budgt: unknown"),
        ({"loss.name": "darts", "loss.params": {"search_epochs": 0}}, "loss.params.search_epochs"),
        ({"loss.name": "bohb", "loss.params": {"retrain": "x"}}, "loss.params.retrain: unknown"),
        ({"loss.candidates": ["focal", "nope"]}, "loss.candidates: unknown loss 'nope'"),
        ({"loss.name": "race", "loss.candidates": ["nope"]}, "loss.candidates: unknown loss"),
        ({"loss.name": "ce", "loss.candidates": ["nope"]}, "loss.candidates: unknown loss"),
        ({"data.dataset": "synthetic"}, "data.path: "),  # a file it would never read
        ({"data.table": {"label": "y", "categorical": ["a"]}}, "data.table: the criteo data set"),
        ({"data.synthetic": {"rows": 5}}, "data.synthetic: settings of generated data"),
    ],
)
def test_names_are_checked_before_the_data_is_read(tmp_path, override, start):
    with pytest.raises(ConfigError) as err:
        recloss.train(**(missing_criteo(tmp_path) | override), out=str(tmp_path))
    assert str(err.value).startswith(start)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("saved_for_classes", [2, 5])
def test_a_value_only_some_tasks_refuse_waits_for_the_data(tmp_path, saved_for_classes):
    # pairwise is for binary tasks: refused on a 5-class set, so not before the task is known
    with pytest.raises(DataError, match="train.txt"):
        recloss.train(**missing_criteo(tmp_path), **{"loss.params": {"objective": "pairwise"}})
    # nor is a saved controller refused for its task, which only the data set can contradict
    task = "binary" if saved_for_classes == 2 else "multiclass"
    autoloss = AutoLoss(task, LossConfig().candidates, num_classes=saved_for_classes)
    saved = autoloss.save_controller(tmp_path / "c.safetensors")
    with pytest.raises(DataError, match="train.txt"):
        recloss.train(**missing_criteo(tmp_path), **{"loss.params": {"controller": str(saved)}})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_gpu_is_found_before_the_data_is_read(tmp_path):
    with pytest.raises(ConfigError, match="^train.device: cuda was asked for"):
        recloss.train(**missing_criteo(tmp_path), **{"train.device": "cuda"}, out=str(tmp_path))


@pytest.mark.parametrize("loss", ["ce", "autoloss", "darts"])
@pytest.mark.parametrize(
    "rows, split, start",
    [
        (600, [0.9, 0.0, 0.1], "data.split: no rows in the valid split (540 train, 0 valid, 60"),
        (3, [0.8, 0.1, 0.1], "data.split: no rows in the valid and test splits (3 train, 0"),
    ],
)
def test_a_split_without_rows_is_refused_before_training(tmp_path, loss, rows, split, start):
    cfg = frame_config(tmp_path) | {"loss": {"name": loss}}
    cfg["data"]["split"] = split
    with pytest.raises(ConfigError) as err:
        recloss.train(cfg, run_dir=tmp_path / "run", data=planted_rows(rows, seed=0))
    assert str(err.value).startswith(start)
    assert not (tmp_path / "run").exists()


def interrupted_frame_run(tmp_path, epochs: int) -> tuple[Path, dict[str, np.ndarray]]:
    """A run on in-memory rows stopped after its first epoch, and its rows."""
    rows = planted_rows(600, seed=0)
    cfg = frame_config(tmp_path) | {"train": {"epochs": epochs, "progress": False}}
    with pytest.raises(KeyboardInterrupt):
        recloss.train(cfg, run_dir=tmp_path / "run", data=rows, callbacks=[InterruptAfter(1)])
    return tmp_path / "run", rows


def test_an_in_memory_run_resumes_from_its_cache_or_its_own_rows_and_no_others(tmp_path):
    run, rows = interrupted_frame_run(tmp_path, epochs=3)
    with pytest.raises(KeyboardInterrupt):  # its cache is still there: no rows needed
        recloss.resume(run, callbacks=[InterruptAfter(2)])
    shutil.rmtree(tmp_path / "cache")
    with pytest.raises(ConfigError, match=f"^{run} trained on rows in memory, whose cache is gone"):
        recloss.resume(run)
    for score in (recloss.evaluate, recloss.predict):  # their rows to score are another argument
        with pytest.raises(ConfigError, match="; pass them again as train_data=$"):
            score(run, rows)
    assert recloss.evaluate(run, rows, train_data=rows)["auc"] > 0.5
    with pytest.raises(DataError, match=f"^data: these are not the rows {run} trained on"):
        recloss.resume(run, data=planted_rows(600, seed=1))
    assert recloss.resume(run, data=rows).epochs == 3


def test_a_run_stopped_in_its_first_epoch_has_no_model_to_score_and_says_so(tmp_path):
    class StopAtOnce(Callback):
        def on_train_batch_end(self, *args, **kwargs) -> None:
            raise KeyboardInterrupt

    cfg = frame_config(tmp_path) | {"train": {"progress": False}}
    rows = planted_rows(600, seed=0)
    with pytest.raises(KeyboardInterrupt):
        recloss.train(cfg, run_dir=tmp_path / "run", data=rows, callbacks=[StopAtOnce()])
    for score in (recloss.evaluate, recloss.predict):
        with pytest.raises(CompatibilityError, match="run: no best model .*--resum"):
            score(tmp_path / "run")


def test_binary_rows_of_one_class_are_refused_before_training(tmp_path):
    rows = planted_rows(300, seed=0)
    rows["y"][:] = 1
    with pytest.raises(DataError, match="^frame: every row's label is 1; a binary task needs"):
        recloss.train(frame_config(tmp_path), run_dir=tmp_path / "run", data=rows)
    assert not (tmp_path / "run").exists()


def test_a_validation_split_of_one_class_warns_or_refuses_a_calibration(tmp_path, caplog):
    rows = planted_rows(900, seed=0)
    for name, part in (
        ("train", slice(0, 600)),
        ("valid", slice(600, 750)),
        ("test", slice(750, None)),
    ):
        split = {k: v[part] for k, v in rows.items()}
        if name == "valid":
            split["y"][:] = 0
        pa_csv.write_csv(pa.table(split), tmp_path / f"{name}.csv")
    cfg = frame_config(tmp_path)
    cfg["data"] |= {"dataset": "csv", "path": str(tmp_path)}  # its train/valid/test files
    with pytest.raises(ConfigError) as err:
        recloss.train(cfg, run_dir=tmp_path / "calibrated", train__calibration="platt")
    assert str(err.value) == (
        "train.calibration: platt is fitted on the validation split, whose 150 rows are all of "
        "class 0; give it rows of more classes, or set train.calibration: none"
    )
    assert not (tmp_path / "calibrated").exists()
    record = recloss.train(cfg, run_dir=tmp_path / "run")
    assert "the validation split's 150 rows are all of class 0: its AUC is undefined" in caplog.text
    assert math.isnan(record.best_valid["auc"]) and record.test["auc"] > 0.5


def test_a_validation_split_of_one_row_is_told_in_the_singular(tmp_path, caplog):
    cfg = {"data": {"dataset": "synthetic", "synthetic": {"rows": 5},
                    "cache_dir": str(tmp_path / "cache")},
           "loss": {"name": "ce"}, "train": {"epochs": 1, "progress": False}}  # fmt: skip
    recloss.train(cfg, run_dir=tmp_path / "run")
    assert re.search(
        r"the validation split's 1 row is of class \d: its AUC is undefined", caplog.text
    )


def test_training_into_a_folder_with_a_run_to_lose_is_refused(tmp_path):
    run, rows = interrupted_frame_run(tmp_path, epochs=2)
    cfg = frame_config(tmp_path) | {"train": {"epochs": 1, "progress": False}}
    for _ in ("with a checkpoint", "finished"):
        with pytest.raises(ConfigError, match=f"^run_dir: {run} holds a .*; resume it"):
            recloss.train(cfg, run_dir=run, data=rows)
        recorded = recloss.resume(run, data=rows)
    assert recorded.epochs == 2 and RunDir(run).read_record() == recorded


def test_a_checkpoint_that_no_longer_fits_an_edited_config_is_one_line(tmp_path):
    run, rows = interrupted_frame_run(tmp_path, epochs=2)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("name: deepfm", "name: ipnn"))
    with pytest.raises(CompatibilityError, match="checkpoint.pt: does not fit this run's model"):
        recloss.resume(run, data=rows)
    with pytest.raises(CompatibilityError, match="best.pt: does not fit this run's model"):
        recloss.evaluate(run, train_data=rows)


def test_a_run_whose_source_changed_and_whose_cache_is_gone_is_refused(tmp_path):
    source = tmp_path / "rows.csv"
    write_csv(source, planted_rows(600, seed=0))
    cfg = frame_config(tmp_path) | {"data": frame_config(tmp_path)["data"] | {
        "dataset": "csv", "path": str(source)}}  # fmt: skip
    record = recloss.train(cfg, run_dir=tmp_path / "run")
    write_csv(source, planted_rows(600, seed=1))  # the cache it trained on still holds the old
    assert recloss.evaluate(record.run_dir) == pytest.approx(record.test)
    shutil.rmtree(tmp_path / "cache")
    with pytest.raises(DataError, match=f"^{source}: changed since {record.run_dir} trained on"):
        recloss.evaluate(record.run_dir)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    source.rename(tmp_path / "moved.csv")
    with pytest.raises(DataError, match=f"^{record.run_dir}: the cache it trained on is gone, and"):
        recloss.evaluate(record.run_dir, tmp_path / "moved.csv")


def test_building_blocks_make_a_loop_of_ones_own(tmp_path):
    """prepare_dataset, build_model, AutoLoss and Trainer without the run layer or any file."""
    from recloss.config import DataConfig, TrainConfig
    from recloss.training import TrainData, make_optimizers

    data = DataConfig(
        dataset="synthetic",
        cache_dir=str(tmp_path / "cache"),
        synthetic={"rows": 3000, "fields": 5, "cardinality": 30},
    )
    dataset = recloss.prepare_dataset(data, progress=False)
    model = recloss.build_model("deepfm", dataset.schema, 8, hidden_dims=[16])
    strategy = recloss.AutoLoss("binary", ["focal", "ce"], controller_every=2)
    cfg = TrainConfig(epochs=2, batch_size=256, progress=False)
    splits = TrainData(dataset.split("train"), dataset.split("valid"), dataset.schema.task)
    trainer = recloss.Trainer(model, strategy, make_optimizers(model, cfg), splits, cfg)
    batch: Batch = next(iter(trainer.train_loader))
    loss = trainer.step(batch)
    assert np.isfinite(loss) and trainer.state.step == 1
    state = trainer.fit()
    assert state.epoch == 2 and len(state.history) == 2
    assert strategy.controller_steps > 0  # the controller learned on validation batches
    assert set(strategy.weights()) == {"focal", "ce"}
    test = dataset.split("test")
    metrics = trainer.evaluate(test)
    assert metrics["auc"] > 0.5
    assert recloss.metrics.evaluate("binary", test.y, trainer.predict(test)) == metrics
    assert not any(tmp_path.glob("**/metrics.json"))  # the trainer writes no run folder
