"""Full Criteo size, end to end: generate, prepare, read, train one epoch of DeepFM, evaluate.

Generates a file in Criteo's format with the shape of the Kaggle `train.txt` (45,840,617 rows;
label, 13 integer and 26 hexadecimal fields; each categorical field with the real data set's
number of distinct values, drawn with a power-law frequency, so that about 1.1M values remain
after min-count 10; integers heavy-tailed; about 5% of every field missing; clicks from a
planted logistic model, so that test AUC means something). Then, each step timed on its own:
- preparation (`recloss data prepare` in a child process): rows/s and the child's peak RSS;
- the batch loader alone over the training split (gather, prefetch, distinct ids);
- one training epoch of DeepFM with CE from the memory-mapped cache (or its first
  --train-steps steps, the epoch's time extrapolated from them), and the evaluation;
- AutoLoss against CE over the same number of steps on the full-size tables, interleaved,
  for the ratio of their time per epoch, with its defaults and on all rows of a batch
  (`--autoloss-only`: these rounds alone, on a --work folder kept by an earlier run).
Everything it writes lives under --work and is removed at the end (unless --keep).

    python benchmarks/full_size.py [--rows 45840617] [--work /tmp/recloss-full] [--precision bf16]
        [--keep] [--autoloss-only] [--report NAME]

Writes `results/full_size.json` (`full_size_bf16`, and `..._autoloss` with --autoloss-only), or
`results/NAME.json` with --report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from _machine import report

from recloss import train
from recloss.config import config_from_dict
from recloss.data import BatchLoader, prepare_dataset
from recloss.data.synthetic import expit, hex_tokens

KAGGLE_ROWS = 45_840_617
# distinct values of C1..C26 in Criteo's Kaggle train.txt
CARDINALITIES = (1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593,
                 3194, 27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105,
                 142572)  # fmt: skip
ZIPF = 1.05  # power-law exponent of value frequencies
BLOCK = 1_000_000
INFORMATIVE = 10  # categorical fields that carry signal


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _ranks(rng: np.random.Generator, card: int, n: int) -> np.ndarray:
    """Value ranks in [0, card) with frequency ~ rank^-ZIPF (inverse CDF of a power law)."""
    top = (card + 1.0) ** (1 - ZIPF)
    x = ((top - 1.0) * rng.random(n) + 1.0) ** (1 / (1 - ZIPF))
    return np.minimum(x.astype(np.int64) - 1, card - 1)


def _hash(field: int, values: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random uint32 per (field, value): the token and the planted weight."""
    h = values.astype(np.uint64) + np.uint64((field + 1) * 0x9E3779B97F4A7C15 % 2**64)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def _block(rng: np.random.Generator, n: int) -> pa.RecordBatch:
    logit = np.full(n, -1.3)
    ints = []
    for f in range(13):
        v = np.floor(rng.lognormal(1.0 + 0.2 * f, 1.5, n)).astype(np.int64) - 1
        ints.append(pa.array(v, mask=rng.random(n) < 0.05))
        if f < 3:
            logit += 0.15 * (np.log1p(np.maximum(v, 0)) - 1.5)
    cats = []
    for f, card in enumerate(CARDINALITIES):
        token = _hash(f, _ranks(rng, card, n))
        if f < INFORMATIVE:
            logit += 0.8 * (token.astype(np.float64) / 2**32 - 0.5)
        cats.append(pa.array(hex_tokens(token).astype(str), mask=rng.random(n) < 0.05))
    label = (rng.random(n) < expit(logit)).astype(np.int8)
    names = ["label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))]
    return pa.record_batch([pa.array(label), *ints, *cats], names=names)


def generate(path: Path, rows: int) -> None:
    """Write `rows` rows in Criteo's TSV layout (no header, tab-separated, empty = missing)."""
    rng = np.random.default_rng(0)
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    writer = None
    for start in range(0, rows, BLOCK):
        batch = _block(rng, min(BLOCK, rows - start))
        writer = writer or pacsv.CSVWriter(path, batch.schema, write_options=options)
        writer.write_batch(batch)
    writer.close()


def timed(label: str, fn, *args) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.1f} s  (load: {load()})", flush=True)
    return out, seconds


