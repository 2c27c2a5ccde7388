"""Vectorised conversion of string columns into numbers and labels; failures become bad rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recloss.classes import ClassValue, class_key, class_text
from recloss.data.badlines import RowChecks
from recloss.data.text import is_missing


def _np(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False)


def _shown(column: pa.Array, row: int) -> str:
    value = column[row].as_py()
    return "an empty value" if value in (None, "") else repr(value)


def _unparsable(column: pa.Array, target: pa.DataType, offset: int, out: np.ndarray) -> None:
    """Mark in `out` the entries Arrow cannot cast, by bisecting the failing slices."""
    try:
        pc.cast(column, target)
    except pa.ArrowInvalid:
        if len(column) == 1:
            out[offset] = True
            return
        half = len(column) // 2
        _unparsable(column.slice(0, half), target, offset, out)
        _unparsable(column.slice(half), target, offset + half, out)


def _parse(
    column: pa.Array, target: pa.DataType, checks: RowChecks, what: str, kind: str = ""
) -> pa.Array:
    """Cast strings with Arrow's parser; empty strings are nulls, rejected entries bad rows
    (`what: 'x' is not <kind>`, by default the target type's description). A number padded
    with spaces (`a, b, y` files, ` 1`) is that number, as pandas reads it."""
    column = _empty_as_null(column)
    try:
        return pc.cast(column, target)
    except pa.ArrowInvalid:
        pass
    trimmed = _empty_as_null(pc.utf8_trim_whitespace(column))  # only now: clean data pays nothing
    try:
        return pc.cast(trimmed, target)
    except pa.ArrowInvalid:
        pass
    bad = np.zeros(len(trimmed), dtype=bool)
    _unparsable(trimmed, target, 0, bad)
    kind = kind or _KINDS[target]
    checks.add(bad, lambda row: f"{what}: {_shown(column, row)} is not {kind}")
    return pc.cast(pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), trimmed), target)


def _empty_as_null(column: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


_KINDS = {pa.int64(): "an integer", pa.float64(): "a number"}
MAX_CLASSES = 1 << 15  # labels are cached as int16


def to_int(column: pa.Array, checks: RowChecks, what: str) -> pa.Array:
    """Integers as int64 (as Arrow parses them: decimal, or hexadecimal with 0x); nulls stay."""
    return _parse(column, pa.int64(), checks, what)


def to_float(column: pa.Array, checks: RowChecks, what: str, finite: bool = True) -> pa.Array:
    """Decimal or scientific numbers as float64; with `finite`, NaN and infinities read as null."""
    values = _parse(column, pa.float64(), checks, what)
    if not finite:
        return values
    return pc.if_else(pc.is_finite(values), values, pa.scalar(None, pa.float64()))


def require(column: pa.Array, checks: RowChecks, what: str) -> None:
    """Every row must have a value in `column`."""
    checks.add(is_missing(column), lambda row: f"{what} is missing")


def _labels(
    column: pa.Array,
    checks: RowChecks,
    what: str,
    kind: str,
    valid: Callable[[np.ndarray], np.ndarray],
    hint: Callable[[float], str] = lambda value: "",
) -> np.ndarray:
    """Labels as float64, so that `1.0` (a float column as pandas writes it) reads as 1; rows
    whose label is missing, no number or not `valid` are bad (`what: 'x' is not <kind>`)."""
    require(column, checks, what)
    values = _np(pc.fill_null(_parse(column, pa.float64(), checks, what, kind), 0.0))

    def describe(row: int) -> str:
        return f"{what}: {_shown(column, row)} is not {kind}{hint(values[row])}"

    checks.add(~valid(values), describe)
    return values


def _libsvm_hint(value: float) -> str:
    return " (labels -1/1, as libSVM writes them: map -1 to 0)" if value == -1 else ""


def binary_label(
    column: pa.Array, checks: RowChecks, what: str = "label", advice: str = ""
) -> np.ndarray:
    """Labels 0/1 (or 0.0/1.0) as int64 class indices; `advice` ends a bad row's message
    (else, for -1, how to read libSVM's labels)."""
    hint = (lambda value: "") if advice else _libsvm_hint
    kind = "0 or 1" + advice
    return _class_indices(_labels(column, checks, what, kind, lambda v: (v == 0) | (v == 1), hint))


def signed_label(column: pa.Array, checks: RowChecks, what: str = "label") -> np.ndarray:
    """libFM labels -1/1 or 0/1 (also written 1.0, -1.0) as class indices 0/1."""
    values = _labels(column, checks, what, "-1, 0 or 1", lambda v: np.isin(v, (-1, 0, 1)))
    return (values == 1).astype(np.int64)


def class_label(
    column: pa.Array, checks: RowChecks, what: str = "label", advice: str = ""
) -> np.ndarray:
    """Non-negative integer class indices (`3.0` reads as 3); `advice` ends a bad row's message."""
    kind = f"a class index in [0, {MAX_CLASSES}){advice}"
    return _class_indices(_labels(column, checks, what, kind, _class_index))


def _class_index(values: np.ndarray) -> np.ndarray:
    return (values >= 0) & (values < MAX_CLASSES) & (np.floor(values) == values)


def _class_indices(values: np.ndarray) -> np.ndarray:
    """Labels as int64; bad rows' (NaN, out of range) as 0, as they are dropped or reported."""
    return np.where((values >= 0) & (values < MAX_CLASSES), values, 0).astype(np.int64)


def listed_label(
    column: pa.Array, checks: RowChecks, what: str, classes: Sequence[ClassValue]
) -> np.ndarray:
    """Labels as the positions of their values in `classes` (`data.table.classes`), each
    distinct value compared once; a label that is none of them makes a bad row."""
    require(column, checks, what)
    position = {class_key(value): i for i, value in enumerate(classes)}
    encoded = pc.dictionary_encode(column)
    found = np.array(
        [position.get(class_key(v), -1) for v in encoded.dictionary.to_pylist()] or [-1]
    )[_np(pc.fill_null(encoded.indices, 0))]
    listed = ", ".join(map(class_text, classes))
    checks.add(
        found < 0, lambda row: f"{what}: {_shown(column, row)} is not one of [{listed}] "
        "(data.table.classes)"
    )  # fmt: skip
    return np.maximum(found, 0)


def rating_label(
    column: pa.Array, checks: RowChecks, task: str, what: str = "rating"
) -> np.ndarray:
    """Star ratings in (0, 5]: 5 classes ceil(r) - 1 (half stars round up), or binary r >= 4."""
    require(column, checks, what)
    values = _np(pc.fill_null(to_float(column, checks, what, finite=False), 1.0))
    checks.add(
        ~((values > 0) & (values <= 5)), lambda r: f"{what}: {_shown(column, r)} is not in (0, 5]"
    )
    values = np.where(np.isfinite(values), values, 1.0)  # bad rows, dropped or reported
    if task == "binary":
        return (values >= 4).astype(np.int64)
    return np.clip(np.ceil(values) - 1, 0, 4).astype(np.int64)
