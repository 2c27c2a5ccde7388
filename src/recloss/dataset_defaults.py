"""Defaults per named data set: BARS's best published DeepFM configuration, where one exists.

BARS (Zhu et al., "BARS: Towards Open Benchmarking for Recommender Systems", SIGIR 2022) tuned
DeepFM with FuxiCTR on fixed splits of each data set; its best configurations are the defaults
here, under what a config file or a flag sets:
- criteo: Criteo_x4_001 (the Kaggle `train.txt` split 8:1:1 at random, min count 10, as
  recloss's `criteo` reader does): embedding 16, batch 10,000, DNN 1000x5, dropout 0.2,
  embedding regulariser 1e-5.
- avazu: Avazu_x4_001 (Kaggle `train.csv`, 8:1:1, min count 2): embedding 16, batch 10,000,
  DNN 2000x4, dropout 0, no regulariser.
- frappe: Frappe_x1 (the NFM paper's libFM files, 7:2:1): embedding 10, batch 4,096,
  DNN 400x3, dropout 0.2, batch norm, embedding regulariser 0.05.
All three train with Adam at 1e-3, reduce the rate x0.1 on a validation plateau, and stop early
after 2 epochs without a better validation AUC, within 100 epochs. The DNN's widths, dropout and
batch norm were tuned for DeepFM and apply only to it; the rest applies to every model.
"""

from __future__ import annotations

from typing import Any

BARS_TRAINING = {
    "epochs": 100,
    "patience": 2,
    "lr": 1e-3,
    "lr_schedule": {"name": "plateau", "factor": 0.1, "patience": 1},
}

DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "criteo": {
        "model": {"embed_dim": 16},
        "train": {**BARS_TRAINING, "batch_size": 10_000, "embedding_regularizer": 1e-5},
        "deepfm": {"hidden_dims": [1000] * 5, "dropout": 0.2},
    },
    "avazu": {
        "model": {"embed_dim": 16},
        "train": {**BARS_TRAINING, "batch_size": 10_000, "embedding_regularizer": 0.0},
        "deepfm": {"hidden_dims": [2000] * 4, "dropout": 0.0},
    },
    "frappe": {
        "model": {"embed_dim": 10},
        "train": {**BARS_TRAINING, "batch_size": 4096, "embedding_regularizer": 0.05},
        "deepfm": {"hidden_dims": [400] * 3, "dropout": 0.2, "batch_norm": True},
    },
}


def dataset_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """The defaults of the named data set of `raw` (a run configuration's mapping), to merge
    it over; empty for data sets without a published configuration."""
    data = raw.get("data")
    dataset = data.get("dataset") if isinstance(data, dict) else None
    defaults = DATASET_DEFAULTS.get(dataset) if isinstance(dataset, str) else None
    if defaults is None:
        return {}
    model = raw.get("model")
    name = model.get("name", "deepfm") if isinstance(model, dict) else "deepfm"
    params = {"params": defaults["deepfm"]} if name == "deepfm" else {}
    return {"model": {**defaults["model"], **params}, "train": defaults["train"]}
