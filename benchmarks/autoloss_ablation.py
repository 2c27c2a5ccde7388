"""Ablation of the AutoLoss remedies: each variant against the fixed candidates, paired seeds.

Variants: the paper's form (`variant: paper`); `normalised` (step-size normalisation to CE, at
least 8 controller steps per epoch, 8 warm-up controller steps, a CE-centred prior); the paper's
form with only the CE-centred prior (`prior`); `normalised` with an example-weight output and
controller learning rate 1e-2; step-size normalisation alone at 1e-2 (`norm-lr1e-2`). Runs use
the settings and the runs file of `autoloss_quality.py` (10 epochs, batch 512, patience 2), so
fixed losses and the paper's form already measured there are reused. Every method
trains on the same splits with the same seeds; per cell the table gives each variant's mean test
AUC and logloss and its paired per-seed difference to CE and to the best fixed loss.

    python benchmarks/autoloss_ablation.py [--seeds 5] [--jobs 2] [--datasets ml100k-binary]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from _machine import RESULTS, report
from _paired import DATASETS, FIXED, compare, fingerprint, fmt_diff, method_stats, run_all
from _paired import run_config as base_config

LR = {"controller_lr": 1e-2}
VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {"variant": "paper"},
    "normalised": {"variant": "normalised"},
    "prior": {"variant": "paper", "prior": "ce"},
    "normalised-ew-lr1e-2": {"variant": "normalised", "example_weight": True, **LR},
    "norm-lr1e-2": {"variant": "paper", "normalise": "ce", **LR},
}


def loss_of(method: str) -> dict[str, Any]:
    """The `loss` section of a method (a fixed candidate or an AutoLoss variant)."""
    if method in VARIANTS:
        return {"name": "autoloss", "params": VARIANTS[method]}
    return {"name": method}


def key_of(args: argparse.Namespace, data: str, model: str, method: str, seed: int) -> str:
    """The run's key in autoloss_quality.py's scheme: its runs are reused."""
    name = "autoloss" if method in VARIANTS else method
    params = VARIANTS.get(method, {})
    return f"{fingerprint([args.epochs, args.batch_size, params])}/{data}/{model}/{name}/{seed}"


def jobs(args: argparse.Namespace, methods: list[str], noise: dict | None = None) -> list[dict]:
    """Every run of the benchmark, seed-major so that partial results stay paired."""
    opts = {"epochs": args.epochs, "batch_size": args.batch_size}
    out = []
    for seed in range(args.seeds):
        for data in args.datasets:
            for model in args.models:
                for method in methods:
                    key = key_of(args, data, model, method, seed)
                    run_noise = None
                    if noise is not None:
                        key = f"{fingerprint(noise)}-{key}"
                        run_noise = {**noise, "seed": seed}
                    out.append({
                        "key": key,
                        "cfg": base_config(data, model, loss_of(method), seed, opts),
                        "noise": run_noise,
                        "cell": (data, model), "method": method, "seed": seed,
                    })  # fmt: skip
    return out


def summarise(job_list: list[dict], done: dict[str, dict], methods: list[str]) -> list[dict]:
    """Per cell: every method's figures and each AutoLoss variant against CE and the best fixed."""
    cells: dict[tuple, dict[str, list]] = {}
    for j in job_list:
        cells.setdefault(j["cell"], {}).setdefault(j["method"], []).append(done.get(j["key"]))
    out = []
    for (data, model), rows in cells.items():
        stats = {m: method_stats(rows[m]) for m in methods}
        fixed = [m for m in FIXED if m in stats and stats[m]["runs"]]
        best = max(fixed, key=lambda m: stats[m]["auc"]["mean"]) if fixed else None
        refs = {"ce", best} & set(fixed)
        versus = {m: compare(stats, m, refs) for m in methods if m not in FIXED}
        weights = {m: _mean_weights(rows[m]) for m in methods if m not in FIXED}
        out.append({"data": data, "model": model, "best_fixed": best, "methods": stats,
                    "versus": versus, "weights": weights})  # fmt: skip
    return out


def _mean_weights(rows: list[dict | None]) -> dict[str, float]:
    found = [_weights(r) for r in rows if r is not None and _weights(r)]
    return {k: sum(w[k] for w in found) / len(found) for k in found[0]} if found else {}


def _weights(row: dict) -> dict[str, float]:
    """A run's learned weights (autoloss_quality.py stores them as `strategy.weight_<loss>`)."""
    stored = {k.removeprefix("weight_"): v for k, v in row.get("strategy", {}).items()}
    return row.get("weights") or stored


def print_table(cells: list[dict]) -> None:
    for cell in cells:
        best = cell["best_fixed"]
        print(f"\n{cell['data']} {cell['model']} (best fixed by AUC: {best})")
        print(f"{'method':<22} {'runs':>4} {'AUC':>8} {'logloss':>8}  {'AUC - CE':>26}  "
              f"{'AUC - best':>26}  {'logloss - CE':>26}  weights")  # fmt: skip
        for method, s in cell["methods"].items():
            vs = cell["versus"].get(method, {})
            ce, top = vs.get("ce", {}), vs.get(best, {})
            w = ", ".join(f"{k} {v:.2f}" for k, v in cell["weights"].get(method, {}).items())
            print(f"{method:<22} {s['runs']:>4} {s['auc']['mean']:.4f} {s['logloss']['mean']:.4f}"
                  f"  {fmt_diff(ce['auc']) if ce else '':>26}"
                  f"  {fmt_diff(top['auc']) if top else '':>26}"
                  f"  {fmt_diff(ce['logloss']) if ce else '':>26}  {w}")  # fmt: skip


def print_markdown(cells: list[dict]) -> None:
    """The README's table: per cell and method, means and paired differences to CE and the best."""
    print("\n| data | model | method | runs | AUC | logloss | AUC - CE (p) | AUC - best fixed (p) "
          "| logloss - CE (p) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for cell in cells:
        best = cell["best_fixed"]
        for method, s in cell["methods"].items():
            vs = cell["versus"].get(method, {})
            ce, top = vs.get("ce"), vs.get(best)
            name = f"{method} (best fixed)" if method == best else method
            print(f"| {cell['data']} | {cell['model']} | {name} | {s['runs']} "
                  f"| {s['auc']['mean']:.4f} | {s['logloss']['mean']:.4f} "
                  f"| {_md(ce, 'auc')} | {_md(top, 'auc')} | {_md(ce, 'logloss')} |")  # fmt: skip


def _md(diff: dict | None, metric: str) -> str:
    if not diff:
        return ""
    d = diff[metric]
    return f"{d['mean']:+.4f} ({d['p']:.3f})"


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
    return p


def main() -> None:
    methods = [*FIXED, *VARIANTS]
    args = parser(__doc__, ["ml100k-binary", "synthetic"], methods).parse_args()
    runs_file = Path(RESULTS / "autoloss_quality_runs.jsonl")
    job_list = jobs(args, args.methods)
    cells = summarise(job_list, run_all(job_list, runs_file, args.jobs), args.methods)
    print_table(cells)
    print_markdown(cells)
    report("autoloss_ablation", {"settings": vars(args), "cells": cells})


if __name__ == "__main__":
    main()
