"""The flip channel where its assumption fails: a split in time, clean labels.

`train.label_noise: channel` takes the validation split as clean and drawn like the training
rows, so any shift between them reads as label flips. MovieLens-100K binary, re-split by time:
the same prepared rows (the same encoding), the first 80% by timestamp train, the next 10%
validate, the last 10% test; no label is flipped. Per seed, CE and AutoLoss with and without the
channel (10 epochs, batch 512, patience 2, as the paired benchmarks), paired differences, and
what the estimator reads into the shift.

    python benchmarks/label_noise_drift.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import report
from _paired import prepared, run_config, wrapped_datasets
from _paired_stats import paired

from recloss.config import config_from_dict
from recloss.data import SplitArrays
from recloss.data.cache import recloss_home
from recloss.data.splits import SPLITS, assign_splits
from recloss.runs import train
from recloss.training.label_noise import estimate_flip_rates

METHODS = {  # name: (loss, train.label_noise)
    "ce": ("ce", "none"),
    "ce-channel": ("ce", "channel"),
    "autoloss": ("autoloss", "none"),
    "autoloss-channel": ("autoloss", "channel"),
}


class SplitInTime:
    """A prepared data set whose rows are re-split by time: earliest train, latest test."""

    def __init__(self, dataset: Any, timestamps: np.ndarray) -> None:
        meta = dataset.meta
        total = int(meta["total_rows"])
        if len(timestamps) != total:
            raise SystemExit(f"{total} prepared rows but {len(timestamps)} timestamps")
        assigned = assign_splits(total, meta["settings"]["split"], meta["settings"]["split_seed"])
        x_cat = np.empty((total, len(dataset.schema.cat_fields)), np.int32)
        y = np.empty(total, np.int64)
        for index, name in enumerate(SPLITS):  # each split's rows are in file order
            part = dataset.split(name)
            x_cat[assigned == index], y[assigned == index] = part.x_cat, part.y
        order = np.argsort(timestamps, kind="stable")
        ends = np.cumsum([int(f * total + 0.5) for f in meta["settings"]["split"]])
        ranges = zip((0, *ends[:2]), (*ends[:2], total), strict=True)
        self._splits = {
            name: SplitArrays(x_cat[order[a:b]], None, y[order[a:b]])
            for name, (a, b) in zip(SPLITS, ranges, strict=True)
        }
        self._dataset = dataset

    def split(self, name: str) -> SplitArrays:
        return self._splits[name]

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._dataset, attr)


def timestamps() -> np.ndarray:
    """MovieLens-100K's timestamps in file order, from the fetched copy."""
    inter = recloss_home() / "datasets" / "ml-100k" / "ml-100k.inter"
    if not inter.is_file():
        raise SystemExit(f"{inter} not found: run `recloss data prepare movielens-100k` first")
    return np.loadtxt(inter, skiprows=1, usecols=3, dtype=np.int64)


def run(method: str, seed: int, stamps: np.ndarray) -> dict[str, float]:
    loss, label_noise = METHODS[method]
    options = {"epochs": 10, "batch_size": 512, "label_noise": label_noise}
    cfg = run_config("ml100k-binary", "deepfm", {"name": loss}, seed, options)
    in_time = wrapped_datasets(lambda dataset: SplitInTime(dataset, stamps))
    with in_time, tempfile.TemporaryDirectory() as run_dir:
        record = train(config_from_dict(cfg), run_dir=Path(run_dir))
    return record.test


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    stamps = timestamps()
    base = prepared("ml100k-binary")
    data = SplitInTime(base, stamps)
    rates = estimate_flip_rates(data.split("train"), data.split("valid"), base.schema.cardinalities)
    rows = torch.from_numpy(np.array(data.split("train").x_cat))
    estimate = {**rates.summary(base.schema.cat_fields), "mean_row_rate": float(rates(rows).mean())}
    means = {s: float(np.mean(data.split(s).y)) for s in SPLITS}
    print(f"positive rate by split {means}; the estimator reads: {estimate}")
    results = {m: [run(m, seed, stamps) for seed in range(args.seeds)] for m in METHODS}
    figures: dict[str, Any] = {"positive_rate": means, "estimate": estimate, "methods": {}}
    for method, tests in results.items():
        base_method = method.removesuffix("-channel")
        row = {k: float(np.mean([t[k] for t in tests])) for k in ("auc", "logloss")}
        if base_method != method:
            for k in ("auc", "logloss"):
                diff = paired([t[k] for t in tests], [t[k] for t in results[base_method]])
                row[f"{k}_minus_{base_method}"] = diff
        figures["methods"][method] = row
        shown = "  ".join(
            f"{k} {v['mean']:+.4f} (p {v['p']:.3f})" if isinstance(v, dict) else f"{k} {v:.4f}"
            for k, v in row.items()
        )
        print(f"{method:18} {shown}")
    report("label_noise_drift", figures)


if __name__ == "__main__":
    main()
