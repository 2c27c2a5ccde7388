"""Vocabularies and numeric transforms: from raw tokens to per-field indices and features.

Each chunk is first dictionary-encoded per field (its distinct values and, per row, an index
into them); counting and the final lookup then work on those distinct values, not on rows.

Vocabularies are counted over the training split's rows only (`data.vocab_from: train`, as
FuxiCTR and BARS fit them), so neither `min_count` nor the numeric statistics see a validation or
test row; `all` counts every row before splitting, the older convention. Per field: index 0 is a
missing value (null or empty), 1 a value rarer than `min_count` in the counted rows (or never
seen there: a value only validation or test rows hold), known values from 2 ordered by count
(descending), then value.

Numeric fields, `bucket` (Criteo's convention): v > 2 becomes the bucket floor(ln(v)^2), any
other value its own category floor(v); buckets and raw values get distinct keys (raw values are
at most 2, bucket b has key 3 + b), and the keys are then counted and encoded like tokens.
`continuous`: log1p of the value clipped at 0, standardised with the mean and standard
deviation over the counted rows; missing values become 0 (the mean).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from recloss.data.formats import Chunk, Layout
from recloss.data.schema import FIRST_VALUE_INDEX, MISSING_INDEX, OOV_INDEX
from recloss.data.text import is_missing

Numeric = Literal["bucket", "continuous"]
BUCKET_KEY_OFFSET = 3
MERGE_AT = 1 << 18  # partial counts held per field before a merge (or half the merged size)
VOCAB_FILE = "vocab.arrow"
NO_VALUE = -1  # index of a null token in Coded.indices
INTEGRAL_DECIMAL = r"^(-?[0-9]+)\.0+$"  # 20.0, -3.00: an integer written as a float


def bucket_keys(values: pa.Array) -> pa.Array:
    """Criteo's log-square buckets of numeric values as int64 keys (null stays null)."""
    v = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)
    keys = np.floor(np.clip(v, -(2.0**62), 2.0)).astype(np.int64)
    large = v > 2
    keys[large] = np.floor(np.log(v[large]) ** 2).astype(np.int64) + BUCKET_KEY_OFFSET
    mask = values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
    return pa.array(keys, mask=mask)


def log_values(values: pa.Array) -> np.ndarray:
    """log1p of values clipped at 0 (float32), NaN where missing."""
    v = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)  # NaN where null
    return np.log1p(np.maximum(v, 0.0)).astype(np.float32)


@dataclass
class Coded:
    """Rows with each categorical field as distinct values plus, per row, an index into them."""

    dictionaries: list[pa.Array]  # per field: the distinct tokens (or numeric bucket keys)
    indices: np.ndarray  # int32 [fields, n]; NO_VALUE where the token is null
    logs: np.ndarray | None  # float32 [n, numeric fields] (continuous mode), NaN = missing
    y: np.ndarray  # int64 [n]
    part: int = 0

    def __len__(self) -> int:
        return len(self.y)


