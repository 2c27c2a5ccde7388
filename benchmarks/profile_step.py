"""Where a training step's time goes: torch.profiler over recloss's trainer, DeepFM as in
train_throughput.py (39 fields, embedding 16, DNN 400-400-400, batch 4096).

    python benchmarks/profile_step.py [--cardinality 100000] [--steps 10] [--precision bf16]
        [--embedding-regularizer 1e-5]

Prints the operators by self CPU time and the share of the step's phases (forward, backward,
optimiser, waiting for the next batch), and writes them to benchmarks/results/profile_step.json
(`profile_step_l2.json` with the L2).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict

import torch
from _machine import report
from torch.profiler import ProfilerActivity, profile, record_function
from train_throughput import BATCH, load, make_config

from recloss.config import config_from_dict
from recloss.data import prepare_dataset
from recloss.runs.online import build_trainer
from recloss.training import Trainer
from recloss.training.optim import catch_up_lookups


def phased_step(trainer: Trainer, batch) -> None:
    """`Trainer.step`'s work, phase by phase, under record_function labels (fixed-loss CE)."""
    model, opts = trainer.model, trainer.optimizers
    with record_function("phase: zero_grad + train()"):
        model.train()
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        catch_up_lookups(opts, model, batch)
    with record_function("phase: forward + loss"):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=trainer.bf16):
            logits = model(batch)
        loss = trainer.strategy.loss(logits.float(), batch.y, trainer.state.step)
    with record_function("phase: backward"):
        loss.backward()
    with record_function("phase: optimiser"):
        for opt in opts:
            opt.step()
    trainer.state.step += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cardinality", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--embedding-regularizer", type=float, default=0.0,
                        help="the lazy whole-table L2 (Criteo's default: 1e-5)")  # fmt: skip
    args = parser.parse_args()
    print(f"load before: {load()}")
    with tempfile.TemporaryDirectory() as cache:
        rows = (args.steps + 3) * BATCH * 10 // 8 + BATCH
        cfg = config_from_dict(make_config(cache, args.cardinality, rows))
        cfg.train.precision = args.precision
        cfg.train.embedding_regularizer = args.embedding_regularizer
        trainer = build_trainer(cfg, prepare_dataset(cfg.data, progress=False), run_dir=None)
        batches = iter(trainer.train_loader)
        for _ in range(3):  # warm-up
            phased_step(trainer, next(batches))
        started = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                with record_function("phase: next batch"):
                    batch = next(batches)
                phased_step(trainer, batch)
        seconds = time.perf_counter() - started
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=25))
    phases = defaultdict(float)
    for e in events:
        if e.key.startswith("phase: "):
            phases[e.key[7:]] += e.cpu_time_total / 1e6
    total = sum(phases.values())
    for name, s in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"{name:>24}: {s / args.steps * 1e3:7.1f} ms/step  {s / total:5.1%}")
    ops = sorted(events, key=lambda e: -e.self_cpu_time_total)[:25]
    print(f"{args.steps * BATCH / seconds:,.0f} samples/s under the profiler")
    print(f"load after: {load()}")
    report(
        "profile_step_l2" if args.embedding_regularizer else "profile_step",
        {
            "values_per_field": args.cardinality,
            "precision": args.precision,
            "embedding_regularizer": args.embedding_regularizer,
            "ms_per_step": {k: v / args.steps * 1e3 for k, v in phases.items()},
            "top_ops_self_ms_per_step": {
                e.key: e.self_cpu_time_total / 1e3 / args.steps for e in ops
            },
            "load": load(),
        },
    )


if __name__ == "__main__":
    main()
