"""Readers of rows whose columns `DataConfig.table` names: CSV, Parquet and in-memory tables.

Built with `labeled`: True requires the label column; False reads the rows without it; None
reads it when it is there (a header, a Parquet schema or a table's columns name it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recloss.config import TableSchema
from recloss.data.badlines import BadLines, RowChecks
from recloss.data.cache import table_identity
from recloss.data.chunks import (
    ALL,
    OWN_SPLITS,
    Chunk,
    Layout,
    Reader,
    column_list,
    kept_names,
    no_labels,
    split_parts,
    with_label,
)
from recloss.data.convert import binary_label, class_label, listed_label, to_float
from recloss.data.partitions import partition_of, with_partition
from recloss.data.schema import Task
from recloss.data.text import TextFormat, arrow_encoding, column_names, read_text
from recloss.errors import ConfigError, DataError
from recloss.names import also_closest


def check_columns(
    path: Path | str, have: Sequence[str], table: TableSchema, labeled: bool = True
) -> None:
    """Every column the table config names (but the label, unlabeled) must exist in the file,
    once, and it must name a feature column."""
    if not table.categorical and not table.numeric:
        raise ConfigError(
            "data.table: name at least one categorical or numeric column "
            f"({path} has the columns {column_list(have)})"
        )
    for key in ("label",) * labeled + ("categorical", "numeric"):
        names = getattr(table, key)
        for name in [names] if isinstance(names, str) else names:
            if name not in have:
                shown = column_list(have)
                raise ConfigError(
                    f"data.table.{key}: column {name!r} is not in {path} (columns: {shown})"
                    + (also_closest(name, have) or _separator_hint(have))
                )
            if have.count(name) > 1:
                raise DataError(
                    f"{path}: column {name!r} appears {have.count(name)} times; rename all but "
                    "one, so that data.table names one column"
                )


def missing_table(needing: str, source: str, have: Sequence[str] | None) -> ConfigError:
    """The error for a table read without `data.table`, listing the columns it could name."""
    listed = f"; {source} has the columns {column_list(have)}" if have else ""
    return ConfigError(
        f"data.table: {needing} needs a table schema (label, categorical and numeric columns)"
        + listed
        + _separator_hint(have or ())
    )


def csv_columns(path: Path) -> tuple[str, ...]:
    """A CSV file's column names as a header read with the table defaults gives them."""
    return column_names(path, TextFormat(delimiter=",", header=True, encoding="utf-8", quoted=True))


def parquet_columns(path: Path) -> list[str]:
    """A Parquet file's columns, then those its partition folders name."""
    own, partition = _parquet_layout(path)
    return [*own, *partition]


def _parquet_layout(path: Path) -> tuple[list[str], dict[str, str]]:
    """A Parquet file's own columns, and the values its partition folders give the columns it
    lacks (a file's own column of a partition's name wins)."""
    own = _parquet_file(path).schema_arrow.names
    return own, {k: v for k, v in partition_of(path).items() if k not in own}


def _separator_hint(have: Sequence[str]) -> str:
    """Where one column's name holds another separator, the setting that splits it."""
    if len(have) != 1:
        return ""
    found = next((sep for sep in (";", "\t", "|", ",") if sep in have[0]), None)
    return f"; is the separator {found!r}? set data.table.separator" if found else ""


def table_label(column: pa.Array, checks: RowChecks, task: Task, table: TableSchema) -> np.ndarray:
    what = f"label {table.label}"
    if table.classes is not None:
        return listed_label(column, checks, what, table.classes)
    if task == "binary":
        advice = "; name other labels in data.table.classes, negative first: [-1, 1], [no, yes]"
        return binary_label(_truth_as_digits(column), checks, what, advice)
    return class_label(column, checks, what, "; name other labels in data.table.classes")


def _truth_as_digits(column: pa.Array) -> pa.Array:
    """`true`/`false` in any case (a boolean column's text, pandas' `True`) as `1`/`0`."""
    lowered = pc.utf8_lower(column)
    one, zero = pa.scalar("1", column.type), pa.scalar("0", column.type)
    return pc.if_else(
        pc.equal(lowered, "true"), one, pc.if_else(pc.equal(lowered, "false"), zero, column)
    )


