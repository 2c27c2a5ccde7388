"""Test AUC and logloss with vocabularies fitted on the training split against all rows.

The same random split (data.split_seed 2021) and the same training seeds for both settings;
DeepFM with cross-entropy. Prints per-setting means and the paired per-seed differences
(train - all) with a paired t-test, and writes benchmarks/results/vocab_from_quality.json.

    python benchmarks/vocab_from_quality.py --data adult ml100k-binary --seeds 5
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _machine import report
from _paired import DATASETS
from _paired_stats import fmt_diff, mean_std, paired

from recloss import train

SETTINGS = ("train", "all")
METRICS = ("auc", "logloss")


def run(data: str, vocab_from: str, seed: int, root: Path, epochs: int) -> dict[str, float]:
    """Test metrics of one run."""
    cfg = {
        "data": {**DATASETS[data], "cache_dir": str(root / "cache"), "vocab_from": vocab_from},
        "model": {"name": "deepfm"},
        "loss": {"name": "ce"},
        "train": {"epochs": epochs, "patience": 2, "seed": seed, "progress": False},
        "out": str(root / "runs"),
    }
    record = train(cfg, run_dir=root / f"{data}-{vocab_from}-{seed}")
    return {m: record.test[m] for m in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["adult", "ml100k-binary"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, dict] = {}
    loads = []
    with tempfile.TemporaryDirectory(prefix="recloss-vocab-q-") as tmp:
        for data in args.data:
            samples = {s: {m: [] for m in METRICS} for s in SETTINGS}
            for seed in range(args.seeds):
                for setting in SETTINGS:  # interleaved, seed by seed
                    loads.append(os.getloadavg()[0])
                    test = run(data, setting, seed, Path(tmp), args.epochs)
                    for m, v in test.items():
                        samples[setting][m].append(v)
                    print(f"{data} vocab_from {setting} seed {seed}: {test}", flush=True)
            diffs = {m: paired(samples["train"][m], samples["all"][m]) for m in METRICS}
            figures[data] = {"samples": samples, "train_minus_all": diffs}
            print(f"{data}: {args.seeds} seeds, deepfm + ce, {args.epochs} epochs")
            for setting in SETTINGS:
                stats = {m: mean_std(samples[setting][m]) for m in METRICS}
                print(
                    f"  vocab_from {setting:<5} auc {stats['auc']['mean']:.4f} ± "
                    f"{stats['auc']['std']:.4f}  logloss {stats['logloss']['mean']:.4f} ± "
                    f"{stats['logloss']['std']:.4f}"
                )
            print(
                f"  train - all: auc {fmt_diff(diffs['auc'])}, logloss {fmt_diff(diffs['logloss'])}"
            )
    print(f"load average (1 min) during the runs: {min(loads):.1f} to {max(loads):.1f}")
    figures["load_1min"] = [round(x, 2) for x in loads]
    report("vocab_from_quality", figures)


if __name__ == "__main__":
    main()
