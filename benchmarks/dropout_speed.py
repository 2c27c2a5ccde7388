"""Dropout forward + backward: `torch.nn.Dropout` against recloss's `Dropout`, interleaved.

The shape is one hidden layer of the DeepFM throughput benchmark (batch 4096, width 400, p 0.5).
Rounds alternate the two layers (A B A B ...) at torch's default thread count (recloss's
default); the medians, their ratio and the load average are printed and written to
benchmarks/results/dropout_speed.json.

    python benchmarks/dropout_speed.py [--rounds 7] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _machine import report

from recloss.models.layers import Dropout


def round_ms(layer: torch.nn.Module, x: torch.Tensor, steps: int) -> float:
    """Mean milliseconds of one forward + backward through `layer`."""
    layer(x).sum().backward()  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        layer(x).sum().backward()
    return (time.perf_counter() - started) / steps * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    x = torch.randn(4096, 400, requires_grad=True)
    layers = {"torch.nn.Dropout": torch.nn.Dropout(0.5), "recloss Dropout": Dropout(0.5)}
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(args.rounds):
        for name, layer in layers.items():
            times[name].append(round_ms(layer, x, args.steps))
    median = {name: statistics.median(t) for name, t in times.items()}
    ratio = median["torch.nn.Dropout"] / median["recloss Dropout"]
    for name, ms in median.items():
        print(f"{name:<18} {ms:6.2f} ms per forward + backward (median of {args.rounds} rounds)")
    print(f"recloss Dropout is {ratio:.2f}x faster")
    report("dropout_speed", {"shape": [4096, 400], "p": 0.5, "median_ms": median,
                             "speedup": ratio, "rounds_ms": times})  # fmt: skip


if __name__ == "__main__":
    main()
