"""How the race should pick its winner: rules scored against the fixed losses' test results.

The race (`loss.name: race`) trains each candidate alone for a budget and retrains the winner,
which is then exactly the fixed run of that candidate on the same seed. So a selection rule can be
judged without retraining: this script runs each candidate's trial (the race's own code), keeps
its validation probabilities, and scores every rule by the fixed runs' test metrics of what it
picks, against the goals of the quality benchmarks (mean test AUC >= the best fixed loss's - 0.001,
mean logloss <= CE's + 0.002). Rules:
- `auc`: the best validation AUC (the race's rule);
- `auc-significant`: that, unless its lead over CE is not significant (one-sided paired bootstrap
  over the validation rows, 5%): then CE;
- `logloss`: the best validation logloss after the run's calibration map, fitted on validation.

    python benchmarks/race_selection.py [--seeds 5] [--budget 1.0] [--datasets ...] [--report NAME]
"""

from __future__ import annotations

import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from _machine import report
from _paired import (
    CACHE,
    DATASETS,
    RUNS_VERSION,
    STANDARD,
    fingerprint,
    jobs,
    key_of,
    parser,
    run_all,
    run_config,
)
from _paired_stats import AUC_SLACK, FIXED, LOGLOSS_SLACK

from recloss.config import config_from_dict
from recloss.data import prepare_dataset
from recloss.metrics import evaluate
from recloss.runs.race import trial

RESAMPLES = 1000
ALPHA = 0.05


def trial_scores(cfg: dict, budget: float, path: Path) -> Path:
    """Every candidate's validation probabilities after its trial, raw and calibrated, saved."""
    if path.is_file():
        return path
    torch.set_num_threads(1)  # one core per worker, as the fixed runs had
    run = config_from_dict(cfg)
    dataset = prepare_dataset(run.data)
    scores = {}
    for candidate in FIXED:
        trainer = trial(run, dataset, candidate, budget)
        scores[candidate] = trainer.predict(trainer.data.valid)
        scores[f"{candidate}_calibrated"] = trainer.predict(trainer.data.valid, trainer.calibrate())
    scores["y"] = np.asarray(trainer.data.valid.y, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **scores)
    return path


def weighted_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> float:
    """ROC AUC with a weight per row (ties count half), in one pass over the distinct scores.

    The value of scikit-learn's `roc_auc_score(sample_weight=...)`, about 13x faster: a bootstrap
    computes 2,000 of them per seed (10,000 on five classes)."""
    distinct, inverse = np.unique(scores, return_inverse=True)
    pos = np.bincount(inverse, weights * positive, minlength=len(distinct))
    neg = np.bincount(inverse, weights * ~positive, minlength=len(distinct))
    below = np.cumsum(neg) - neg
    return float((pos * (below + neg / 2)).sum() / (pos.sum() * neg.sum()))


def task_auc(task: str, y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    """`recloss.metrics`' AUC for the task (binary, or macro one-vs-rest) with a weight per row."""
    if task == "binary":
        return weighted_auc(scores, y == 1, weights)
    return float(np.mean([weighted_auc(scores[:, c], y == c, weights) for c in np.unique(y)]))


def bootstrap_p(task: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int) -> float:
    """One-sided p-value of "`a`'s AUC is above `b`'s": a paired bootstrap over the rows (a
    resample is a count per row)."""
    rng = np.random.default_rng(seed)
    not_above = 0
    for _ in range(RESAMPLES):
        counts = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)).astype(float)
        not_above += not task_auc(task, y, a, counts) > task_auc(task, y, b, counts)
    return (not_above + 1) / (RESAMPLES + 1)


def picks(task: str, scores: dict[str, np.ndarray], seed: int) -> dict[str, object]:
    """What each rule picks from one seed's trials, and the AUC leader's p-value against CE."""
    y = scores["y"]
    auc = {c: evaluate(task, y, scores[c])["auc"] for c in FIXED}
    logloss = {c: evaluate(task, y, scores[f"{c}_calibrated"])["logloss"] for c in FIXED}
    leader = max(FIXED, key=auc.__getitem__)
    p = 1.0 if leader == "ce" else bootstrap_p(task, y, scores[leader], scores["ce"], seed)
    return {
        "auc": leader,
        "auc-significant": leader if p < ALPHA else "ce",
        "logloss": min(FIXED, key=logloss.__getitem__),
        "leader_p": p,
    }


