"""One results row per finished run, and the bench's results.csv and results.json."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from recloss.rundir import RunRecord, write_text

COLUMNS = (
    "dataset", "model", "method", "source", "seed", "status", "test_auc", "test_logloss",
    "test_accuracy", "test_gauc", "best_valid_auc", "best_epoch", "epochs", "train_seconds",
    "wall_seconds", "time_to_best_seconds", "search_seconds", "retrain_seconds", "run_dir",
)  # fmt: skip


def run_row(record: RunRecord) -> dict[str, Any]:
    """The results-table figures of one finished run."""
    return {
        "test_auc": record.test["auc"],
        "test_logloss": record.test["logloss"],
        "test_accuracy": record.test.get("accuracy"),
        "test_gauc": record.test.get("gauc"),  # with `train.gauc_by`
        "best_valid_auc": record.best_valid["auc"],
        "best_epoch": record.best_epoch,
        "epochs": record.epochs,
        "train_seconds": record.train_seconds,
        "wall_seconds": record.wall_seconds,
        "time_to_best_seconds": record.time_to_best,
        # empty, not 0, for one-stage methods: the table tells "no search stage" from "no time"
        "search_seconds": record.search_seconds if record.search is not None else None,
        "retrain_seconds": record.retrain_seconds,
    }


def summary_line(row: dict[str, Any]) -> str:
    """One line per finished cell for the bench's log."""
    acc = f" acc {row['test_accuracy']:.4f}" if row.get("test_accuracy") is not None else ""
    return (
        f"test auc {row['test_auc']:.4f} logloss {row['test_logloss']:.4f}{acc} | best valid "
        f"auc {row['best_valid_auc']:.4f} after {row['time_to_best_seconds']:.1f}s | "
        f"{row['train_seconds']:.1f}s training"
    )


def write_results(rows: list[dict[str, Any]], root: Path) -> tuple[Path, Path]:
    """results.csv and results.json in `root`, each written whole or not at all."""
    csv_path, json_path = root / "results.csv", root / "results.json"
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(csv_path, table.getvalue())
    write_text(json_path, json.dumps(rows, indent=1, allow_nan=True))
    return csv_path, json_path


__all__ = ["COLUMNS", "run_row", "summary_line", "write_results"]
