"""What `train.label_noise: channel` estimates on the noisy-label benchmark's data, and the truth.

Per data set, noise setting and seed (the noisy-label benchmark's flips, `recloss.data.noise`):
the estimated overall flip rate and which labels flip, the fields whose values' rates spread, and
the correlation of the rows' estimated rates with their true flip probabilities (where those
vary). No training.

    python benchmarks/label_noise_estimates.py [--seeds 5] [--datasets adult ml100k-binary]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _machine import report
from _paired import prepared

from recloss.data.noise import NoisyTraining
from recloss.training.label_noise import estimate_flip_rates

DATASETS_MEASURED = ["adult", "ml100k-binary"]
NOISE = ["uniform:0.0", "uniform:0.2", "uniform:0.4", "positives:0.2", "positives:0.4",
         "feature:0.2", "feature-positives:0.2"]  # fmt: skip


def estimates(data: str, setting: str, seeds: int) -> dict:
    """The estimate of each seed's flips of `setting` on `data`."""
    base = prepared(data)
    mode, rate = setting.split(":")
    found = []
    for seed in range(seeds):
        noisy = NoisyTraining(base, float(rate), mode, seed)
        train = noisy.split("train")
        rates = estimate_flip_rates(train, noisy.split("valid"), base.schema.cardinalities)
        rows = rates(torch.from_numpy(np.array(train.x_cat))).numpy()
        true = noisy.channel().flip_rates(train.x_cat)
        varied = np.ptp(true) > 0 and np.ptp(rows) > 0  # a correlation needs both to vary
        found.append({
            **rates.summary(base.schema.cat_fields),
            "mean_row_rate": float(rows.mean()),
            "correlation_with_true": float(np.corrcoef(rows, true)[0, 1]) if varied else None,
        })  # fmt: skip
    return {"data": data, "noise": setting, "seeds": found}


def _overall(seed: dict) -> str:
    """A seed's overall rate, with the kind of flips where they are of one class."""
    if seed["flips"] is None:
        return "off"
    return f"{seed['overall']:.3f}" + ("" if seed["flips"] == "both" else f" ({seed['flips']})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--datasets", nargs="+", default=DATASETS_MEASURED)
    p.add_argument("--noise", nargs="+", default=NOISE)
    args = p.parse_args()
    cells = [estimates(d, s, args.seeds) for d in args.datasets for s in args.noise]
    for c in cells:
        overall = " ".join(_overall(s) for s in c["seeds"])
        by_field: dict[str, list[float]] = {}
        for seed in c["seeds"]:
            for field, spread in seed["spread_by_field"].items():
                by_field.setdefault(field, []).append(spread)
        spreads = ", ".join(f"{f} {min(v):.2f}-{max(v):.2f}" for f, v in by_field.items())
        corr = [s["correlation_with_true"] for s in c["seeds"] if s["correlation_with_true"]]
        print(f"{c['data']:<14} {c['noise']:<14} overall {overall}  spread in {spreads or '-'}"
              + (f"  correlation {min(corr):.2f}-{max(corr):.2f}" if corr else ""))  # fmt: skip
    # named by what differs from the defaults, so that other runs keep the default figures
    suffix = "" if args.datasets == DATASETS_MEASURED else "_" + "_".join(args.datasets)
    if args.noise != NOISE:
        suffix += "_" + "_".join(s.replace(":", "") for s in args.noise)
    report(f"label_noise_estimates{suffix}", {"settings": vars(args), "cells": cells})


if __name__ == "__main__":
    main()
