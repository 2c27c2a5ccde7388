"""The embedding backward's duplicates sum: `index_add_` (recloss) against the alternatives.

The gradient of a DeepFM batch's `[4096 * 39, D]` looked-up rows is summed into its U distinct
rows. Compared, interleaved (A B C A B C ...): `index_add_` in the batch's order with an int64
index (what recloss does) and with an int32 one (what the loader gave until this benchmark
found it 4-17x slower), `scatter_add_`, and a stable sort of the positions (computable in the
loader, not timed) followed by `torch.segment_reduce`, for uniform and power-law ids at 10k and
100k values per field, D 16 (the table) and 1 (the first-order weights). Medians in ms, and
whether each result equals `index_add_`'s bit for bit.

    python benchmarks/gradient_sum.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from _machine import report

from recloss.data.dedup import lookup_of

BATCH, FIELDS = 4096, 39


def ids(kind: str, cardinality: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "uniform":
        return rng.integers(0, cardinality, size=(BATCH, FIELDS)).astype(np.int32)
    return (rng.zipf(1.2, size=(BATCH, FIELDS)) % cardinality).astype(np.int32)


def methods(inverse: np.ndarray, grad: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    """Each way of summing `grad`'s rows by `inverse` into `[U, D]`."""
    flat = torch.from_numpy(inverse.ravel().astype(np.int64))
    distinct, width = int(flat.max()) + 1, grad.shape[1]
    order = torch.from_numpy(np.argsort(inverse.ravel(), kind="stable"))
    lengths = torch.from_numpy(np.bincount(inverse.ravel(), minlength=distinct))
    scatter_index = flat.unsqueeze(1).expand(-1, width)
    flat32 = flat.to(torch.int32)
    return {
        "index_add_": lambda: grad.new_zeros(distinct, width).index_add_(0, flat, grad),
        "index_add_ int32": lambda: grad.new_zeros(distinct, width).index_add_(0, flat32, grad),
        "scatter_add_": lambda: grad.new_zeros(distinct, width).scatter_add_(
            0, scatter_index, grad
        ),
        "sort + segment_reduce": lambda: torch.segment_reduce(
            grad.index_select(0, order), "sum", lengths=lengths
        ),
    }


def round_ms(fn: Callable[[], torch.Tensor], steps: int = 10) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - started) / steps * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    found = []
    for kind in ("uniform", "power-law"):
        for cardinality in (10_000, 100_000):
            inverse = lookup_of(ids(kind, cardinality, rng)).inverse.numpy()
            for width in (16, 1):
                fns = methods(inverse, torch.randn(BATCH * FIELDS, width))
                reference = fns["index_add_"]()
                same = {name: torch.equal(fn(), reference) for name, fn in fns.items()}
                times: dict[str, list[float]] = {name: [] for name in fns}
                for _ in range(args.rounds):
                    for name, fn in fns.items():
                        times[name].append(round_ms(fn))
                median = {name: statistics.median(t) for name, t in times.items()}
                distinct = int(inverse.max()) + 1
                row = {"ids": kind, "values_per_field": cardinality, "width": width,
                       "distinct": distinct, "median_ms": median, "equal": same}  # fmt: skip
                found.append(row)
                cells = "  ".join(f"{n} {ms:.2f}" for n, ms in median.items())
                print(f"{kind:<9} {cardinality:>7} values/field, D {width:>2}, U {distinct:>7}: "
                      f"{cells} ms; bit-equal: {all(same.values())}")  # fmt: skip
    report("gradient_sum", {"batch": BATCH, "fields": FIELDS, "rows": found})


if __name__ == "__main__":
    main()
