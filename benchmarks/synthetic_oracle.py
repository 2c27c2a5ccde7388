"""How close DeepFM gets to the best possible AUC: on synthetic data that knows each row's true
click probability, compare DeepFM's test AUC with the Bayes-optimal AUC of the same test rows.

    python benchmarks/synthetic_oracle.py [--rows 2000000] [--fields 10] [--cardinality 100]

The defaults give every value enough rows to be learnable: with Criteo's shape (39 fields of 1000
Zipf-distributed values) most of the gap is the estimation error of rare values, which no model
closes (a one-hot logistic regression fit by scikit-learn is as far from the oracle there).
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from _machine import report

from recloss.config import config_from_dict
from recloss.data import prepare_dataset
from recloss.metrics import evaluate
from recloss.runs import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--fields", type=int, default=10)
    parser.add_argument("--cardinality", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--loss", default="ce")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_from_dict(
            {
                "data": {
                    "dataset": "synthetic",
                    "cache_dir": f"{tmp}/cache",
                    "synthetic": {
                        "rows": args.rows,
                        "fields": args.fields,
                        "cardinality": args.cardinality,
                        "seed": 0,
                    },
                },
                "model": {"name": "deepfm"},
                "loss": {"name": args.loss},
                "train": {"epochs": args.epochs, "batch_size": 4096, "patience": 1},
                "out": f"{tmp}/runs",
            }
        )
        record = train(cfg)
        test = prepare_dataset(cfg.data, progress=False).split("test")
        y = np.asarray(test.y, dtype=np.int64)
        oracle = evaluate("binary", y, np.asarray(test.extra["p_true"]))
    model = record.test
    figures = {
        "rows": args.rows,
        "fields": args.fields,
        "cardinality": args.cardinality,
        "loss": args.loss,
        "epochs_run": record.epochs,
        "deepfm_test_auc": model["auc"],
        "bayes_optimal_test_auc": oracle["auc"],
        "auc_gap": oracle["auc"] - model["auc"],
        "deepfm_test_logloss": model["logloss"],
        "bayes_optimal_test_logloss": oracle["logloss"],
    }
    print(
        f"DeepFM test AUC {model['auc']:.4f} | Bayes-optimal {oracle['auc']:.4f} | "
        f"gap {figures['auc_gap']:.4f} (target <= 0.01)"
    )
    print(f"DeepFM logloss {model['logloss']:.4f} | Bayes-optimal {oracle['logloss']:.4f}")
    report("synthetic_oracle", figures)


if __name__ == "__main__":
    main()
