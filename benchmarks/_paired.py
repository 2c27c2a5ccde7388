"""Shared machinery of the AutoLoss quality benchmarks: runs in worker processes, paired tests.

A run is `(data, model, method, seed)`, optionally with label noise on its training split. Every
method of a cell trains on the same splits with the same seeds, so methods are compared by paired
per-seed differences and a paired t-test. Finished runs are appended to a JSON-lines file, so an
interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from scipy.stats import ttest_rel

import recloss.runs.single as single
from recloss.config import config_from_dict
from recloss.data import prepare_dataset
from recloss.data.noise import NoisyTraining
from recloss.runs import train

SYNTHETIC = {"rows": 100_000, "fields": 20, "cardinality": 500, "seed": 0}
DATASETS: dict[str, dict[str, Any]] = {
    "ml100k-5class": {"dataset": "movielens-100k", "task": "multiclass"},
    "ml100k-binary": {"dataset": "movielens-100k", "task": "binary"},
    "synthetic": {"dataset": "synthetic", "synthetic": SYNTHETIC},
    "synthetic-imbalanced": {
        "dataset": "synthetic",
        "synthetic": {**SYNTHETIC, "positive_rate": 0.02},
    },
    "adult": {"dataset": "adult", "path": "/work/data/adult"},
    "obd": {"dataset": "obd", "path": "/work/data/obd"},
}
FIXED = ["focal", "kl", "hinge", "ce"]
CACHE = str(Path(tempfile.gettempdir()) / "recloss-bench-cache")


def run_config(data: str, model: str, loss: dict, seed: int, train_opts: dict) -> dict:
    """The run's configuration dictionary."""
    return {
        "data": {**DATASETS[data], "cache_dir": CACHE},
        "model": {"name": model},
        "loss": loss,
        "train": {"patience": 2, "seed": seed, "progress": False, **train_opts},
    }


def run_one(cfg: dict, run_dir: Path, noise: dict | None) -> dict:
    """One training run in a worker process: test metrics, learned weights, controller curve."""
    torch.set_num_threads(1)  # one core per worker: faster than sharing two on small batches
    prepare = single.prepare_dataset
    if noise is not None:  # this run only: the data set it prepares has noisy training labels
        single.prepare_dataset = lambda *a, **k: NoisyTraining(prepare(*a, **k), **noise)
    started = time.perf_counter()
    try:
        record = train(config_from_dict(cfg), run_dir=run_dir)
    finally:
        single.prepare_dataset = prepare
    row = {"test": record.test, "best_epoch": record.best_epoch, "epochs": record.epochs,
           "seconds": time.perf_counter() - started, "weights": record.weights}  # fmt: skip
    controller = Path(run_dir) / "controller.safetensors"
    if controller.is_file():
        row["curve"] = controller_curve(controller)
    return row


def controller_curve(path: Path, points: int = 21) -> dict[str, Any]:
    """A binary controller's mean weights over `q` in [0, 1] for y = 0 and y = 1."""
    from recloss.search.controller import load_controller

    controller = load_controller(path)
    if controller.spec.task != "binary" or controller.spec.use_logit:
        return {}
    q = torch.linspace(0.0, 1.0, points)
    out: dict[str, Any] = {"q": q.tolist()}
    with torch.no_grad():
        for y in (0, 1):
            features = torch.stack([torch.full_like(q, float(y)), q], dim=1)
            log_alpha, weight = controller.outputs(features)
            out[f"alpha_y{y}"] = log_alpha.exp().tolist()
            if weight is not None:
                out[f"weight_y{y}"] = weight.tolist()
    return out


def fingerprint(settings: Any) -> str:
    """Short hash of what a run's result depends on."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def load_done(path: Path) -> dict[str, dict]:
    """Finished runs by key."""
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row["key"]: row for row in rows}


def run_all(jobs: list[dict], runs_file: Path, workers: int) -> dict[str, dict]:
    """Run every job (`key`, `cfg`, `noise`) not yet in `runs_file`; all rows by key."""
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    done = load_done(runs_file)
    todo = [j for j in jobs if j["key"] not in done]
    for data in sorted({json.dumps(j["cfg"]["data"], sort_keys=True) for j in todo}):
        prepare_dataset(config_from_dict({"data": json.loads(data)}).data)  # before the workers
    print(f"{len(done)} runs done, {len(todo)} to go")
    with tempfile.TemporaryDirectory() as out, ProcessPoolExecutor(workers) as pool:
        futures = {
            pool.submit(run_one, j["cfg"], Path(out) / f"run{i}", j.get("noise")): j
            for i, j in enumerate(todo)
        }
        for future, job in futures.items():
            row = {"key": job["key"], **future.result()}
            done[row["key"]] = row
            with runs_file.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{row['key']:<60} auc {row['test']['auc']:.4f} "
                  f"logloss {row['test']['logloss']:.4f} ({row['seconds']:.0f} s)")  # fmt: skip
    return done


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (nan when empty)."""
    if not values:
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}  # fmt: skip


def paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean and std of the per-seed differences `a - b`, and the paired t-test's p-value."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    p = float(ttest_rel(a, b).pvalue) if len(diffs) > 1 and len(set(diffs)) > 1 else float("nan")
    return {**mean_std(diffs), "p": p}


def method_stats(rows: Iterable[dict | None]) -> dict[str, Any]:
    """Per metric: samples (in seed order), mean and std; runs found."""
    tests = [r["test"] for r in rows if r is not None]
    out: dict[str, Any] = {"runs": len(tests)}
    for metric in ("auc", "logloss"):
        samples = [t[metric] for t in tests]
        out[metric] = {**mean_std(samples), "samples": samples}
    return out


def compare(stats: dict[str, dict], method: str, others: Iterable[str]) -> dict[str, dict]:
    """Paired differences of `method` against each of `others`, AUC and logloss."""
    out = {}
    for other in others:
        a, b = stats[method], stats[other]
        if a["runs"] != b["runs"] or a["runs"] < 2:
            continue
        out[other] = {m: paired(a[m]["samples"], b[m]["samples"]) for m in ("auc", "logloss")}
    return out


def fmt_diff(d: dict[str, float]) -> str:
    """`+0.0012 ± 0.0008 (p 0.031)`."""
    return f"{d['mean']:+.4f} ± {d['std']:.4f} (p {d['p']:.3f})"
