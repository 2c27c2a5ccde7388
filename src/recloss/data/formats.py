"""Readers: stream a source's rows as chunks of raw tokens, numbers and class labels.

Criteo, Avazu and libFM files are read here; files and tables with a table schema (CSV,
Parquet, in-memory rows) in `recloss.data.tables`, MovieLens in `recloss.data.movielens`, and
the chunk and reader interface is `recloss.data.chunks`. Readers are built with `labeled`:
True requires the label column (training, evaluation), False reads rows without one, None
detects it (Criteo: 39 fields instead of 40; Avazu: a header without `click`). libFM lines
always start with their target, so a libFM file to predict on carries a placeholder one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recloss.data.badlines import BadLines
from recloss.data.chunks import (
    ALL,
    OWN_SPLITS,
    Chunk,
    Layout,
    Reader,
    kept_names,
    no_labels,
    split_parts,
    with_label,
)
from recloss.data.convert import binary_label, signed_label, to_float, to_int
from recloss.data.tables import ArrowReader, CSVReader, ParquetReader
from recloss.data.text import TextBatch, TextFormat, column_names, read_text, text_head
from recloss.errors import DataError

__all__ = [  # with the base classes and the table readers, for importers of this module
    "ALL",
    "OWN_SPLITS",
    "ArrowReader",
    "AvazuReader",
    "CSVReader",
    "Chunk",
    "CriteoReader",
    "Layout",
    "LibFMReader",
    "ParquetReader",
    "Reader",
    "split_fields",
    "split_parts",
]

# --- Criteo -------------------------------------------------------------------------------------

CRITEO_INTS = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATS = tuple(f"C{i}" for i in range(1, 27))
CRITEO_FORMAT = TextFormat(delimiter="\t", columns=("label", *CRITEO_INTS, *CRITEO_CATS))
CRITEO_UNLABELED = TextFormat(delimiter="\t", columns=CRITEO_FORMAT.columns[1:])  # test.txt


class CriteoReader(Reader):
    """Criteo Kaggle/DAC `train.txt` or 1TB `day_N`: label, I1..I13 integers, C1..C26 hex tokens.

    Unlabeled (Kaggle's `test.txt`), lines hold the 39 feature fields; `labeled=None` tells the
    layouts apart by the first line's field count.
    """

    layout = Layout(cat=CRITEO_CATS, num=CRITEO_INTS)

    def __init__(
        self, files: dict[str, Path] | Sequence[Path], labeled: bool | None = True
    ) -> None:
        self.files, self._parts = split_parts(files)
        self.parts = OWN_SPLITS if isinstance(files, dict) else ALL
        unlabeled = _criteo_unlabeled(self.files[0])
        if labeled and unlabeled:
            raise DataError(
                f"{self.files[0]}: lines of {len(CRITEO_UNLABELED.columns)} fields, without the "
                "label, as in Kaggle's test.txt; this needs labeled lines (recloss predict "
                "scores such a file)"
            )
        self.labeled = (not unlabeled) if labeled is None else labeled
        self.format = CRITEO_FORMAT if self.labeled else CRITEO_UNLABELED

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        for path, part in zip(self.files, self._parts, strict=True):
            with closing(read_text(path, self.format, policy, chunk_rows)) as batches:
                for batch in batches:
                    y = (
                        binary_label(batch.column("label"), batch.checks)
                        if self.labeled
                        else no_labels(len(batch))
                    )
                    ints = [to_int(batch.column(n), batch.checks, n) for n in CRITEO_INTS]
                    keep = batch.resolve(policy)
                    cats = [batch.column(n) for n in CRITEO_CATS]
                    yield Chunk.kept(cats, ints, y, keep, part)


def _criteo_unlabeled(path: Path, lines: int = 10) -> bool:
    """Whether the file's first lines (up to `lines`) all hold the 39 fields of `test.txt`."""
    sample = text_head(path)
    head = [line for line in sample.split(b"\n")[:-1] if line.strip()][:lines]
    head = head or [sample]  # one line longer than the sample: its start
    return all(line.count(b"\t") + 1 == len(CRITEO_UNLABELED.columns) for line in head)


# --- Avazu --------------------------------------------------------------------------------------

AVAZU_CATS = (
    "C1",
    "banner_pos",
    "site_id",
    "site_domain",
    "site_category",
    "app_id",
    "app_domain",
    "app_category",
    "device_id",
    "device_ip",
    "device_model",
    "device_type",
    "device_conn_type",
    "C14",
    "C15",
    "C16",
    "C17",
    "C18",
    "C19",
    "C20",
    "C21",
)
AVAZU_FORMAT = TextFormat(delimiter=",", header=True)


class AvazuReader(Reader):
    """Avazu `train.csv`: `id` dropped, `hour` (YYMMDDHH) split into hour of day and weekday.

    Unlabeled (a `test.csv`), the header has no `click` column; `labeled=None` looks for it.
    """

    layout = Layout(cat=("hour", "weekday", *AVAZU_CATS))

    def __init__(
        self, files: dict[str, Path] | Sequence[Path], labeled: bool | None = True
    ) -> None:
        self.files, self._parts = split_parts(files)
        self.parts = OWN_SPLITS if isinstance(files, dict) else ALL
        self._headers = [column_names(path, AVAZU_FORMAT) for path in self.files]
        self.labeled = with_label(labeled, self._headers[0], "click")
        needed = ("click",) * self.labeled + ("hour", *AVAZU_CATS)
        for path, have in zip(self.files, self._headers, strict=True):
            missing = [c for c in needed if c not in have]
            if missing:
                raise DataError(f"{path}:1: Avazu header lacks column(s) {', '.join(missing)}")

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        for path, part in zip(self.files, self._parts, strict=True):
            with closing(read_text(path, AVAZU_FORMAT, policy, chunk_rows)) as batches:
                for batch in batches:
                    y = (
                        binary_label(batch.column("click"), batch.checks, "click")
                        if self.labeled
                        else no_labels(len(batch))
                    )
                    hour, weekday = _hour_fields(batch)
                    keep = batch.resolve(policy)
                    cats = [hour, weekday, *(batch.column(n) for n in AVAZU_CATS)]
                    kept = {n: batch.column(n) for n in self.keep}
                    yield Chunk.kept(cats, [], y, keep, part, kept)

    def keep_columns(self, names: Sequence[str]) -> None:
        self.keep = kept_names(names, self._headers, self.files)


def _hour_fields(batch: TextBatch) -> tuple[pa.Array, pa.Array]:
    """Hour of day (0-23) and weekday (0 = Monday) of Avazu's YYMMDDHH `hour` as tokens."""
    raw = batch.column("hour")
    when = pc.strptime(raw, format="%y%m%d%H", unit="s", error_is_null=True)
    bad = when.is_null().to_numpy(zero_copy_only=False)
    batch.checks.add(bad, lambda r: f"hour {raw[r].as_py()!r} is not a YYMMDDHH time")
    return pc.cast(pc.hour(when), pa.string()), pc.cast(pc.day_of_week(when), pa.string())


# --- libFM / libSVM -----------------------------------------------------------------------------

LINE_FORMAT = TextFormat(delimiter="\x1f", columns=("line",))  # one column: the whole line


def split_fields(batch: TextBatch, tokens: pa.ListArray, count: int, what: str) -> list[pa.Array]:
    """The first `count` tokens of each row's list; rows with another count are bad rows."""
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False)
    batch.checks.add(lengths != count, lambda r: f"expected {count} {what}, found {lengths[r]}")
    return [
        pc.list_slice(tokens, i, i + 1, return_fixed_size_list=True).flatten() for i in range(count)
    ]


