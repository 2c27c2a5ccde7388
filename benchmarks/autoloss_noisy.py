"""Noisy training labels: CE, the fixed candidates, DARTS, SLF and AutoLoss variants, paired seeds.

A share of the TRAINING labels is flipped (`uniform`: either class, `positives`: positives to
negatives only, `feature`: either class, in the rows of half the values of the widest field only;
`recloss.data.noise`), validation and test stay clean. Same settings as
`autoloss_quality.py` (10 epochs, batch 512), the same splits and seeds for every method; per
cell each method's mean test AUC and logloss and its paired difference to CE and to the best fixed
loss. `ce-channel` and `autoloss-channel`: CE and AutoLoss with `train.label_noise: channel`
(trained through flip rates estimated against the validation split). `ce-oracle` is a ceiling,
not a method: CE trained through each row's true flip rates (`_noise_oracle.py`), which no method
knows. Also plots the per-example weight the controller learned as a function of `(y, q)`
(variants with an example-weight output), averaged over seeds.

    python benchmarks/autoloss_noisy.py [--seeds 5] [--datasets adult ml100k-binary]
    python benchmarks/autoloss_noisy.py --noise feature:0.2   # flips that depend on a feature
"""

from __future__ import annotations

from pathlib import Path

from _machine import RESULTS, report
from _noise_oracle import ORACLE
from _paired import jobs, load_done, parser, run_all
from _paired_stats import FIXED, print_markdown, print_table, summarise

METHODS = [*FIXED, "gce", "darts", "slf", "autoloss", "autoloss+gce", "normalised-ew-lr1e-2",
           "pairwise-ew-lr1e-2", "ce-channel", "autoloss-channel", ORACLE]  # fmt: skip
NOISE = ["uniform:0.2", "uniform:0.4", "positives:0.2", "positives:0.4"]


def plot_weights(
    cells: list[dict], rows: dict[str, dict], job_list: list[dict], path: Path
) -> None:
    """Mean learned example weight over q for y = 0 and y = 1, one panel per noise setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, list[dict]] = {}
    for j in job_list:
        row = rows.get(j["key"])
        if row and "weight_y0" in row.get("curve", {}):
            curves.setdefault(j["setting"], []).append(row["curve"])
    if not curves:
        return
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for ax, (setting, found) in zip(axes[0], curves.items(), strict=True):
        q = found[0]["q"]
        for y in (0, 1):
            mean = [sum(c[f"weight_y{y}"][i] for c in found) / len(found) for i in range(len(q))]
            ax.plot(q, mean, label=f"label y = {y}")
        ax.set(title=f"{setting} ({len(found)} seeds)", xlabel="prediction q", yscale="log")
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.legend()
    axes[0][0].set_ylabel("learned example weight (mean 1 over q)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    p = parser(__doc__, ["adult"], METHODS)
    p.add_argument("--noise", nargs="+", default=NOISE)
    p.set_defaults(runs_file=RESULTS / "autoloss_noisy_runs.jsonl")
    args = p.parse_args()
    all_jobs, tables = [], []
    for setting in args.noise:
        mode, rate = setting.split(":")
        setting_jobs = jobs(args, args.methods, {"mode": mode, "rate": float(rate)})
        for j in setting_jobs:
            j["setting"] = setting
        all_jobs += setting_jobs
    all_jobs.sort(key=lambda j: j["seed"])  # seed-major: partial results stay paired
    rows = run_all(all_jobs, args.runs_file, args.jobs) if all_jobs else load_done(args.runs_file)
    for setting in args.noise:
        setting_jobs = [j for j in all_jobs if j["setting"] == setting]
        cells = summarise(setting_jobs, rows, args.methods)
        for cell in cells:
            cell["noise"] = setting
            cell["data"] = f"{cell['data']} {setting}"
        print_table(cells)
        tables += cells
    print_markdown(tables)
    # named by what differs from the defaults, so that other runs keep the default figures
    suffix = "" if args.datasets == ["adult"] else "_" + "_".join(args.datasets)
    if args.models != ["deepfm"]:
        suffix += "_" + "_".join(args.models)
    if args.noise != NOISE:
        suffix += "_" + "_".join(s.replace(":", "") for s in args.noise)
    plot_weights(tables, rows, all_jobs, RESULTS / f"autoloss_noisy_weights{suffix}.png")
    report(f"autoloss_noisy{suffix}", {"settings": vars(args), "cells": tables})


if __name__ == "__main__":
    main()
