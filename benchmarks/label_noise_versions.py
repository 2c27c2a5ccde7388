"""The noisy-label benchmark's channel runs under the current estimator against earlier versions.

A channel run's key holds the estimator's version (`LABEL_NOISE_VERSION`), so a new version
retrains every channel run. Per noise setting, data set, model and method: how many runs of an
earlier version have a twin of the current one (same flips, seed and settings), and how many of
those match it to the last digit of test AUC and logloss. `--run` first trains the twins missing
from the runs file (the runs the README's noisy-label commands would train).

    python benchmarks/label_noise_versions.py [--run] [--versions 2 3]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from _machine import RESULTS, report
from _paired import LABEL_NOISE_VERSION, fingerprint, jobs, load_done, run_all

from recloss.data.noise import NOISE_MODES

RATES = (0.0, 0.1, 0.2, 0.3, 0.4)  # the flip rates whose runs it finds (keys hash the setting)
METHODS = ["ce-channel", "autoloss-channel"]


def settings() -> dict[str, dict]:
    """Each noise setting by the fingerprint its runs' keys start with."""
    return {fingerprint(n): n for n in ({"mode": m, "rate": r} for m in NOISE_MODES for r in RATES)}


def cell_jobs(noise: dict, data: str, model: str, version: int) -> list[dict]:
    """The channel runs of one cell (the noisy-label benchmark's defaults), keyed as under
    estimator `version`."""
    options = argparse.Namespace(seeds=5, epochs=10, batch_size=512, calibration="none",
                                 datasets=[data], models=[model])  # fmt: skip
    return jobs(options, METHODS, noise, version)


def twins(done: dict[str, dict], versions: list[int]) -> tuple[list[tuple], list[dict]]:
    """`(old key, current key, setting, old version)` of every earlier run, and the current
    version's jobs missing from `done`."""
    by_print, pairs, missing = settings(), [], {}
    cells = {(key.split("-")[0], *key.split("/")[1:3]) for key in done if "-" in key.split("/")[0]}
    for noise_print, data, model in sorted(cells):
        if noise_print not in by_print:
            continue
        noise = by_print[noise_print]
        current = cell_jobs(noise, data, model, LABEL_NOISE_VERSION)
        for version in versions:
            for job, old in zip(current, cell_jobs(noise, data, model, version), strict=True):
                if old["key"] in done:
                    pairs.append((old["key"], job["key"], noise, version))
                    if job["key"] not in done:
                        missing[job["key"]] = job
    return pairs, list(missing.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-file", type=Path, default=RESULTS / "autoloss_noisy_runs.jsonl")
    parser.add_argument("--versions", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--run", action="store_true", help="train the missing current runs first")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    done = load_done(args.runs_file)
    pairs, missing = twins(done, args.versions)
    if args.run and missing:
        done = run_all(missing, args.runs_file, args.jobs)
    found: Counter = Counter()
    for old, new, noise, version in pairs:
        cell = f"{noise['mode']}:{noise['rate']} {'/'.join(new.split('/')[1:4])} v{version}"
        found[cell, done[old]["test"] == done[new]["test"] if new in done else None] += 1
    cells = sorted({cell for cell, _ in found})
    for cell in cells:
        print(f"{cell:<62} identical {found[cell, True]:>2}, different {found[cell, False]:>2}")
    same, differ, alone = (sum(n for (_, s), n in found.items() if s is flag)
                           for flag in (True, False, None))  # fmt: skip
    print(
        f"{same} runs identical to their twin of version {LABEL_NOISE_VERSION}, "
        f"{differ} different, {alone} without a twin (`--run` trains them)"
    )
    report("label_noise_versions", {
        "current": LABEL_NOISE_VERSION, "identical": same, "different": differ,
        "without_twin": alone,
        "cells": {cell: {"identical": found[cell, True], "different": found[cell, False]}
                  for cell in cells},
    })  # fmt: skip


if __name__ == "__main__":
    main()
