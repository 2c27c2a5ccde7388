"""A finished run's best model, used: its metrics on new rows, its predictions, written.

`data` is the run's test split (None), a file of the run's format encoded with its vocabularies,
or in-memory rows; `train_data` the rows an in-memory run was trained on.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import torch

from recloss.atomic import file_in_the_way, write_atomic
from recloss.calibration import Calibration
from recloss.classes import ClassValue
from recloss.config import RunConfig
from recloss.data import PreparedDataset, SplitArrays
from recloss.data.keep import read_kept_columns
from recloss.data.prepare import NoRows
from recloss.errors import CompatibilityError, ConfigError, DataError
from recloss.metrics import evaluate as metrics_of
from recloss.models import RecModel
from recloss.rundir import RunDir
from recloss.runs.online import make_model
from recloss.runs.single import Rows, trained_data
from recloss.training import checkpoint, predict_split, resolve_device
from recloss.training.evaluate import group_column, known_group_auc

STDOUT = "-"  # the output that writes CSV to standard output


def _rows(
    dataset: PreparedDataset, data: str | Path | Rows | None, labeled: bool | None = None
) -> SplitArrays:
    """The test split, a file encoded with the run's vocabularies, or in-memory rows.

    A file or frame without the label column (`labeled=None` detects it) gives unlabeled rows.
    """
    if data is None:
        return dataset.split("test")
    if isinstance(data, (str, Path)):
        return dataset.encode_file(str(data), labeled=labeled)
    return dataset.encode_frame(data, labeled=labeled)


@dataclass(frozen=True)
class BestModel:
    """A run's best weights on its device, with what scoring needs."""

    cfg: RunConfig
    dataset: PreparedDataset
    model: RecModel
    device: torch.device
    calibration: Calibration | None  # a finished run's fitted map, if it has one

    def scores(self, split: SplitArrays) -> np.ndarray:
        batch_size = self.cfg.train.eval_batch_size
        return predict_split(self.model, split, batch_size, self.device, self.calibration)


def best_model(folder: RunDir, train_data: Rows | None) -> BestModel:
    """The best epoch's model of the run in `folder`, with its data set and calibration map."""
    cfg = folder.read_config()
    if not folder.best.is_file():
        raise CompatibilityError(
            f"{folder.path}: no best model ({folder.BEST}): the run stopped before its first "
            f"epoch ended, or the file was removed; recloss train --resume {folder.path} "
            "continues it"
        )
    dataset = trained_data(folder, cfg, train_data, "train_data")
    device = resolve_device(cfg.train.device)
    model = make_model(cfg, dataset, device)
    checkpoint.restore(model, checkpoint.load(folder.best, device), folder.best)
    calibration = folder.read_record().calibration if folder.is_finished() else None
    return BestModel(cfg, dataset, model, device, calibration)


def evaluate(
    run_dir: str | Path,
    data: str | Path | Rows | None = None,
    *,
    train_data: Rows | None = None,
    group: str | None = None,
) -> dict[str, float]:
    """Metrics of a run's best model on its test split, a new file, or in-memory rows.

    `train_data`: the rows an in-memory run was trained on (its vocabularies come from them).
    `group`: a categorical field (`user_id`; default: the run's `train.gauc_by`) whose values
    group the rows for `gauc`, the AUC within each group weighted by its rows, with
    `gauc_groups`, the groups of both classes it averages, and `gauc_rows`, their share of the
    rows (rows whose value is missing or unknown to the model belong to no group).
    """
    best = best_model(RunDir(run_dir), train_data)
    schema = best.dataset.schema
    group = group or best.cfg.train.gauc_by
    field = group_column(schema, group, f"--group {group}") if group is not None else None
    split = _rows(best.dataset, data)
    if not split.labeled:  # refused before any scoring
        raise DataError(f"{split.source or 'frame'} has no label column: use recloss predict")
    y, scores = np.asarray(split.y, np.int64), best.scores(split)
    metrics = metrics_of(schema.task, y, scores)
    if field is not None:
        found = known_group_auc(y, scores, split.x_cat[:, field])
        metrics |= {"gauc": found.value, "gauc_groups": found.groups, "gauc_rows": found.row_share}
    return metrics


def predict(
    run_dir: str | Path,
    data: str | Path | Rows | None = None,
    *,
    train_data: Rows | None = None,
    labeled: bool | None = None,
) -> np.ndarray:
    """Probabilities of a run's best model, row by row in order: `[N]` (binary) or `[N, C]`.

    `data` need not have the label column (a Criteo `test.txt`, an Avazu `test.csv`, a table
    without it): `labeled=None` detects that, True requires the label, False reads without
    it. Bad lines follow the run's `data.on_bad_line`; skipped ones get no row, the others
    keep their order.
    """
    best = best_model(RunDir(run_dir), train_data)
    return _scores(best, data, labeled)[0]


@dataclass(frozen=True)
class WrittenPredictions:
    path: Path
    rows: int
    skipped_lines: int  # bad lines that got no row (`data.on_bad_line: skip`)


def predict_to_file(
    run_dir: str | Path,
    data: str | Path | Rows,
    output: str | Path,
    *,
    train_data: Rows | None = None,
    labeled: bool | None = None,
    keep: Sequence[str] = (),
) -> WrittenPredictions:
    """`predict`, written to `output` (`save_predictions`), with the rows and skipped lines;
    `keep`: columns of `data` written as they are before the predictions (ids), row for row.

    `output` and `keep` are checked before any row is scored, which on a large file takes
    minutes."""
    check_output(output)
    best = best_model(RunDir(run_dir), train_data)
    kept = _kept_columns(best, data, keep, labeled) if keep else None
    scores, bad_lines = _scores(best, data, labeled)
    table = best.cfg.data.table
    classes = None if table is None else table.classes
    path = save_predictions(scores, output, classes, kept)
    return WrittenPredictions(path, len(scores), bad_lines)