def _dictionary(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    encoded = values.dictionary_encode()
    indices = pc.fill_null(encoded.indices, NO_VALUE).to_numpy(zero_copy_only=False)
    return encoded.dictionary, indices


def integral_as_integer(tokens: pa.Array) -> pa.Array:
    """Tokens `20.0` as `20`: an integer column that pandas made floats (it had gaps) is written
    so, and must meet the same ids written as integers (a database's export, a typed column)."""
    if not pc.any(pc.match_substring(tokens, ".0")).as_py():  # most fields: a scan, no copy
        return tokens
    return pc.replace_substring_regex(tokens, INTEGRAL_DECIMAL, r"\1")


def code_chunk(chunk: Chunk, numeric: Numeric) -> Coded:
    """Dictionary-encode every categorical field of a chunk (bucketed numeric fields last)."""
    columns = list(chunk.cat) + (list(chunk.num) if numeric == "bucket" else [])
    indices = np.empty((len(columns), len(chunk)), dtype=np.int32)
    dictionaries = []
    for j, values in enumerate(columns):
        dictionary, indices[j] = _dictionary(values)
        if j >= len(chunk.cat):
            # Bucket the chunk's distinct numbers rather than every row.
            dictionary = bucket_keys(dictionary)
        else:  # the chunk's distinct tokens rather than every row (they may now repeat)
            dictionary = integral_as_integer(dictionary)
        dictionaries.append(dictionary)
    logs = None
    if numeric == "continuous" and chunk.num:
        logs = np.stack([log_values(v) for v in chunk.num], axis=1)
    return Coded(dictionaries, indices, logs, chunk.y, chunk.part)


class ValueCounter:
    """Occurrences of each value of one field, from per-chunk counts merged as they accumulate."""

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []
        self._pending = 0
        self._merged = 0

    def add(self, values: pa.Array, counts: np.ndarray) -> None:
        """Count `counts[i]` more occurrences of `values[i]` (values may repeat)."""
        self._parts.append(pa.table({"value": values, "count": counts}))
        self._pending += len(values)
        if self._pending > max(MERGE_AT, self._merged // 2):
            self._merge()

    def _merge(self) -> None:
        merged = pa.concat_tables(self._parts).group_by("value").aggregate([("count", "sum")])
        self._parts = [merged.rename_columns({"count_sum": "count"}).select(["value", "count"])]
        self._merged = self._parts[0].num_rows
        self._pending = 0

    def vocabulary(self, min_count: int, kind: pa.DataType) -> Vocabulary:
        """Values seen at least `min_count` times, most frequent first, ties by value."""
        if not self._parts:
            return Vocabulary(pa.array([], kind), np.zeros(0, np.int64))
        self._merge()
        table = self._parts[0]
        present = pc.invert(pa.array(is_missing(table["value"].combine_chunks())))
        table = table.filter(pc.and_(present, pc.greater_equal(table["count"], min_count)))
        table = table.sort_by([("count", "descending"), ("value", "ascending")])
        return Vocabulary(
            table["value"].combine_chunks().cast(kind), table["count"].to_numpy().astype(np.int64)
        )


@dataclass
class Vocabulary:
    """Known values of one field; value i has index i + 2."""

    values: pa.Array
    counts: np.ndarray

    @property
    def cardinality(self) -> int:
        """Number of indices, the reserved ones included."""
        return len(self.values) + FIRST_VALUE_INDEX

    def lookup(self, tokens: pa.Array) -> np.ndarray:
        """Indices (int32) of tokens: 0 missing, 1 out of vocabulary, known values from 2."""
        found = pc.fill_null(pc.index_in(tokens, value_set=self.values), -1)
        found = found.to_numpy(zero_copy_only=False)
        codes = np.where(found >= 0, found + FIRST_VALUE_INDEX, OOV_INDEX).astype(np.int32)
        codes[is_missing(tokens)] = MISSING_INDEX
        return codes


@dataclass
class Encoding:
    """Everything needed to encode rows of a source: field names, vocabularies, numeric stats."""

    cat_fields: tuple[str, ...]
    num_fields: tuple[str, ...]
    numeric: Numeric
    vocabs: list[Vocabulary]
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.ones(0))

    @property
    def cardinalities(self) -> tuple[int, ...]:
        return tuple(v.cardinality for v in self.vocabs)

    def encode(self, group: list[Coded]) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Per chunk of the group: categorical indices [n, F] int32, continuous [n, N] float32.

        The chunks' distinct values are looked up together, one vocabulary pass per field.
        """
        tables = [
            self._tables(j, [c.dictionaries[j] for c in group]) for j in range(len(self.vocabs))
        ]
        for c, coded in enumerate(group):
            x_cat = np.empty((len(coded), len(self.vocabs)), dtype=np.int32)
            for j, table in enumerate(tables):
                x_cat[:, j] = table[c][coded.indices[j] + 1]
            x_num = None
            if coded.logs is not None:
                x_num = np.nan_to_num((coded.logs - self.mean) / self.std, nan=0.0)
                x_num = x_num.astype(np.float32)
            yield x_cat, x_num

    def _tables(self, field: int, dictionaries: list[pa.Array]) -> list[np.ndarray]:
        """Per dictionary: the index of each entry, after a leading one for null tokens."""
        codes = self.vocabs[field].lookup(pa.concat_arrays(dictionaries))
        bounds = np.cumsum([0] + [len(d) for d in dictionaries])
        return [
            np.concatenate([[MISSING_INDEX], codes[lo:hi]]).astype(np.int32)
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]

    def save(self, folder: Path) -> None:
        """Write the vocabularies as one Arrow file (numeric keys and tokens in own columns)."""
        columns: dict[str, list[pa.Array]] = {"field": [], "token": [], "key": [], "count": []}
        for j, vocab in enumerate(self.vocabs):
            n = len(vocab.values)
            is_key = pa.types.is_integer(vocab.values.type)
            columns["field"].append(pa.array(np.full(n, j, np.int32)))
            columns["token"].append(pa.nulls(n, pa.string()) if is_key else vocab.values)
            columns["key"].append(vocab.values if is_key else pa.nulls(n, pa.int64()))
            columns["count"].append(pa.array(vocab.counts, pa.int64()))
        table = pa.table(
            {k: pa.chunked_array(v, type=_COLUMN_TYPES[k]) for k, v in columns.items()}
        )
        feather.write_feather(table, folder / VOCAB_FILE, compression="uncompressed")

    @classmethod
    def load(cls, folder: Path, meta: dict) -> Encoding:
        """Read what `save` wrote, with the field layout and stats kept in the metadata."""
        table = feather.read_table(folder / VOCAB_FILE, memory_map=True)
        cat_fields = tuple(meta["schema"]["cat_fields"])
        enc = meta["encoding"]
        bounds = np.searchsorted(table["field"].to_numpy(), np.arange(len(cat_fields) + 1))
        vocabs = []
        for j, name in enumerate(cat_fields):
            part = table.slice(bounds[j], bounds[j + 1] - bounds[j])
            values = part["key" if name in enc["key_fields"] else "token"].combine_chunks()
            vocabs.append(Vocabulary(values, part["count"].to_numpy()))
        return cls(
            cat_fields=cat_fields,
            num_fields=tuple(meta["schema"]["num_fields"]),
            numeric=enc["numeric"],
            vocabs=vocabs,
            mean=np.asarray(enc["mean"], dtype=np.float64),
            std=np.asarray(enc["std"], dtype=np.float64),
        )

    def describe(self) -> dict:
        """The JSON-friendly part of the encoding, for the cache metadata."""
        keyed = [
            f
            for f, v in zip(self.cat_fields, self.vocabs, strict=True)
            if pa.types.is_integer(v.values.type)
        ]
        return {
            "numeric": self.numeric,
            "key_fields": keyed,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "vocab_sizes": dict(zip(self.cat_fields, self.cardinalities, strict=True)),
        }


_COLUMN_TYPES = {"field": pa.int32(), "token": pa.string(), "key": pa.int64(), "count": pa.int64()}


def cat_fields(layout: Layout, numeric: Numeric) -> tuple[str, ...]:
    """Categorical fields after the numeric transform: bucketed numeric fields come last."""
    return layout.cat + (layout.num if numeric == "bucket" else ())


def token_types(layout: Layout, numeric: Numeric) -> list[pa.DataType]:
    """Arrow type of each categorical field's tokens: strings, int64 keys for numeric buckets."""
    return [pa.string()] * len(layout.cat) + [pa.int64()] * (
        len(cat_fields(layout, numeric)) - len(layout.cat)
    )


class Counter:
    """The counting pass: value counts per categorical field, moments of continuous fields."""

    def __init__(self, layout: Layout, numeric: Numeric) -> None:
        self.layout = layout
        self.numeric = numeric
        self.fields = cat_fields(layout, numeric)
        self.kinds = token_types(layout, numeric)
        self.counters = [ValueCounter() for _ in self.fields]
        n = 0 if numeric == "bucket" else len(layout.num)
        self._n, self._sum, self._sumsq = np.zeros(n), np.zeros(n), np.zeros(n)

    def add(self, coded: Coded, rows: np.ndarray | None = None) -> None:
        """Count a chunk's values and numeric moments: all its rows, or those `rows` marks."""
        indices_of = coded.indices if rows is None else coded.indices[:, rows]
        for counter, dictionary, indices in zip(
            self.counters, coded.dictionaries, indices_of, strict=True
        ):
            counts = np.bincount(indices + 1, minlength=len(dictionary) + 1)[1:]
            if rows is not None:  # values only other rows hold are not counted at all
                seen = counts > 0
                dictionary, counts = dictionary.filter(pa.array(seen)), counts[seen]
            counter.add(dictionary, counts)
        if coded.logs is not None:
            logs = (coded.logs if rows is None else coded.logs[rows]).astype(np.float64)
            seen = ~np.isnan(logs)
            self._n += seen.sum(axis=0)
            self._sum += np.where(seen, logs, 0).sum(axis=0)
            self._sumsq += np.where(seen, logs**2, 0).sum(axis=0)

    def encoding(self, min_count: int) -> Encoding:
        """The vocabularies (values seen at least `min_count` times) and numeric stats."""
        vocabs = [
            c.vocabulary(min_count, kind) for c, kind in zip(self.counters, self.kinds, strict=True)
        ]
        n = np.maximum(self._n, 1)
        mean = self._sum / n
        std = np.sqrt(np.maximum(self._sumsq / n - mean**2, 0.0))
        num = () if self.numeric == "bucket" else self.layout.num
        return Encoding(self.fields, num, self.numeric, vocabs, mean, np.where(std > 0, std, 1.0))
