"""Validation AUC and logloss epoch by epoch, each method against CE on the same splits and seeds.

When does a fixed loss's lead over CE appear, and what does it cost in logloss on the way? The
quality benchmarks report the best epoch's test metrics only; this trains every epoch (no early
stopping) with the quality benchmark's other settings (batch 512) and prints, per epoch, each
method's mean validation AUC and logloss and its paired difference to CE (mean, paired t-test p).

    python benchmarks/loss_curves.py [--seeds 5] [--datasets ml100k-binary] [--methods ce focal]
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from _machine import report
from _paired import loss_of, parser, run_config
from _paired_stats import mean_std, paired

from recloss.config import config_from_dict
from recloss.runs import train

METRICS = ("auc", "logloss")


def curve(data: str, model: str, method: str, seed: int, epochs: int, batch_size: int) -> dict:
    """One run's validation metrics after every epoch."""
    torch.set_num_threads(1)  # one core per worker
    opts = {"epochs": epochs, "batch_size": batch_size, "patience": epochs}
    cfg = run_config(data, model, loss_of(method), seed, opts)
    with tempfile.TemporaryDirectory() as run_dir:
        record = train(config_from_dict(cfg), run_dir=Path(run_dir))
    return {m: [e.valid[m] for e in record.history] for m in METRICS}


def summarise(
    data: str, model: str, methods: list[str], args: argparse.Namespace, runs: dict
) -> dict:
    """Per method and epoch: the means over seeds and the paired differences to CE; printed."""
    seeds = range(args.seeds)
    out: dict = {"data": data, "model": model, "methods": {}}
    print(f"\n{data} / {model}: validation after each epoch ({args.seeds} seeds)")
    for method in methods:
        rows = []
        for epoch in range(args.epochs):
            row = {"epoch": epoch + 1}
            for m in METRICS:
                values = [runs[method, s][m][epoch] for s in seeds]
                row[m] = mean_std(values)["mean"]
                if method != "ce":
                    row[f"{m}_minus_ce"] = paired(values, [runs["ce", s][m][epoch] for s in seeds])
            rows.append(row)
        out["methods"][method] = rows
        if method == "ce":
            continue
        print(f"  {method} - ce:  epoch  AUC (p)  logloss (p)")
        for row in rows:
            auc, ll = row["auc_minus_ce"], row["logloss_minus_ce"]
            print(f"    {row['epoch']:>2}  {auc['mean']:+.4f} ({auc['p']:.3f})  "
                  f"{ll['mean']:+.4f} ({ll['p']:.3f})")  # fmt: skip
    return out


def main() -> None:
    p = parser(__doc__, ["ml100k-binary"], ["ce", "focal"])
    args = p.parse_args()
    methods = ["ce", *(m for m in args.methods if m != "ce")]
    cells = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for data in args.datasets:
            for model in args.models:
                futures = {
                    (method, seed): pool.submit(
                        curve, data, model, method, seed, args.epochs, args.batch_size
                    )  # fmt: skip
                    for seed in range(args.seeds)
                    for method in methods
                }
                runs = {key: f.result() for key, f in futures.items()}
                cells.append(summarise(data, model, methods, args, runs))
    report("loss_curves", {"settings": vars(args), "cells": cells})


if __name__ == "__main__":
    main()