def _scores(
    best: BestModel, data: str | Path | Rows | None, labeled: bool | None
) -> tuple[np.ndarray, int]:
    """The best model's probabilities for `data`, and the bad lines skipped; a file without a
    data row (a header alone: a batch with nothing in it yet) has none to score."""
    try:
        rows = _rows(best.dataset, data, labeled)
    except NoRows as empty:
        classes = best.dataset.schema.num_classes
        shape = (0,) if best.dataset.schema.task == "binary" else (0, classes)
        return np.empty(shape, np.float32), empty.bad_lines
    return best.scores(rows), rows.bad_lines


def _kept_columns(
    best: BestModel, data: str | Path | Rows | None, keep: Sequence[str], labeled: bool | None
) -> pa.Table:
    if data is None:
        raise ConfigError("--keep: columns are kept from a file given with --data")
    schema, table = best.dataset.schema, best.cfg.data.table
    width = None if schema.task == "binary" else schema.num_classes
    ours = prediction_columns(width, None if table is None else table.classes)
    for name in keep:
        if name in ours:
            raise ConfigError(f"--keep {name}: the name of a predictions column; rename it")
    reader, cfg = best.dataset.reader_of(data, labeled)
    return read_kept_columns(reader, keep, cfg.on_bad_line, cfg.chunk_rows)


def check_output(output: str | Path) -> None:
    """ConfigError unless predictions can go to `output`: a .csv or .parquet file name whose
    folder is a folder (or will be made), or `-`, standard output."""
    if str(output) == STDOUT:
        return
    path = Path(output).expanduser()
    if path.suffix not in (".csv", ".parquet"):
        raise ConfigError(
            f"--output {path}: give a .csv or .parquet file name, or - (standard output)"
        )
    if path.is_dir():
        raise ConfigError(f"--output {path}: a folder stands there; give a file name")
    blocking = file_in_the_way(path.parent)
    if blocking is not None:
        raise ConfigError(f"--output {path}: {blocking} is a file, not a folder")


def save_predictions(
    probabilities: np.ndarray,
    path: str | Path,
    classes: Sequence[ClassValue] | None = None,
    kept: pa.Table | None = None,
) -> Path:
    """Write predictions as CSV or Parquet (by suffix), or CSV to standard output (`-`): a
    column `probability` (of the positive class), or one per class, `p_0` .. `p_{C-1}`, or
    named by `classes` (`data.table.classes`: `p_1` .. `p_5` for ratings 1-5); after the
    columns of `kept` (ids), one row of it per prediction."""
    check_output(path)
    probs = np.asarray(probabilities)
    names = prediction_columns(probs.shape[1] if probs.ndim == 2 else None, classes)
    columns = dict(zip(names, [probs] if probs.ndim == 1 else probs.T, strict=True))
    if kept is not None:
        if kept.num_rows != len(probs):
            raise ValueError(f"{kept.num_rows} kept rows for {len(probs)} predictions")
        columns = {**dict(zip(kept.column_names, kept.columns, strict=True)), **columns}
    table = pa.table(columns)
    path = Path(path).expanduser()
    if str(path) == STDOUT:
        _write_csv_to_stdout(table)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        write_atomic(path, lambda tmp: _write_csv_file(table, tmp))
    else:
        write_atomic(path, lambda tmp: pq.write_table(table, tmp))
    return path


def prediction_columns(classes_out: int | None, classes: Sequence[ClassValue] | None) -> list[str]:
    """The predictions' column names: `probability` (binary: `classes_out` None), else `p_0` ..
    `p_{C-1}`, or `p_` and each of the run's `data.table.classes`."""
    if classes_out is None:
        return ["probability"]
    return [f"p_{name}" for name in (range(classes_out) if classes is None else classes)]


def _write_csv_to_stdout(table: pa.Table) -> None:
    """The CSV on standard output: its bytes where it has them (a terminal, a pipe), else as
    text (a notebook's output stream has no `buffer`)."""
    binary = getattr(sys.stdout, "buffer", None)
    if binary is None:
        encoded = io.BytesIO()
        _write_csv(table, encoded)
        sys.stdout.write(encoded.getvalue().decode())
    else:
        _write_csv(table, binary)
    sys.stdout.flush()


def _write_csv_file(table: pa.Table, path: Path) -> None:
    with path.open("wb") as out:
        _write_csv(table, out)


STRUCTURAL = '[",\r\n]'  # characters a CSV field must be quoted for


def _write_csv(table: pa.Table, out: BinaryIO) -> None:
    """CSV as pandas writes it: a field in quotes only where it needs them (pyarrow would quote
    every name and every text value, ids included)."""
    header = ",".join(
        _quoted(name) if re.search(STRUCTURAL, name) else name for name in table.column_names
    )
    out.write(f"{header}\n".encode())
    texts = [
        c for c in table.columns if pa.types.is_string(c.type) or pa.types.is_large_string(c.type)
    ]
    needed = any(pc.any(pc.match_substring_regex(c, STRUCTURAL)).as_py() for c in texts)
    quoting = "needed" if needed else "none"
    pa_csv.write_csv(table, out, pa_csv.WriteOptions(include_header=False, quoting_style=quoting))


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


__all__ = [
    "BestModel",
    "WrittenPredictions",
    "best_model",
    "check_output",
    "evaluate",
    "predict",
    "predict_to_file",
    "save_predictions",
]
