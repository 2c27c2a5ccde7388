"""Training samples/s of this checkout's trainer against another checkout's, interleaved.

For changes that must not slow the loop down (a restructuring, a new callback) or should speed it
up (the loader's hot path): DeepFM with AutoLoss (or `--loss`) on synthetic Criteo-shaped data (39
fields, 10k values per field or `--cardinality`, embedding 16, DNN 400-400-400, batch 4096). Each
round runs one fresh process per checkout, A B A B ..., and takes the best of two epochs after a
warm-up; the figure is the median over rounds.

    git worktree add /tmp/base <commit>
    python benchmarks/loop_against_checkout.py /tmp/base [--steps 14] [--rounds 3]
        [--cardinality 10000] [--loss autoloss]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _machine import report

HERE = Path(__file__).resolve().parents[1]

WORKER = """
import json, sys, tempfile
from pathlib import Path
from recloss.config import config_from_dict
from recloss.data import prepare_dataset

cache, steps, cardinality, loss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = config_from_dict({
    "data": {"dataset": "synthetic", "cache_dir": cache, "synthetic": {
        "rows": steps * 4096 * 10 // 8 + 4096, "fields": 39, "cardinality": cardinality,
        "seed": 1}},
    "model": {"name": "deepfm", "embed_dim": 16,
              "params": {"hidden_dims": [400, 400, 400], "dropout": 0.5}},
    "loss": {"name": loss},
    "train": {"batch_size": 4096, "progress": False, "epochs": 1, "max_steps_per_epoch": steps},
})
dataset = prepare_dataset(cfg.data, progress=False)
try:
    from recloss.runs.online import build_trainer
except ImportError:  # checkouts before the run layer (1ee4e4a and older)
    from recloss.train import Trainer

    trainer = Trainer(cfg, dataset, run_dir=Path(tempfile.mkdtemp()))
    epoch = trainer.train_epoch
else:
    trainer = build_trainer(cfg, dataset, run_dir=None)

    def epoch(e):
        trainer.state.epoch = e
        return trainer.train_epoch()
epoch(0)
rates = [samples / seconds for _, samples, seconds in (epoch(e) for e in (1, 2))]
print(json.dumps(max(rates)))
"""


def samples_per_second(src: Path, cache: Path, args: argparse.Namespace) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-c", WORKER, str(cache), str(args.steps), str(args.cardinality),
           args.loss]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="the other checkout (its src/ is used)")
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cardinality", type=int, default=10_000, help="values per field")
    parser.add_argument("--loss", default="autoloss")
    parser.add_argument("--report", default="loop_against_checkout", help="the results file's name")
    args = parser.parse_args()
    sources = {"this": HERE / "src", "baseline": args.baseline.resolve() / "src"}
    rates: dict[str, list[float]] = {name: [] for name in sources}
    print(f"load before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, src in sources.items():  # each checkout keeps its own cache format
                rates[name].append(samples_per_second(src, Path(tmp) / name, args))
    median = {name: statistics.median(r) for name, r in rates.items()}
    ratio = median["this"] / median["baseline"]
    print(f"load after: {load()}")
    for name, value in median.items():
        print(f"{name:>9}: {value:9,.0f} samples/s (median of {args.rounds}; all {rates[name]})")
    print(f"this / baseline: {ratio:.3f}x")
    report(args.report, {
        "baseline": str(args.baseline), "steps": args.steps, "rounds": args.rounds,
        "values_per_field": args.cardinality, "loss": args.loss,
        "samples_per_second": rates, "median": median, "ratio": ratio, "load": load(),
    })  # fmt: skip


if __name__ == "__main__":
    main()
