"""Test AUC and logloss of AutoLoss against each fixed candidate loss (focal, KL, hinge, CE):
DeepFM and IPNN on MovieLens-100K (5-class ratings and binary rating >= 4) and on synthetic
Criteo-shaped data (also `synthetic-imbalanced`, positive rate 0.02), several seeds each; mean,
std, the Welch t-test of AutoLoss against the best fixed loss of each cell, and paired per-seed
differences with paired t-tests (same splits and seeds) of AutoLoss against every fixed candidate,
AUC and logloss, with the goals checked: AutoLoss mean AUC >= the best fixed candidate's - 0.001,
mean logloss <= CE's + 0.002. Runs go to parallel single-threaded worker processes; finished runs
are kept in a JSON-lines file, so an interrupted benchmark continues where it stopped.

    python benchmarks/autoloss_quality.py [--seeds 5] [--jobs 2] [--epochs 10]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from _machine import RESULTS, report
from _paired import compare, fmt_diff
from scipy.stats import ttest_ind

from recloss.config import config_from_dict
from recloss.data import prepare_dataset
from recloss.runs import train

DATASETS: dict[str, dict[str, Any]] = {
    "ml100k-5class": {"dataset": "movielens-100k", "task": "multiclass"},
    "ml100k-binary": {"dataset": "movielens-100k", "task": "binary"},
    "synthetic": {
        "dataset": "synthetic",
        "synthetic": {"rows": 100_000, "fields": 20, "cardinality": 500, "seed": 0},
    },
    "synthetic-imbalanced": {
        "dataset": "synthetic",
        "synthetic": {
            "rows": 100_000,
            "fields": 20,
            "cardinality": 500,
            "seed": 0,
            "positive_rate": 0.02,
        },
    },
    "adult": {"dataset": "adult", "path": "/work/data/adult"},  # raw copies on this machine
    "obd": {"dataset": "obd", "path": "/work/data/obd"},  # the Open Bandit sample (obp wheel)
}
DEFAULT_DATASETS = ["ml100k-5class", "ml100k-binary", "synthetic"]
FIXED = ["focal", "kl", "hinge", "ce"]
METHODS = ["autoloss", *FIXED]


def run_config(args: argparse.Namespace, data: str, model: str, method: str, seed: int) -> dict:
    loss: dict[str, Any] = {"name": method}
    if method == "autoloss":
        loss["params"] = json.loads(args.autoloss_params)
        if args.candidates:
            loss["candidates"] = args.candidates
    return {
        "data": {**DATASETS[data], "cache_dir": args.cache},
        "model": {"name": model},
        "loss": loss,
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "patience": 2,
                  "seed": seed, "progress": False},
    }  # fmt: skip


def run_one(cfg_dict: dict, run_dir: Path) -> dict:
    """One training run in a worker process: its test metrics and learned weights."""
    torch.set_num_threads(1)  # one core per worker: faster than sharing two on small batches
    started = time.perf_counter()
    record = train(config_from_dict(cfg_dict), run_dir=run_dir)
    weights = {f"weight_{c}": w for c, w in record.weights.items()}  # the stored runs' keys
    return {"test": record.test, "best_epoch": record.best_epoch, "epochs": record.epochs,
            "seconds": time.perf_counter() - started, "strategy": weights}  # fmt: skip


def fingerprint(args: argparse.Namespace, method: str) -> str:
    """Short hash of the settings a run's result depends on, so stale results are not reused.

    Fixed losses do not depend on the AutoLoss settings, so their runs are shared between them.
    """
    settings: list[Any] = [args.epochs, args.batch_size, {}]
    if method == "autoloss":  # runs of the default before it was `auto` had no variant
        settings[2] = {"variant": "auto", **json.loads(args.autoloss_params)}
        if args.candidates:
            settings.append(args.candidates)
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def key(args: argparse.Namespace, data: str, model: str, method: str, seed: int) -> str:
    return f"{fingerprint(args, method)}/{data}/{model}/{method}/{seed}"


def load_done(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row["key"]: row for row in rows}


def run_all(args: argparse.Namespace, runs_file: Path) -> dict[str, dict]:
    done = load_done(runs_file)
    todo = [
        (d, m, method, seed)
        for d in args.datasets
        for m in args.models
        for seed in range(args.seeds)
        for method in METHODS
        if key(args, d, m, method, seed) not in done
    ]
    for d in args.datasets:  # prepare each data set once, before the workers read its cache
        prepare_dataset(config_from_dict(run_config(args, d, "deepfm", "ce", 0)).data)
    print(f"{len(done)} runs done, {len(todo)} to go")
    with tempfile.TemporaryDirectory() as out, ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(
                run_one, run_config(args, *cell), Path(out) / "-".join(map(str, cell))
            ): cell
            for cell in todo
        }
        for future, cell in futures.items():
            row = {"key": key(args, *cell), **future.result()}
            done[row["key"]] = row
            with runs_file.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{row['key']:<40} auc {row['test']['auc']:.4f} "
                  f"logloss {row['test']['logloss']:.4f} ({row['seconds']:.0f} s)")  # fmt: skip
    return done


def summarise(args: argparse.Namespace, done: dict[str, dict]) -> list[dict]:
    """Per cell: mean/std per method, the best fixed loss, Welch p-values of AutoLoss against it."""
    cells = []
    for d in args.datasets:
        for m in args.models:
            stats = {}
            for method in METHODS:
                runs = [done.get(key(args, d, m, method, s)) for s in range(args.seeds)]
                tests = [r["test"] for r in runs if r is not None]
                stats[method] = {metric: _mean_std([t[metric] for t in tests])
                                 for metric in ("auc", "logloss")}  # fmt: skip
                stats[method]["runs"] = len(tests)
                stats[method]["samples"] = {metric: [t[metric] for t in tests]
                                            for metric in ("auc", "logloss")}  # fmt: skip
            best = max(FIXED, key=lambda f: stats[f]["auc"]["mean"])
            cell = {"data": d, "model": m, "methods": stats, "best_fixed": best}
            for metric in ("auc", "logloss"):
                a, b = stats["autoloss"]["samples"][metric], stats[best]["samples"][metric]
                cell[f"welch_p_{metric}"] = _welch(a, b)
            cell["paired"] = compare(_by_metric(stats), "autoloss", FIXED)
            ce_logloss = stats["ce"]["logloss"]["mean"]
            cell["goals"] = {
                "auc_within_0.001_of_best": stats["autoloss"]["auc"]["mean"]
                >= stats[best]["auc"]["mean"] - 0.001,
                "logloss_within_0.002_of_ce": stats["autoloss"]["logloss"]["mean"]
                <= ce_logloss + 0.002,
            }
            runs = [done.get(key(args, d, m, "autoloss", s)) for s in range(args.seeds)]
            weights = [r["strategy"] for r in runs if r is not None]
            cell["autoloss_weights"] = {
                w: statistics.mean(x[w] for x in weights) for w in (weights[0] if weights else {})
            }
            cells.append(cell)
    return cells


def _by_metric(stats: dict[str, dict]) -> dict[str, dict]:
    """`{method: {runs, auc: {samples}, logloss: {samples}}}`, the layout `compare` reads."""
    return {m: {"runs": s["runs"], **{k: {"samples": v} for k, v in s["samples"].items()}}
            for m, s in stats.items()}  # fmt: skip


def _mean_std(values: list[float]) -> dict[str, float]:
    if not values:
        return {"mean": float("nan"), "std": float("nan")}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.mean(values), "std": std}


def _welch(a: list[float], b: list[float]) -> float:
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def print_table(cells: list[dict]) -> None:
    print(f"\n{'data':<14} {'model':<7} {'method':<9} {'test AUC':>17} {'test logloss':>17}")
    for cell in cells:
        for method, s in cell["methods"].items():
            mark = " (best fixed)" if method == cell["best_fixed"] else ""
            print(f"{cell['data']:<14} {cell['model']:<7} {method:<9} "
                  f"{s['auc']['mean']:.4f} ± {s['auc']['std']:.4f}  "
                  f"{s['logloss']['mean']:.4f} ± {s['logloss']['std']:.4f}{mark}")  # fmt: skip
        print(
            f"{'':<14} {'':<7} AutoLoss vs {cell['best_fixed']}: Welch p = "
            f"{cell['welch_p_auc']:.3f} (AUC), {cell['welch_p_logloss']:.3f} (logloss); "
            f"learned weights "
            + ", ".join(f"{k[7:]} {v:.2f}" for k, v in cell["autoloss_weights"].items())
        )
        for fixed, diff in cell["paired"].items():
            print(f"{'':<22} AutoLoss - {fixed:<6} AUC {fmt_diff(diff['auc'])}, "
                  f"logloss {fmt_diff(diff['logloss'])}")  # fmt: skip
        print(f"{'':<22} goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}"
                                          for k, v in cell["goals"].items()))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS, choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=["deepfm", "ipnn"])
    parser.add_argument(
        "--autoloss-params", default="{}", help="JSON, e.g. '{\"controller_lr\": 0.003}'"
    )
    parser.add_argument(
        "--candidates", nargs="+", help="AutoLoss candidates (default: focal kl hinge ce)"
    )
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "recloss-bench-cache"))
    parser.add_argument("--runs-file", default=str(RESULTS / "autoloss_quality_runs.jsonl"))
    args = parser.parse_args()
    runs_file = Path(args.runs_file)
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    cells = summarise(args, run_all(args, runs_file))
    print_table(cells)
    settings = {k: v for k, v in vars(args).items() if k not in ("cache", "runs_file")}
    name = "autoloss_quality" + "".join(f"-{c}" for c in args.candidates or [])
    report(name, {"settings": settings, "cells": cells})


if __name__ == "__main__":
    main()