def cell_table(seeds: list[dict], test: dict[str, list[dict]]) -> dict:
    """Each rule's picks and its test means against the best fixed loss's AUC and CE's logloss."""
    mean = {
        c: {m: statistics.mean(r[m] for r in test[c]) for m in ("auc", "logloss")} for c in test
    }
    best = max(FIXED, key=lambda c: mean[c]["auc"])
    out = {"best_fixed": best, "leader_p": [s["leader_p"] for s in seeds], "rules": {}}
    for rule in ("auc", "auc-significant", "logloss"):
        chosen = [s[rule] for s in seeds]
        rows = [test[c][i] for i, c in enumerate(chosen)]
        auc = statistics.mean(r["auc"] for r in rows) - mean[best]["auc"]
        logloss = statistics.mean(r["logloss"] for r in rows) - mean["ce"]["logloss"]
        met = auc >= -AUC_SLACK and logloss <= LOGLOSS_SLACK
        out["rules"][rule] = {"picks": chosen, "auc_vs_best": auc, "logloss_vs_ce": logloss,
                              "goals_met": met}  # fmt: skip
    return out


def print_markdown(cells: dict[str, dict]) -> None:
    """A row per cell and rule; `auc-significant`'s row gives the leader's p-value per seed."""
    print("| cell | best fixed | rule | picks (seeds in order) | AUC - best fixed | "
          "logloss - CE | goals |\n| --- | --- | --- | --- | --- | --- | --- |")  # fmt: skip
    for name, cell in cells.items():
        for rule, r in cell["rules"].items():
            picks_ = " ".join(r["picks"])
            if rule == "auc-significant":
                picks_ += " (p " + " ".join(f"{p:.2f}" for p in cell["leader_p"]) + ")"
            met = "met" if r["goals_met"] else "missed"
            print(
                f"| {name} | {cell['best_fixed']} | {rule} | {picks_} | "
                f"{r['auc_vs_best']:+.4f} | {r['logloss_vs_ce']:+.4f} | {met} |"
            )


def main() -> None:
    p = parser(__doc__, [d for d in STANDARD if d != "obd"], FIXED)
    p.set_defaults(models=["deepfm", "ipnn"], calibration="auto")
    p.add_argument("--budget", type=float, default=1.0, help="epochs of each candidate's trial")
    p.add_argument("--report", default="race_selection", help="benchmarks/results/REPORT.json")
    args = p.parse_args()
    done = run_all(jobs(args, FIXED), args.runs_file, args.jobs)
    trials_dir = (
        Path(CACHE)
        / "race-trials"
        / fingerprint([RUNS_VERSION, args.batch_size, args.budget, args.calibration])
    )
    opts = {"epochs": args.epochs, "batch_size": args.batch_size, "calibration": args.calibration}
    grid = [(d, m, s) for d in args.datasets for m in args.models for s in range(args.seeds)]
    with ProcessPoolExecutor(args.jobs) as pool:
        paths = pool.map(trial_scores,
                         [run_config(d, m, {"name": "race"}, s, opts) for d, m, s in grid],
                         [args.budget] * len(grid),
                         [trials_dir / f"{d}_{m}_{s}.npz" for d, m, s in grid])  # fmt: skip
        chosen = {
            (d, m, s): picks(DATASETS[d].get("task", "binary"), dict(np.load(path)), s)
            for (d, m, s), path in zip(grid, paths, strict=True)
        }
    cells = {}
    for d in args.datasets:
        for m in args.models:
            test = {c: [done[key_of(args, d, m, c, s)]["test"] for s in range(args.seeds)]
                    for c in FIXED}  # fmt: skip
            seeds = [chosen[(d, m, s)] for s in range(args.seeds)]
            cells[f"{d}/{m}"] = cell_table(seeds, test)
    print_markdown(cells)
    report(args.report, {"settings": vars(args), "cells": cells})


if __name__ == "__main__":
    main()
