"""The trainer end to end on small synthetic data: metrics, checkpoints, resume, early stopping."""

from __future__ import annotations

import json

import pytest
import torch

from recloss import checkpoint
from recloss.config import config_from_dict
from recloss.errors import ConfigError
from recloss.train import BEST, CHECKPOINT, make_optimizers, resume, train


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
    result = train(small_config(tmp_path))
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.yaml", "metrics.json", BEST, CHECKPOINT} <= files
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["test"]["auc"] > 0.6  # planted signal is learnable
    assert 0 < metrics["test"]["logloss"] < 0.7
    assert len(metrics["history"]) == 3
    assert metrics["best_valid"] == metrics["history"][metrics["best_epoch"]]["valid"]
    assert metrics["samples_per_second"] > 0 and metrics["train_seconds"] > 0


def test_checkpoints_load_weights_only(tmp_path):
    result = train(small_config(tmp_path, **{"train.epochs": 1}))
    state = checkpoint.load(result.run_dir / CHECKPOINT)
    assert state["state"]["epoch"] == 1 and state["state"]["step"] > 0
    assert not list(result.run_dir.glob("*.tmp"))


def test_interrupted_run_resumes_to_same_metrics(tmp_path):
    full = train(small_config(tmp_path), run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(small_config(tmp_path), run_dir=tmp_path / "cut", stop_after_epochs=1)
    assert checkpoint.load(tmp_path / "cut" / CHECKPOINT)["state"]["epoch"] == 1
    resumed = resume(tmp_path / "cut")
    assert resumed.metrics["test"] == full.metrics["test"]
    assert [h["valid"] for h in resumed.metrics["history"]] == [
        h["valid"] for h in full.metrics["history"]
    ]


def test_early_stopping_restores_best_epoch(tmp_path):
    # A learning rate this large overfits quickly: validation AUC stops improving.
    cfg = small_config(tmp_path, **{"train.epochs": 30, "train.patience": 1, "train.lr": 0.05})
    result = train(cfg)
    m = result.metrics
    assert m["epochs"] < 30
    assert m["epochs"] == m["best_epoch"] + 2  # one non-improving epoch, then stop
    aucs = [h["valid"]["auc"] for h in m["history"]]
    assert m["best_valid"]["auc"] == max(aucs)


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
    result = train(cfg)
    assert result.metrics["strategy"] == pytest.approx({"weight_ce": 0.7, "weight_focal": 0.3})


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
        train(small_config(tmp_path, **{"train.device": "cuda"}))
