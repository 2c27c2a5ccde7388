"""What the prefetch thread's work costs the training step, and how much of that is the GIL.

recloss's `Trainer.step` over batches held in memory (DeepFM as in `train_throughput.py`), alone
and with each batch's distinct values (the `Deduplicator`, the prefetch thread's main job)
computed beside it at one batch per step: in a thread of the same process, as the loader does,
and in a separate process, which shares the cores but not the GIL. Then the trainer through its
loader, and the distinct values alone per batch, with the distinct values found as the loader
finds them (marks, or a sort of the keys for wide batches) and by marks only; and the trainer
through its loader with the prefetch thread against the loader's work done inline, between the
steps. Each comparison interleaved round by round (the last one alternating which goes first).

    python benchmarks/prefetch_cost.py [--cardinality 100000] [--rounds 5] [--report NAME]

Writes `results/prefetch_cost.json` (`prefetch_cost_10k.json` with `--cardinality 10000`), or
`results/NAME.json` with --report.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import threading
import time

import torch
from _machine import report
from train_throughput import BATCH, in_memory_round, load, make_config, recloss_round

from recloss.config import config_from_dict
from recloss.data import dedup as dedup_module
from recloss.data import prepare_dataset
from recloss.data.dedup import Deduplicator
from recloss.runs.online import build_trainer


def find_distinct(stop, seconds_per_batch: float, batches: list) -> None:
    """The distinct values of `batches`, round and round, one per `seconds_per_batch`."""
    dedup, i = Deduplicator(), 0
    while not stop.is_set():
        started = time.perf_counter()
        dedup(batches[i % len(batches)])
        i += 1
        time.sleep(max(0.0, seconds_per_batch - (time.perf_counter() - started)))


def find_distinct_in_process(stop, seconds_per_batch: float, batches: list) -> None:
    torch.set_num_threads(1)  # NumPy's work only; in a thread this would touch the step's pool
    find_distinct(stop, seconds_per_batch, batches)


def beside(where: str, round_, seconds_per_batch: float, batches: list) -> float:
    """`round_()` while `find_distinct` runs in a thread or a process (or nowhere)."""
    if where == "alone":
        return round_()
    if where == "thread":
        stop = threading.Event()
        worker = threading.Thread(target=find_distinct, args=(stop, seconds_per_batch, batches))
    else:
        context = mp.get_context("spawn")  # a fork would make every table write copy its page
        stop = context.Event()
        worker = context.Process(
            target=find_distinct_in_process, args=(stop, seconds_per_batch, batches)
        )
    worker.start()
    if where == "process":
        time.sleep(3)  # its interpreter starting
    try:
        return round_()
    finally:
        stop.set()
        worker.join()


def thread_against_process(trainer, batches: list, rounds: int) -> dict:
    """The in-memory step alone, and with the distinct values found beside it in a thread and
    in a process, interleaved; each one's cost as a share of the rate alone."""
    x_cats = [batch.x_cat.numpy() for batch in batches]
    seconds_per_step = BATCH / in_memory_round(trainer, batches)  # also the warm-up
    rates: dict[str, list[float]] = {"alone": [], "thread": [], "process": []}
    for _ in range(rounds):
        for where in rates:
            rates[where].append(
                beside(where, lambda: in_memory_round(trainer, batches), seconds_per_step, x_cats)
            )
    median = {where: statistics.median(r) for where, r in rates.items()}
    cost = {where: 1 - median[where] / median["alone"] for where in ("thread", "process")}
    print("in-memory samples/s: " + "  ".join(f"{w} {r:,.0f}" for w, r in median.items()))
    print(f"the distinct values beside the step cost {cost['thread']:.1%} of its rate in a "
          f"thread, {cost['process']:.1%} in a process")  # fmt: skip
    return {"samples_per_s": rates, "median": median, "cost": cost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cardinality", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--report", help="the results file's name (default: as above)")
    args = parser.parse_args()
    rows = args.steps * BATCH * 10 // 8 + BATCH
    print(f"load before: {load()}")
    with tempfile.TemporaryDirectory() as cache:
        cfg = config_from_dict(make_config(cache, args.cardinality, rows))
        cfg.train.max_steps_per_epoch = args.steps
        trainer = build_trainer(cfg, prepare_dataset(cfg.data, progress=False), run_dir=None)
        trainer.train_loader.set_epoch(0)
        batches = list(trainer.train_loader)[: args.steps]
        print(f"{args.cardinality} values per field")
        found = thread_against_process(trainer, batches, args.rounds)
        found["sort_against_marks"] = sort_against_marks(trainer, batches, args.rounds)
        found["inline_against_thread"] = inline_against_thread(trainer, args.rounds)
    print(f"load after: {load()}")
    # named by the cardinality where it is not the default, so that both runs keep their figures
    suffix = "" if args.cardinality == 100_000 else f"_{args.cardinality // 1000}k"
    found = {"values_per_field": args.cardinality, **found, "load": load()}
    report(args.report or f"prefetch_cost{suffix}", found)


