"""Preparation time with vocabularies fitted on the training split against all rows.

With a random split, `data.vocab_from: train` counts the training rows in an extra pass over the
spilled codes (the split is drawn once the rows are counted); `all` counts while parsing. This
prepares one synthetic Criteo TSV into fresh caches, alternating the two settings (A B A B ...),
and prints the median seconds of each and their ratio, with the load average; the figures also
go to benchmarks/results/vocab_from.json.

    python benchmarks/vocab_from.py --rows 1000000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _machine import report

from recloss.config import DataConfig, SyntheticConfig
from recloss.data import prepare_dataset, write_criteo_tsv

SETTINGS = ("all", "train")


def prepare_seconds(source: Path, cache: Path, vocab_from: str) -> tuple[float, float, dict]:
    """Wall and CPU seconds to prepare `source` into an empty cache, and its vocabulary sizes."""
    shutil.rmtree(cache, ignore_errors=True)
    cfg = DataConfig(
        dataset="criteo", path=str(source), cache_dir=str(cache), vocab_from=vocab_from
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    ds = prepare_dataset(cfg, progress=False)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return seconds, cpu, ds.meta["encoding"]["vocab_sizes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cardinality", type=int, default=100_000, help="values per field")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recloss-vocab-"))
    try:
        source = work / "criteo.txt"
        write_criteo_tsv(source, SyntheticConfig(rows=args.rows, cardinality=args.cardinality))
        prepare_seconds(source, work / "cache", "all")  # warm the page cache once
        times: dict[str, list[float]] = {s: [] for s in SETTINGS}
        cpu: dict[str, list[float]] = {s: [] for s in SETTINGS}
        loads, sizes = [], {}
        for _ in range(args.rounds):
            for setting in SETTINGS:
                loads.append(os.getloadavg()[0])
                seconds, used, sizes[setting] = prepare_seconds(source, work / "cache", setting)
                times[setting].append(round(seconds, 3))
                cpu[setting].append(round(used, 3))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {s: statistics.median(t) for s, t in times.items()}
    ratio = medians["train"] / medians["all"]
    paired = [t / a for t, a in zip(times["train"], times["all"], strict=True)]
    paired_text = ", ".join(f"{r:.2f}" for r in paired)
    cpu_medians = {s: statistics.median(t) for s, t in cpu.items()}
    cpu_ratio = cpu_medians["train"] / cpu_medians["all"]
    total = {s: sum(v.values()) for s, v in sizes.items()}
    print(f"rows {args.rows:,}, cardinality {args.cardinality:,}, {args.rounds} rounds")
    for setting in SETTINGS:
        print(f"vocab_from {setting:<5}  median {medians[setting]:.2f}s  runs {times[setting]}")
    print(f"train / all: {ratio:.3f}x time (ratio of medians)")
    print(f"train / all per round: median {statistics.median(paired):.3f}x, runs {paired_text}")
    for setting in SETTINGS:
        print(
            f"vocab_from {setting:<5}  CPU median {cpu_medians[setting]:.2f}s  runs {cpu[setting]}"
        )
    print(f"train / all: {cpu_ratio:.3f}x CPU time (ratio of medians)")
    print(f"vocabulary indices: train {total['train']:,}, all {total['all']:,}")
    print(f"load average (1 min) during the runs: {min(loads):.1f} to {max(loads):.1f}")
    report(
        "vocab_from",
        {
            "rows": args.rows,
            "cardinality": args.cardinality,
            "rounds": args.rounds,
            "seconds": times,
            "median_seconds": medians,
            "ratio_train_over_all": round(ratio, 3),
            "cpu_seconds": cpu,
            "cpu_ratio_train_over_all": round(cpu_ratio, 3),
            "paired_ratios": [round(r, 3) for r in paired],
            "median_paired_ratio": round(statistics.median(paired), 3),
            "vocabulary_indices": total,
            "load_1min": [round(x, 2) for x in loads],
        },
    )


if __name__ == "__main__":
    main()