def prepare_in_child(data_cfg: dict[str, Any]) -> float:
    """Prepare in a child process; its peak RSS in GiB."""
    code = ("import json, sys; from recloss.config import config_from_dict; "
            "from recloss.data import prepare_dataset; "
            "prepare_dataset(config_from_dict({'data': json.loads(sys.argv[1])}).data, "
            "progress=False)")  # fmt: skip
    subprocess.run([sys.executable, "-c", code, json.dumps(data_cfg)], check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20


def loader_rate(split, batch_size: int, batches: int) -> float:
    """Samples/s of the training batch loader alone (as the trainer builds it)."""
    loader = BatchLoader(split, batch_size, shuffle=True, seed=0, dedup=True)
    it = iter(loader)
    next(it)  # the first batch pays for the permutation
    started = time.perf_counter()
    n = sum(len(b) for b in itertools.islice(it, batches))
    return n / (time.perf_counter() - started)


# AutoLoss with its defaults, and without the cap on a controller step's rows (`hypergrad_rows`)
AUTOLOSS = {
    "autoloss": {"name": "autoloss"},
    "autoloss_all_rows": {"name": "autoloss", "params": {"hypergrad_rows": None}},
}


def step_seconds(cfg: dict[str, Any], loss: dict[str, Any], steps: int, out: str) -> float:
    """Seconds per training step over `steps` steps of one epoch with `loss`."""
    run = {**cfg, "loss": loss, "out": out,
           "train": {**cfg["train"], "epochs": 1, "max_steps_per_epoch": steps}}  # fmt: skip
    record = train(run)
    return record.train_seconds / record.steps


def one_epoch(cfg: dict[str, Any], train_split, args: argparse.Namespace, work: Path) -> dict:
    """The loader alone, then one epoch of training (or its first --train-steps) and the test."""
    figures: dict[str, Any] = {}
    figures["loader_samples_per_s"] = round(loader_rate(train_split, args.batch_size, 300))
    print(f"loader alone: {figures['loader_samples_per_s']:,} samples/s", flush=True)
    epoch = {**cfg["train"], "epochs": 1, "max_steps_per_epoch": args.train_steps}
    record, seconds = timed("one epoch", train, {**cfg, "out": str(work / "runs"),
                                                 "train": epoch})  # fmt: skip
    steps_per_epoch = len(train_split) // args.batch_size + 1
    figures |= {"trained_steps": record.steps, "steps_per_epoch": steps_per_epoch,
                "epoch_s": round(record.train_seconds / record.steps * steps_per_epoch, 1),
                "wall_s": round(seconds, 1),
                "train_samples_per_s": round(record.samples_per_second),
                "test": record.test}  # fmt: skip
    figures["loader_over_training"] = round(
        figures["loader_samples_per_s"] / figures["train_samples_per_s"], 2
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=KAGGLE_ROWS)
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="train this many steps of the epoch and extrapolate (default: all)",
    )
    parser.add_argument("--compare-steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="AutoLoss/CE interleaved rounds")
    parser.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--autoloss-only", action="store_true", help="only the AutoLoss/CE rounds (a kept --work)"
    )
    parser.add_argument("--report", help="the results file's name (default: as above)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recloss-full-"))
    work.mkdir(parents=True, exist_ok=True)
    source, cache = work / "train.txt", work / "cache"
    figures: dict[str, Any] = {"rows": args.rows, "precision": args.precision}
    figures["load_before"] = load()
    try:
        if not source.is_file():
            _, figures["generate_s"] = timed("generate", generate, source, args.rows)
        figures["file_gb"] = round(source.stat().st_size / 1e9, 2)
        data = {"dataset": "criteo", "path": str(source), "cache_dir": str(cache)}
        if not args.autoloss_only:
            rss, seconds = timed("prepare", prepare_in_child, data)
            figures |= {"prepare_s": round(seconds, 1),
                        "prepare_rows_per_s": round(args.rows / seconds),
                        "prepare_peak_rss_gb": round(rss, 2)}  # fmt: skip
        cfg = {"data": data, "model": {"name": "deepfm", "embed_dim": 16,
                                       "params": {"hidden_dims": [400, 400, 400]}},
               "loss": {"name": "ce"},
               "train": {"batch_size": args.batch_size, "progress": False,
                         "precision": args.precision, "checkpoint_every_minutes": 30}}  # fmt: skip
        dataset = prepare_dataset(config_from_dict(cfg).data, progress=False)
        train_split = dataset.split("train")
        figures["train_rows"] = len(train_split)
        figures["vocabulary"] = int(sum(dataset.schema.cardinalities))
        if not args.autoloss_only:
            figures |= one_epoch(cfg, train_split, args, work)
        ratios: dict[str, list[float]] = {name: [] for name in AUTOLOSS}
        for _ in range(args.rounds):  # interleaved, so that load changes hit all alike
            ce = step_seconds(cfg, {"name": "ce"}, args.compare_steps, str(work / "runs"))
            for name, loss in AUTOLOSS.items():
                seconds = step_seconds(cfg, loss, args.compare_steps, str(work / "runs"))
                ratios[name].append(seconds / ce)
        if args.rounds:  # --rounds 0: the epoch alone
            figures |= {f"{name}_over_ce": {"rounds": r, "median": statistics.median(r)}
                        for name, r in ratios.items()}  # fmt: skip
    finally:
        figures["load_after"] = load()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for key, value in figures.items():
        print(f"{key}: {value}")
    name = "full_size" if args.precision == "fp32" else f"full_size_{args.precision}"
    report(args.report or (f"{name}_autoloss" if args.autoloss_only else name), figures)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