def whitespace_tokens(batch: TextBatch) -> pa.ListArray:
    line = pc.fill_null(batch.column("line"), "")
    return pc.utf8_split_whitespace(pc.utf8_trim_whitespace(line))


class LibFMReader(Reader):
    """libFM/libSVM lines `label idx:1 idx:1 ...`: one feature per field, in field order.

    The layout of Frappe's and MovieLens-tag's files (NFM, AFM, BARS): every line holds as many
    features as the first, the i-th feature is field `f<i>`'s value, and each value is 1. A
    value other than 1 is refused (a weight has no place in a categorical field; weighted
    features belong in a numeric CSV/Parquet column); a variable-length sparse line (a bag of
    features, no fields) is a bad line whose message names this layout. Every line starts with
    its target, so there is no unlabeled layout: a file to predict on carries a placeholder
    target (any of -1, 0, 1) and is read as labeled.
    """

    def __init__(
        self, files: dict[str, Path] | Sequence[Path], labeled: bool | None = True
    ) -> None:
        self.files, self._parts = split_parts(files)
        self.parts = OWN_SPLITS if isinstance(files, dict) else ALL
        line, tokens = _first_line(self.files[0])
        if labeled is False or (labeled is None and b":" in tokens[0]):
            raise DataError(
                f"{self.files[0]}:{line}: libFM lines start with their target; a file to "
                "predict on needs one too (any of -1, 0, 1)"
            )
        if len(tokens) < 2:
            raise DataError(
                f"{self.files[0]}:{line}: a libFM line needs a label and at least one idx:value"
            )
        self.layout = Layout(cat=tuple(f"f{i}" for i in range(1, len(tokens))))

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        width = len(self.layout.cat) + 1
        for path, part in zip(self.files, self._parts, strict=True):
            with closing(read_text(path, LINE_FORMAT, policy, chunk_rows)) as batches:
                for batch in batches:
                    tokens = whitespace_tokens(batch)
                    _check_width(batch, tokens, width)
                    label, *features = split_fields(batch, tokens, width, "tokens")
                    y = signed_label(label, batch.checks)
                    cats = [_feature_index(batch, f, i) for i, f in enumerate(features, 1)]
                    keep = batch.resolve(policy)
                    yield Chunk.kept(cats, [], y, keep, part)


