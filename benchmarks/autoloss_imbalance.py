"""AutoLoss on strongly imbalanced binary data against CE, the fixed candidates, DARTS and SLF.

Synthetic Criteo-shaped data with positive rate 0.02 and the Open Bandit Dataset sample (real
clicks, CTR about 0.4%); DeepFM and IPNN, the quality benchmark's settings (10 epochs, batch 512,
patience 2) and runs file; the same splits and seeds for every method, paired per-seed
differences to CE and to the best fixed loss.

    python benchmarks/autoloss_imbalance.py [--seeds 5] [--datasets synthetic-imbalanced obd]
"""

from __future__ import annotations

from _machine import report
from _paired import paired_table, parser
from _paired_stats import FIXED

METHODS = [*FIXED, "darts", "slf", "autoloss"]


def main() -> None:
    p = parser(__doc__, ["synthetic-imbalanced", "obd"], METHODS)
    p.set_defaults(models=["deepfm", "ipnn"])
    args = p.parse_args()
    cells = paired_table(args)
    report("autoloss_imbalance", {"settings": vars(args), "cells": cells})


if __name__ == "__main__":
    main()