def sort_against_marks(trainer, batches: list, rounds: int) -> dict:
    """The distinct values as the loader finds them (`default`) against marks only: ms per
    batch found alone, and recloss's rate through its loader, interleaved."""
    default, ratios = dedup_module.SORT_ABOVE, []
    ms: dict[str, list[float]] = {"marks": [], "default": []}
    x_cats = [batch.x_cat.numpy() for batch in batches]
    try:
        for r in range(rounds):
            found = {}
            for name, sort_above in (("marks", 2**62), ("default", default)):
                dedup_module.SORT_ABOVE = sort_above
                ms[name].append(ms_per_batch(x_cats))
                found[name] = recloss_round(trainer, r + 1)
            ratios.append(found["default"] / found["marks"])
    finally:
        dedup_module.SORT_ABOVE = default
    per_batch = {name: statistics.median(v) for name, v in ms.items()}
    rounds_text = ", ".join(f"{x:.3f}" for x in ratios)
    print(f"distinct values per batch: default {per_batch['default']:.2f} ms, marks only "
          f"{per_batch['marks']:.2f} ms; through the loader, default against marks only: "
          f"{statistics.median(ratios):.3f}x (rounds {rounds_text})")  # fmt: skip
    return {"ms_per_batch": per_batch, "median_ratio": statistics.median(ratios), "ratios": ratios}


def inline_against_thread(trainer, rounds: int) -> dict:
    """recloss's rate through its loader with the prefetch thread (depth 2, the default) and
    with the loader's work done inline (depth 0), interleaved, alternating which goes first."""
    default, rates = trainer.train_loader.prefetch, {"thread": [], "inline": []}
    try:
        for r in range(rounds):
            order = ("thread", "inline") if r % 2 == 0 else ("inline", "thread")
            for i, name in enumerate(order):
                trainer.train_loader.prefetch = default if name == "thread" else 0
                rates[name].append(recloss_round(trainer, 2 * r + i + rounds + 1))
    finally:
        trainer.train_loader.prefetch = default
    ratios = [a / b for a, b in zip(rates["inline"], rates["thread"], strict=True)]
    median = {name: statistics.median(v) for name, v in rates.items()}
    print(f"through the loader, samples/s: thread {median['thread']:,.0f}, inline "
          f"{median['inline']:,.0f}; inline against thread {statistics.median(ratios):.3f}x "
          f"(rounds {', '.join(f'{x:.3f}' for x in ratios)})")  # fmt: skip
    return {"samples_per_s": rates, "median": median, "median_ratio": statistics.median(ratios)}


def ms_per_batch(x_cats: list) -> float:
    """Median ms of one `Deduplicator` call over the batches, alone in this thread."""
    dedup, seconds = Deduplicator(), []
    for x_cat in x_cats:
        started = time.perf_counter()
        dedup(x_cat)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1e3


if __name__ == "__main__":
    main()
