"""AutoLoss with its defaults against every fixed candidate loss (focal, KL, hinge, CE), paired.

DeepFM and IPNN on MovieLens-100K (5-class ratings and binary rating >= 4), the UCI Adult census
table, the Open Bandit Dataset sample (real clicks, CTR about 0.4%), and synthetic Criteo-shaped
data, balanced and imbalanced (positive rate 0.02); 10 epochs, batch 512, patience 2, the same
splits and seeds for every method. Per cell: each method's mean and std, AutoLoss's paired
per-seed differences to every fixed loss with paired t-tests, AUC and logloss, and the goals
checked: AutoLoss mean AUC >= the best fixed candidate's - 0.001, mean logloss <= CE's + 0.002.
Runs go to parallel single-threaded worker processes; finished runs are kept in a JSON-lines file
(shared with `autoloss_ablation.py`), so an interrupted benchmark continues where it stopped.

    python benchmarks/autoloss_quality.py [--seeds 5] [--jobs 2] [--datasets adult obd]
"""

from __future__ import annotations

from _machine import report
from _paired import STANDARD, paired_table, parser
from _paired_stats import FIXED, print_goals_markdown

METHODS = ["autoloss", *FIXED]


def main() -> None:
    p = parser(__doc__, STANDARD, METHODS)
    p.set_defaults(models=["deepfm", "ipnn"])
    args = p.parse_args()
    cells = paired_table(args)
    print_goals_markdown(cells)
    report("autoloss_quality", {"settings": vars(args), "cells": cells})


if __name__ == "__main__":
    main()
