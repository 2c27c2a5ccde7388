"""Throughput and peak memory of preparing a Criteo-format file.

Writes a synthetic Criteo TSV (once; reused if present), prepares it into a fresh cache and
prints rows/s and peak RSS; the figures also go to benchmarks/results/prepare_throughput.json.

    python benchmarks/prepare_throughput.py --rows 5000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from recloss.config import DataConfig, SyntheticConfig
from recloss.data import prepare_dataset, write_criteo_tsv
from recloss.data.prepare import available_cores

RESULTS = Path(__file__).parent / "results" / "prepare_throughput.json"


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its children, in MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return max(own, children) * scale


def total_ram_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--file", type=Path, help="Criteo file to write/reuse (default: temp)")
    parser.add_argument("--cardinality", type=int, default=100_000, help="values per field")
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recloss-bench-"))
    source = args.file or work / f"criteo-{args.rows}.txt"
    try:
        if not source.exists():
            started = time.perf_counter()
            syn = SyntheticConfig(rows=args.rows, cardinality=args.cardinality, seed=0)
            write_criteo_tsv(source, syn)
            print(
                f"wrote {source} ({source.stat().st_size / 2**20:.0f} MiB) "
                f"in {time.perf_counter() - started:.1f}s"
            )
        cfg = DataConfig(
            dataset="criteo",
            path=str(source),
            cache_dir=str(work / "cache"),
            chunk_rows=args.chunk_rows,
        )
        load = os.getloadavg()[0]
        started, cpu_started = time.perf_counter(), time.process_time()
        ds = prepare_dataset(cfg, progress=False)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        rows = ds.meta["total_rows"]
        result = {
            "rows": rows,
            "file_mib": round(source.stat().st_size / 2**20, 1),
            "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds),
            "cpu_seconds": round(cpu_seconds, 2),  # all threads of this process
            "rows_per_cpu_s": round(rows / cpu_seconds),
            "peak_rss_mib": round(peak_rss_mb(), 1),
            "vocab_total": sum(ds.schema.cardinalities),
            "chunk_rows": args.chunk_rows,
            "machine": {
                "processor": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
                "cores_available": available_cores(),
                "ram_gib": round(total_ram_gb() or 0, 1),
                "load_average_at_start": round(load, 2),  # other processes sharing the cores
                "python": platform.python_version(),
            },
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the cache, and the generated file unless --file
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