class TableReader(Reader):
    """Shared by CSV and Parquet: columns named by `DataConfig.table`."""

    def __init__(
        self, files: dict[str, Path] | Sequence[Path], table: TableSchema, task: Task
    ) -> None:
        self.files, self._parts = split_parts(files)
        self.parts = OWN_SPLITS if isinstance(files, dict) else ALL
        self.table = table
        self.task = task
        self.num_classes = _num_classes(table, task)
        self.layout = Layout(cat=tuple(table.categorical), num=tuple(table.numeric))
        self.wanted = (table.label, *table.categorical, *table.numeric)

    def labels(self, column: pa.Array, checks: RowChecks) -> np.ndarray:
        """Class indices of a typed label column (Parquet, in-memory rows)."""
        return table_label(pc.cast(column, pa.string()), checks, self.task, self.table)

    def keep_columns(self, names: Sequence[str]) -> None:
        self.keep = kept_names(names, self._headers, self._named_files)

    @property
    def read_columns(self) -> list[str]:
        """The columns read: the table's (`wanted`), then those kept as they are, once each."""
        return list(dict.fromkeys((*self.wanted, *self.keep)))

    @property
    def _named_files(self) -> Sequence[str]:
        return [str(path) for path in self.files]

    def _read_labels(self, labeled: bool | None, names: Sequence[str]) -> None:
        """Read the label column as asked, or (None) when `names`, the first file's, have it."""
        self.labeled = with_label(labeled, names, self.table.label)
        if not self.labeled:
            self.wanted = (*self.table.categorical, *self.table.numeric)


def _num_classes(table: TableSchema, task: Task) -> int | None:
    """2 for a binary task, the listed classes' number, or None: the largest label + 1."""
    if table.classes is None:
        return 2 if task == "binary" else None
    if task == "binary" and len(table.classes) != 2:
        raise ConfigError(
            f"data.table.classes: a binary task has two classes, [negative, positive], not "
            f"{len(table.classes)}; for more, set data.task: multiclass"
        )
    return len(table.classes)


def _positions_without(label: str, width: int) -> tuple[str, ...]:
    """Names of a header-less file's `width` columns when the label's position is left out."""
    return tuple(p for p in map(str, range(width + 1)) if p != label)[:width]


class CSVReader(TableReader):
    """Delimited text; without a header, columns are named by position: "0", "1", ...

    Unlabeled, a header lacks the label column; a header-less file lacks the label's position
    (the other columns keep their names), and `labeled=None` finds it lacking a named column.
    """

    def __init__(
        self,
        files: dict[str, Path] | Sequence[Path],
        table: TableSchema,
        task: Task,
        labeled: bool | None = True,
    ) -> None:
        super().__init__(files, table, task)
        self.format = TextFormat(
            delimiter=table.separator,
            header=table.header,
            encoding=arrow_encoding(table.encoding),
            quoted=True,
        )
        names = column_names(self.files[0], self.format)
        if labeled is None and not table.header:
            labeled = all(name in names for name in self.wanted)
        self._read_labels(labeled, names)
        if not self.labeled and not table.header:
            self.format = replace(self.format, columns=_positions_without(table.label, len(names)))
        self._headers = [column_names(path, self.format) for path in self.files]
        for path, have in zip(self.files, self._headers, strict=True):
            check_columns(path, have, table, self.labeled)

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        t = self.table
        for path, part in zip(self.files, self._parts, strict=True):
            with closing(read_text(path, self.format, policy, chunk_rows)) as batches:
                for batch in batches:
                    y = (
                        table_label(batch.column(t.label), batch.checks, self.task, t)
                        if self.labeled
                        else no_labels(len(batch))
                    )
                    num = [to_float(batch.column(n), batch.checks, n) for n in t.numeric]
                    keep = batch.resolve(policy)
                    cats = [batch.column(c) for c in t.categorical]
                    kept = {n: batch.column(n) for n in self.keep}
                    yield Chunk.kept(cats, num, y, keep, part, kept)


class ParquetReader(TableReader):
    """Parquet files read in record batches; errors name the 1-based row. A file in a partitioned
    folder (`day=2024-01-01/part-0.parquet`) also has the columns its folders name."""

    def __init__(
        self,
        files: dict[str, Path] | Sequence[Path],
        table: TableSchema,
        task: Task,
        labeled: bool | None = True,
    ) -> None:
        super().__init__(files, table, task)
        layouts = [_parquet_layout(path) for path in self.files]
        self._partitions = [partition for _, partition in layouts]
        self._headers = [[*own, *partition] for own, partition in layouts]
        self._read_labels(labeled, self._headers[0])
        for path, have in zip(self.files, self._headers, strict=True):
            check_columns(path, have, table, self.labeled)

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        read = self.read_columns
        for path, part, partition in zip(self.files, self._parts, self._partitions, strict=True):
            wanted = {k: v for k, v in partition.items() if k in read}
            columns = [c for c in read if c not in wanted]
            first = 1
            with (
                closing(_parquet_file(path)) as file,
                closing(file.iter_batches(batch_size=chunk_rows, columns=columns)) as batches,
            ):
                for data in batches:
                    data = self.prepared(with_partition(data, wanted))
                    yield arrow_chunk(self, data, str(path), first, policy, part)
                    first += data.num_rows

    def prepared(self, data: pa.RecordBatch) -> pa.RecordBatch:
        """A record batch as read, before its columns are converted (a subclass's hook)."""
        return data


