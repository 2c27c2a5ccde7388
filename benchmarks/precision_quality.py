"""Test AUC and logloss with train.precision fp32 against bf16: the same data, splits and seeds.

DeepFM on MovieLens-100K (binary: rating >= 4) by default, or any data set of the AutoLoss
benchmarks (`--datasets adult synthetic`), CE and AutoLoss, paired over seeds; a paired t-test of
bf16 minus fp32 for each metric.

    python benchmarks/precision_quality.py [--seeds 5] [--epochs 5] [--datasets ml100k-binary]
        [--report NAME]

Writes `results/precision_quality.json` (`precision_quality_<data sets>` for other data sets),
or `results/NAME.json` with --report.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile

from _machine import report
from _paired import CACHE, DATASETS
from _paired_stats import paired

from recloss import train


def run(data: str, loss: str, precision: str, seed: int, epochs: int, out: str) -> dict:
    cfg = {
        "data": {**DATASETS[data], "cache_dir": CACHE},
        "loss": {"name": loss},
        "train": {"epochs": epochs, "seed": seed, "precision": precision, "progress": False},
        "out": out,
    }
    return train(cfg).test


def compare(data: str, loss: str, seeds: int, epochs: int, out: str) -> dict:
    """Per metric: both precisions' values by seed, the mean difference, the paired p."""
    tests = {p: [run(data, loss, p, s, epochs, out) for s in range(1, seeds + 1)]
             for p in ("fp32", "bf16")}  # fmt: skip
    cell = {}
    for metric in ("auc", "logloss"):
        a = [t[metric] for t in tests["fp32"]]
        b = [t[metric] for t in tests["bf16"]]
        diff = paired(b, a)
        cell[metric] = {"fp32": a, "bf16": b, "mean_diff": diff["mean"], "paired_p": diff["p"]}
        print(
            f"{data} {loss:>8} {metric:>7}: fp32 {statistics.mean(a):.4f}  bf16 "
            f"{statistics.mean(b):.4f}  diff {diff['mean']:+.4f}  paired p {diff['p']:.3f}"
        )
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=["ml100k-binary"], choices=list(DATASETS))
    parser.add_argument("--report", help="the results file's name (default: as above)")
    args = parser.parse_args()
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    figures = {}
    with tempfile.TemporaryDirectory() as out:
        for data in args.datasets:
            for loss in ("ce", "autoloss"):
                figures[f"{data}/{loss}"] = compare(data, loss, args.seeds, args.epochs, out)
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    default = args.datasets == parser.get_default("datasets")
    name = "precision_quality" + ("" if default else "_" + "_".join(args.datasets))
    report(args.report or name, {"seeds": args.seeds, "epochs": args.epochs, **figures})


if __name__ == "__main__":
    main()
