"""In-memory rows (a pandas DataFrame, an Arrow table, a mapping of columns) as an Arrow reader.

pandas is optional: a DataFrame is recognised by duck typing and converted with
`pyarrow.Table.from_pandas`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from recloss.config import DataConfig, TableSchema
from recloss.data.schema import Task
from recloss.data.tables import ArrowReader, missing_table
from recloss.errors import ConfigError, DataError

FRAME = "frame"  # the in-memory source's name in messages and cache folders


def frame_reader(
    data: Any, cfg: DataConfig, task: Task, labeled: bool | None = True
) -> ArrowReader:
    """A reader of in-memory rows whose columns' roles `cfg.table` gives.

    `labeled`: True requires the label column, False leaves it out, None reads it if present.
    """
    rows = arrow_table(data)
    if cfg.table is None:
        raise missing_table("in-memory data", FRAME, rows.column_names)
    _check_not_index(data, cfg.table)
    return ArrowReader(rows, cfg.table, task, FRAME, labeled)


def _check_not_index(data: Any, table: TableSchema) -> None:
    """ConfigError for a column `table` names that is a pandas frame's index (not converted)."""
    index = {name for name in getattr(getattr(data, "index", None), "names", ()) if name}
    if not index:  # not a pandas frame, or one whose index has no name
        return
    columns = set(data.columns)
    for key in ("label", "categorical", "numeric"):
        names = getattr(table, key)
        for name in [names] if isinstance(names, str) else names:
            if name in index and name not in columns:
                raise ConfigError(
                    f"data.table.{key}: {name!r} is the frame's index, not one of its columns; "
                    "pass frame.reset_index()",
                    f"data.table.{key}",
                )


def arrow_table(data: Any) -> pa.Table:
    """An Arrow table of a DataFrame, an Arrow table or batch, or a mapping of columns."""
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif isinstance(data, Mapping):
        table = _from_columns(data)
    elif all(hasattr(data, a) for a in ("columns", "dtypes", "iloc")):  # a pandas DataFrame
        table = _from_pandas(data)
    elif hasattr(data, "__arrow_c_stream__"):  # other data frames (polars ...)
        table = pa.table(data)
    else:
        raise TypeError(
            "data must be a pandas DataFrame, a pyarrow.Table or a mapping of column name to "
            f"1-D array, not {type(data).__name__}"
        )
    if table.num_columns == 0:
        raise DataError(f"{FRAME}: no columns")
    return table


def _from_pandas(frame: Any) -> pa.Table:
    names = list(frame.columns)
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise DataError(
            f"{FRAME}: column {twice!r} appears {names.count(twice)} times; rename all but one"
        )
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as err:
        for name in frame.columns:  # which column, said plainly rather than in Arrow's tuple
            try:
                pa.Array.from_pandas(frame[name])
            except (pa.ArrowException, TypeError, ValueError) as column_err:
                raise DataError(
                    f"{FRAME}: column {name!r}: {_one_line(column_err.args[0])}; give the column "
                    "values of one type (text: .astype(str))"
                ) from None
        raise DataError(f"{FRAME}: {_one_line(err)}") from None


def _from_columns(columns: Mapping) -> pa.Table:
    arrays: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name, values in columns.items():
        if not isinstance(name, str):
            raise DataError(f"{FRAME}: column names must be strings, not {name!r}")
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            arrays[name] = values
            continue
        if isinstance(values, np.ndarray) and values.ndim != 1:
            raise DataError(
                f"{FRAME}: column {name!r} has shape {values.shape}; give one 1-D array per column"
            )
        try:
            # NaN among the strings of an object column is a missing value, as pandas has it
            mixed = isinstance(values, np.ndarray) and values.dtype == object
            arrays[name] = pa.array(values, from_pandas=mixed)
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise DataError(f"{FRAME}: column {name!r}: {_one_line(err)}") from None
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        first, *others = lengths
        other = next(n for n in others if lengths[n] != lengths[first])
        raise DataError(
            f"{FRAME}: column {other!r} has {lengths[other]} rows, "
            f"column {first!r} has {lengths[first]}"
        )
    return pa.table(arrays)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())