class ArrowReader(TableReader):
    """An in-memory Arrow table, read exactly like a Parquet file holding the same rows."""

    def __init__(
        self, data: pa.Table, table: TableSchema, task: Task, name: str, labeled: bool | None = True
    ) -> None:
        super().__init__([], table, task)
        self.name = name
        self._read_labels(labeled, data.column_names)
        check_columns(name, data.column_names, table, self.labeled)
        self._headers, self._all = [data.column_names], data
        self.data = data.select(self.read_columns)

    def keep_columns(self, names: Sequence[str]) -> None:
        super().keep_columns(names)
        self.data = self._all.select(self.read_columns)

    @property
    def _named_files(self) -> Sequence[str]:
        return [self.name]

    @property
    def source(self) -> str:
        return self.name

    def identities(self) -> list[dict]:
        return [table_identity(self.data)]

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        # Slices of chunk_rows rows, as Parquet's iter_batches gives them (same float sums).
        for first in range(0, self.data.num_rows, chunk_rows):
            (data,) = self.data.slice(first, chunk_rows).combine_chunks().to_batches()
            yield arrow_chunk(self, data, self.name, first + 1, policy, 0)


def arrow_chunk(
    reader: TableReader, data: pa.RecordBatch, where: str, first: int, policy: BadLines, part: int
) -> Chunk:
    """A chunk of typed Arrow columns (Parquet or in-memory); `first`: row number of row 0."""
    t = reader.table
    for name in reader.wanted:
        _check_one_value_per_row(data.column(name), where, name)
    checks = RowChecks(data.num_rows, where, lambda r: first + r, unit="row ")
    labeled = reader.labeled
    y = reader.labels(data.column(t.label), checks) if labeled else no_labels(data.num_rows)
    num = [_parquet_numeric(data.column(n), checks, n) for n in t.numeric]
    cat = [_parquet_tokens(data.column(c)) for c in t.categorical]
    kept = {n: data.column(n) for n in reader.keep}
    return Chunk.kept(cat, num, y, checks.resolve(policy), part, kept)


def _check_one_value_per_row(column: pa.Array, where: str, name: str) -> None:
    """DataError for a column of lists or structs: a field holds one value per row."""
    if pa.types.is_nested(column.type):
        raise DataError(
            f"{where}: column {name!r} holds {column.type} values; a column is one value per row "
            "(a list per row, a multi-valued field, is not supported)"
        )


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path}: not a readable Parquet file ({err})") from None


def _parquet_tokens(column: pa.Array) -> pa.Array:
    """A typed column's values as text; floats and booleans as pandas writes them to CSV.

    So a frame and the CSV file `DataFrame.to_csv` makes of it share their tokens (`0.5`,
    `1e-05`, `True`; Arrow's own cast gives `0.00001`, `true`), and a model trained on one
    predicts right on the other. NaN is missing. Integral floats (`20.0`, integer ids that pandas
    made floats for their gaps) become `20` when encoded (`encode.integral_as_integer`).
    """
    if pa.types.is_dictionary(column.type):  # a pandas or polars category: its values once
        return pc.take(_parquet_tokens(column.dictionary), column.indices)
    if pa.types.is_string(column.type):
        return column
    if not (pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)):
        return pc.cast(column, pa.string())
    coded = column.dictionary_encode()  # each distinct value formatted once
    values = coded.dictionary.to_numpy(zero_copy_only=False)
    texts = pa.array([None if v != v else str(v) for v in values], pa.string())
    return pc.take(texts, coded.indices)


def _parquet_numeric(column: pa.Array, checks: RowChecks, name: str) -> pa.Array:
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = pc.cast(column, pa.float64())
        return pc.if_else(pc.is_finite(values), values, pa.scalar(None, pa.float64()))
    return to_float(pc.cast(column, pa.string()), checks, name)
