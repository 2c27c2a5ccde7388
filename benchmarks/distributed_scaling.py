"""Training throughput of 1 process against N data-parallel processes (gloo on the CPU).

    python benchmarks/distributed_scaling.py [--nproc 2] [--rounds 3] [--rows 60000]

Runs `recloss train` (one process, all cores: PyTorch's threads), the same with cores / N
threads, and `recloss train --nproc N` (N ranks through torchrun, cores / N threads each) in
turn, A B C A B C ..., on the same synthetic data and global batch, and reports each run's
samples/s (global samples over the slowest rank's seconds inside training steps), the medians
and the medians of the round-by-round ratios, with `uptime`'s load before and after. On a
machine of 2 cores the ranks compete for the cores one process already uses: there the figure
measures the collectives' overhead and the threads' contention more than any scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _machine import report


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _run(nproc: int, root: Path, rows: int, tag: str, threads: int | None = None) -> float:
    """One training run; its samples/s from the run record."""
    out = root / tag
    cmd = [sys.executable, "-m", "recloss", "train", "--dataset", "synthetic",
           "--set", f"data.synthetic.rows={rows}", "--set", f"data.cache_dir={root / 'cache'}",
           "--set", "data.synthetic.fields=20", "--set", "data.synthetic.cardinality=1000",
           "--model", "deepfm", "--loss", "ce", "--epochs", "1", "--batch-size", "2048",
           "--set", "train.progress=false", "--set", "train.checkpoint_every_minutes=null",
           "--device", "cpu", "--out", str(out)]  # fmt: skip
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    if threads is not None:
        cmd += ["--set", f"train.threads={threads}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    (folder,) = out.iterdir()
    return json.loads((folder / "metrics.json").read_text())["samples_per_second"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rows", type=int, default=60_000)
    args = p.parse_args()
    before = _load()
    one, thin, many = [], [], []
    share = max(1, (os.cpu_count() or 1) // args.nproc)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _run(1, root, args.rows, "warm-up")  # prepares the cache, warms the file cache
        for r in range(args.rounds):
            one.append(_run(1, root, args.rows, f"one-{r}"))
            thin.append(_run(1, root, args.rows, f"thin-{r}", threads=share))
            many.append(_run(args.nproc, root, args.rows, f"many-{r}"))
            rates = (
                f"1 process {one[-1]:,.0f}/s, 1 process x {share} threads {thin[-1]:,.0f}/s, "
                f"{args.nproc} ranks {many[-1]:,.0f}/s"
            )
            print(f"round {r + 1}: {rates}", flush=True)
    after = _load()
    ratios = [m / o for m, o in zip(many, one, strict=True)]
    thin_ratios = [m / t for m, t in zip(many, thin, strict=True)]
    figures = {
        "nproc": args.nproc,
        "rows": args.rows,
        "cores": os.cpu_count(),
        "samples_per_second_1": one,
        "samples_per_second_1_thin": thin,
        "threads_per_rank": share,
        "samples_per_second_n": many,
        "median_1": statistics.median(one),
        "median_n": statistics.median(many),
        "median_ratio_n_over_1": statistics.median(ratios),
        "median_ratio_n_over_1_thin": statistics.median(thin_ratios),
        "load_before": before,
        "load_after": after,
    }
    print(f"load before: {before}\nload after:  {after}")
    print(
        f"median samples/s: 1 process {figures['median_1']:,.0f}, {args.nproc} ranks "
        f"{figures['median_n']:,.0f}; median ratio {figures['median_ratio_n_over_1']:.2f}x, "
        f"{figures['median_ratio_n_over_1_thin']:.2f}x against 1 process of {share} threads "
        f"({os.cpu_count()} cores)"
    )
    report("distributed_scaling", figures)


if __name__ == "__main__":
    main()