def _check_width(batch: TextBatch, tokens: pa.ListArray, width: int) -> None:
    """Lines with another number of tokens than the first are bad; the message says why."""
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False)
    batch.checks.add(
        lengths != width,
        lambda r: (
            f"expected {width} tokens, found {lengths[r]}: a libFM line is read as "
            "`label idx:1 idx:1 ...` with one feature per field in field order, as many as on "
            "the first line (Frappe's layout); a variable-length sparse file has no fields, "
            "convert it to one column per field (CSV) first"
        ),
    )


def _first_line(path: Path) -> tuple[int, list[bytes]]:
    """The line number and whitespace-separated tokens of the first non-blank line (one there
    is: `text_head` refuses a file without a non-blank byte)."""
    lines = enumerate(text_head(path).split(b"\n"), 1)
    return next((number, line.split()) for number, line in lines if line.strip())


def _feature_index(batch: TextBatch, token: pa.Array, field: int) -> pa.Array:
    """The `idx` of each `idx:value` token; the value must be a number, and 1."""
    parts = pc.extract_regex(token, r"^(?P<idx>[0-9]+):(?P<value>[^:]+)$")
    index, value = pc.struct_field(parts, [0]), pc.struct_field(parts, [1])
    bad = (index.is_null().to_numpy(zero_copy_only=False)) & token.is_valid().to_numpy(
        zero_copy_only=False
    )
    batch.checks.add(bad, lambda r: f"feature {field} {token[r].as_py()!r} is not idx:value")
    if not pc.all(pc.equal(value, "1"), skip_nulls=True).as_py():
        _check_unit_values(batch, token, value, field)
    return index


def _check_unit_values(batch: TextBatch, token: pa.Array, value: pa.Array, field: int) -> None:
    """Non-numeric values are bad lines; a number other than 1 stops the preparation."""
    numbers = to_float(value, batch.checks, f"feature {field} value", finite=False)
    numbers = pc.fill_null(numbers, 1.0).to_numpy(zero_copy_only=False)
    weighted = np.flatnonzero((numbers != 1) & ~batch.checks.bad)
    if len(weighted):
        row = int(weighted[0])
        raise DataError(
            f"{batch.path}:{batch.line_of(row)}: feature {field} {token[row].as_py()!r} has "
            f"value {value[row].as_py()}; libFM features are read as categorical values "
            "(value 1, as in Frappe): a weighted feature belongs in a numeric column of a CSV "
            "or Parquet file (data.table.numeric)"
        )
