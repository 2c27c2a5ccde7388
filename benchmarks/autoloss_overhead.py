"""Wall time per training epoch of AutoLoss against plain CE: DeepFM (DNN 400-400-400, dropout
0.5, embedding 16, sparse embeddings) on synthetic Criteo-shaped data (39 fields), controller
updated every K = 7 and every K = 1 steps, and K = 7 without the cap on a controller step's rows
(`hypergrad_rows`), all strategies measured interleaved in one run.

`--profile` instead runs one epoch of CE and one of AutoLoss with K = 1 under torch.profiler and
splits a controller step into the hypergradient's validation pass, its `J g'` passes and the rest.

    python benchmarks/autoloss_overhead.py [--steps 28] [--rounds 3] [--batch-size 2048] [--profile]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from _machine import report
from torch.profiler import ProfilerActivity, profile

from recloss.config import config_from_dict
from recloss.data import prepare_dataset
from recloss.runs.online import build_trainer

STRATEGIES = {
    "ce": {"name": "ce"},
    "autoloss_k7": {"name": "autoloss", "params": {"controller_every": 7}},
    "autoloss_k1": {"name": "autoloss", "params": {"controller_every": 1}},
    "autoloss_k7_jvp": {"name": "autoloss", "params": {"controller_every": 7, "hypergrad": "jvp"}},
    "autoloss_k7_all_rows": {  # without the default cap on a controller step's rows
        "name": "autoloss",
        "params": {"controller_every": 7, "hypergrad_rows": None},
    },
}
TARGET_K7 = 1.3


def make_config(cache: str, rows: int, cardinality: int, batch_size: int, steps: int) -> dict:
    return {
        "data": {"dataset": "synthetic", "cache_dir": cache,
                 "synthetic": {"rows": rows, "fields": 39, "cardinality": cardinality, "seed": 0}},
        "model": {"name": "deepfm", "embed_dim": 16,
                  "params": {"hidden_dims": [400, 400, 400], "dropout": 0.5}},
        "train": {"batch_size": batch_size, "max_steps_per_epoch": steps, "progress": False},
    }  # fmt: skip


def trainers_data(args: argparse.Namespace, cache: str) -> tuple[dict, object]:
    """The base configuration (no loss) and its prepared data set."""
    rows = args.steps * args.batch_size * 10 // 8 + args.batch_size
    base = make_config(cache, rows, args.cardinality, args.batch_size, args.steps)
    return base, prepare_dataset(config_from_dict(base).data, progress=False)


def measure(args: argparse.Namespace, cache: str) -> dict:
    base, dataset = trainers_data(args, cache)
    trainers = {
        name: build_trainer(config_from_dict({**base, "loss": loss}), dataset, run_dir=None)
        for name, loss in STRATEGIES.items()
    }
    seconds: dict[str, list[float]] = {name: [] for name in trainers}
    for trainer in trainers.values():  # warm-up: allocator, page cache, optimiser state
        trainer.train_epoch()
    for r in range(args.rounds):  # interleaved, so drifting machine load hits all alike
        for name, trainer in trainers.items():
            trainer.state.epoch = r + 1  # the epoch's shuffle
            seconds[name].append(trainer.train_epoch()[2])
    median = {name: statistics.median(s) for name, s in seconds.items()}
    return {
        "rows_per_epoch": args.steps * args.batch_size,
        "steps_per_epoch": args.steps,
        "batch_size": args.batch_size,
        "values_per_field": args.cardinality,
        "rounds": args.rounds,
        "epoch_seconds_median": median,
        "epoch_seconds_all": seconds,
        "ratio_to_ce": {name: median[name] / median["ce"] for name in median},
    }


def controller_step_parts(args: argparse.Namespace, cache: str) -> dict:
    """ms per step of CE and of AutoLoss K = 1 (epochs under the profiler), and the parts of it."""
    base, dataset = trainers_data(args, cache)
    ms, labels = {}, {}
    for name in ("ce", "autoloss_k1"):
        trainer = build_trainer(config_from_dict({**base, "loss": STRATEGIES[name]}), dataset,
                                run_dir=None)  # fmt: skip
        trainer.train_epoch()  # warm-up
        trainer.state.epoch = 1
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            started = time.perf_counter()
            trainer.train_epoch()
            ms[name] = (time.perf_counter() - started) / args.steps * 1e3
        labels = {e.key: e.cpu_time_total / args.steps / 1e3 for e in prof.key_averages()
                  if e.key.startswith("hypergrad: ")}  # fmt: skip
    parts = {"validation pass": labels["hypergrad: validation pass"],
             "J g'": labels["hypergrad: J g'"]}  # fmt: skip
    parts["rest"] = ms["autoloss_k1"] - ms["ce"] - sum(parts.values())
    return {
        "ms_per_step": ms,
        "controller_step_ms": parts,
        "controller_step_in_ce_steps": (ms["autoloss_k1"] - ms["ce"]) / ms["ce"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=28, help="steps per epoch (a multiple of 7)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--cardinality", type=int, default=1000, help="values per field")
    parser.add_argument("--profile", action="store_true", help="instead: a controller step's parts")
    args = parser.parse_args()
    if args.profile:
        with tempfile.TemporaryDirectory() as cache:
            figures = controller_step_parts(args, cache)
        for name, value in figures["ms_per_step"].items():
            print(f"{name:>12}: {value:6.1f} ms per step (under the profiler)")
        for name, value in figures["controller_step_ms"].items():
            print(f"  controller step, {name}: {value:6.1f} ms")
        print(f"a controller step costs {figures['controller_step_in_ce_steps']:.2f} CE steps")
        report("autoloss_overhead_profile", figures)
        return
    with tempfile.TemporaryDirectory() as cache:
        figures = measure(args, cache)
    for name, ratio in figures["ratio_to_ce"].items():
        print(f"{name:>16}: {figures['epoch_seconds_median'][name]:7.2f} s/epoch  {ratio:5.2f}x CE")
    k7 = figures["ratio_to_ce"]["autoloss_k7"]
    print(
        f"AutoLoss K=7 overhead {k7:.2f}x (target <= {TARGET_K7}x): "
        f"{'met' if k7 <= TARGET_K7 else 'NOT met'}"
    )
    report("autoloss_overhead", figures)


if __name__ == "__main__":
    main()
