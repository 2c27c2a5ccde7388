"""Ablation of the AutoLoss remedies: each variant against the fixed candidates, paired seeds.

Variants (`_paired.VARIANTS`): the default (`autoloss`: `variant: auto`, which is `normalised` on
binary tasks: step-size normalisation to CE, at least 8 controller steps per epoch, 8 warm-up
controller steps, CE at 0.97 of the prior); the same with CE at 0.9 of the prior (`prior-0.9`, the
default until this ablation measured 0.97 better); the paper's form (`paper`); the paper's form
with only the CE-centred prior (`prior`); step-size normalisation alone at controller learning
rate 1e-2 (`norm-lr1e-2`); `normalised` at 1e-2 with an example-weight output
(`normalised-ew-lr1e-2`), with the pairwise validation objective (`pairwise-lr1e-2`), and with both
(`pairwise-ew-lr1e-2`); the default and `pairwise-lr1e-2` with the hypergradient taken over the
window of model steps since the last controller step (`window`, `window-pairwise-lr1e-2`); the
default with the calibrated validation objective (`calibrated`; at controller learning rates
1e-2, 3e-2, 5e-2 and 1e-1, `calibrated-lr1e-2` .. `calibrated-lr1e-1`; at 3e-2 with `horizon:
window`, `calibrated-window-lr3e-2`) and with the Adam-preconditioned unroll (`adam-unroll`,
`adam-unroll-lr1e-2`); the default on all rows of a
batch instead of the first 1024 (`all-rows`; the same below batch 1024) and both at controller
learning rate 1e-2 (`lr1e-2`, `all-rows-lr1e-2`). The two-stage baselines (`bohb`, `darts`) and the
same searches retrained with AutoLoss starting at the searched mixture (`bohb-autoloss`,
`darts-autoloss`: `loss.params.retrain: autoloss`) can join too, and so can the race of the
candidates (`race`: one epoch each; `race-0.25`: a quarter). `--calibration platt` trains every
run with `train.calibration: platt` (the map fitted on validation) and reports its uncalibrated
logloss beside. Runs share the settings and the runs file of `autoloss_quality.py` (10 epochs,
batch 512, patience 2; `--runs-file` another).
Every method trains on the same splits with the same seeds; per cell the table gives each
variant's mean test AUC and logloss and its paired per-seed difference to CE and to the best
fixed loss.

    python benchmarks/autoloss_ablation.py [--seeds 5] [--jobs 2] [--datasets ml100k-binary]
        [--report autoloss_ablation] [--pairs autoloss:all-rows ...] [--calibration platt]
        [--goals race ...]
"""

from __future__ import annotations

from _machine import report
from _paired import VARIANTS, paired_table, parser
from _paired_stats import FIXED, compare, fmt_diff, print_goals_markdown


def main() -> None:
    methods = [*FIXED, *VARIANTS]
    p = parser(__doc__, ["ml100k-binary", "synthetic"], methods)
    p.add_argument("--report", default="autoloss_ablation", help="the results file's name")
    p.add_argument("--pairs", nargs="*", default=[], metavar="A:B",
                   help="also give method A minus method B, paired, in every cell")  # fmt: skip
    p.add_argument("--goals", nargs="*", default=[], metavar="METHOD",
                   help="also a row per cell for each METHOD against the goals, with its mean "
                        "weights and its time over CE's")  # fmt: skip
    args = p.parse_args()
    cells = paired_table(args)
    for method in args.goals:
        print_goals_markdown(cells, method, details=True)
    for cell in cells:
        cell["pairs"] = {pair: paired_pair(cell, *pair.split(":")) for pair in args.pairs}
    report(args.report, {"settings": vars(args), "cells": cells})


def paired_pair(cell: dict, a: str, b: str) -> dict | None:
    """`a - b` in one cell (AUC and logloss, paired per seed), printed; None without the runs."""
    versus = compare(cell["methods"], a, [b]).get(b)
    if versus is not None:
        print(f"{cell['data']} {cell['model']} {a} - {b}: "
              f"AUC {fmt_diff(versus['auc'])}, logloss {fmt_diff(versus['logloss'])}")  # fmt: skip
    return versus


if __name__ == "__main__":
    main()
