"""Preparing a data set once, and the prepared data set the trainer reads."""

from __future__ import annotations

import errno
import logging
import os
import time
from functools import cached_property
from pathlib import Path

import pyarrow as pa

from recloss.atomic import space_left
from recloss.config import DataConfig
from recloss.data.batches import SplitArrays
from recloss.data.build import (
    SplitWriter,
    build_from_reader,
    build_synthetic,
    check_labels,
    columns_of,
    encode_pass,
    open_spill,
    scan,
)
from recloss.data.cache import (
    ENCODED,
    META_FILE,
    CacheWriter,
    cache_root,
    content_key,
    keep_recent_encodings,
    load_array,
    read_meta,
    recloss_home,
)
from recloss.data.datasets import DATASETS, DatasetSpec
from recloss.data.encode import Encoding, cat_fields
from recloss.data.formats import ALL, Reader
from recloss.data.rows import FRAME, frame_reader
from recloss.data.schema import FIRST_VALUE_INDEX, Schema, Task
from recloss.data.splits import SPLITS
from recloss.data.text import is_parquet
from recloss.data.unknown import unknown_counts, warn_of_unknown_values
from recloss.errors import ConfigError, DataError

log = logging.getLogger("recloss.data")

ENCODED_SPLIT = "all"
TABLE_SOURCES = (FRAME, "csv", "parquet")  # whose rows `data.table` names, in any of them


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def limit_arrow_threads() -> None:
    """Keep Arrow's thread pools within the cores this process may use."""
    cores = available_cores()
    if pa.cpu_count() > cores:
        pa.set_cpu_count(cores)
    if pa.io_thread_count() > cores:
        pa.set_io_thread_count(cores)


def resolve_task(spec: DatasetSpec, cfg: DataConfig) -> Task:
    """The configured task, or the data set's default; checked against what it supports."""
    task = cfg.task or spec.task
    if task not in spec.tasks:
        raise ConfigError(f"data.task: {spec.name} supports {' or '.join(spec.tasks)}, not {task}")
    return task


def cache_settings(spec: DatasetSpec, cfg: DataConfig, task: Task) -> dict:
    """Everything in the configuration that changes the prepared arrays."""
    settings = {
        "dataset": spec.name,
        "task": task,
        "min_count": cfg.min_count or spec.min_count,
        "numeric": cfg.numeric,
        "split": list(cfg.split),
        "split_seed": cfg.split_seed,
        "on_bad_line": cfg.on_bad_line,
    }
    if spec.name in ("csv", "parquet") and cfg.table is not None:
        settings["table"] = cfg.table.model_dump(mode="json")
        if cfg.table.classes is None:  # as before the key existed: caches keep their names
            del settings["table"]["classes"]
        # tokens of typed values as pandas writes them (`0.5`, `True`), and `20.0` as `20`
        settings["tokens"] = "pandas-text, integral as integer"
    if spec.open is None:
        settings["synthetic"] = cfg.synthetic.model_dump(mode="json")
    else:  # generated data has no vocabularies to count
        settings["vocab_from"] = cfg.vocab_from
    return settings


def reader_settings(reader: Reader) -> dict:
    """What the reader decided that changes the arrays: whether its files are the splits."""
    return {"split_files": reader.parts != ALL}


def _data_path(spec: DatasetSpec, cfg: DataConfig) -> Path | None:
    if cfg.path is not None:
        return Path(cfg.path)
    if cfg.splits is not None:
        return None  # the files data.splits names
    if spec.fetch is not None:
        return spec.fetch(recloss_home())
    raise DataError(f"{spec.name}: no data path given (--data PATH); expected {spec.expects}")


class SourceChanged(DataError):
    """The source no longer gives the prepared data set asked for (`expect`): it changed."""


class NoRows(DataError):
    """A file to encode holds no data row (a header alone; `bad_lines` skipped lines)."""

    def __init__(self, message: str, bad_lines: int) -> None:
        super().__init__(message)
        self.bad_lines = bad_lines


def prepare_dataset(
    cfg: DataConfig, progress: bool = True, expect: str | None = None
) -> PreparedDataset:
    """The prepared data set `cfg` describes: from the cache if unchanged, else built now.

    `expect`: the fingerprint it must have (a trained run's); SourceChanged, before any build,
    if the source now gives another."""
    spec = DATASETS.get(cfg.dataset)
    task = resolve_task(spec, cfg)
    limit_arrow_threads()
    settings = cache_settings(spec, cfg, task)
    reader = None if spec.open is None else spec.reader(_data_path(spec, cfg), cfg, task)
    if reader is not None:
        settings |= reader_settings(reader)
    return prepare_source(spec.name, reader, cfg, settings, progress, expect)


def prepare_source(
    name: str,
    reader: Reader | None,
    cfg: DataConfig,
    settings: dict,
    progress: bool,
    expect: str | None = None,
) -> PreparedDataset:
    """The cache of a reader's rows (or generated rows) under these settings, built if missing
    (SourceChanged instead if its fingerprint is not `expect`)."""
    key, sources = content_key(reader.identities() if reader else [], settings)
    if expect is not None and key != expect:
        raise SourceChanged(f"{name}: the source changed (fingerprint {key}, expected {expect})")
    cached = prepared_cache(name, key, cfg.cache_dir)
    if cached is not None:
        log.info("%s: using the prepared cache %s", name, cached.root)
        return cached
    meta = {
        "dataset": name,
        "fingerprint": key,
        "sources": sources,
        "settings": settings,
        "config": cfg.model_dump(mode="json"),
    }
    root = _cache_folder(name, key, cfg.cache_dir)
    if (root / META_FILE).exists():  # its name says complete, but a file of it is cut short
        log.warning("%s: the cache %s is damaged; preparing it again", name, root)
    try:
        _build(root, meta, reader, cfg, progress)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise OSError(
            f"{root}: the cache could not be written{space_left(root.parent)}; make room, or "
            "put caches elsewhere (data.cache_dir, or RECLOSS_HOME)"
        ) from None
    return PreparedDataset(root, read_meta(root, key))


def prepared_cache(name: str, fingerprint: str, cache_dir: str | None) -> PreparedDataset | None:
    """The complete cache of data set `name` with this fingerprint, if it is still there."""
    root = _cache_folder(name, fingerprint, cache_dir)
    meta = read_meta(root, fingerprint)
    return None if meta is None else PreparedDataset(root, meta)


def _cache_folder(name: str, fingerprint: str, cache_dir: str | None) -> Path:
    return cache_root(cache_dir) / f"{name}-{fingerprint}"


def _build(root: Path, meta: dict, reader: Reader | None, cfg: DataConfig, show: bool) -> None:
    """Build a cache folder from a reader (or the synthetic generator) and commit it."""
    started = time.perf_counter()
    with CacheWriter(root) as cache:
        if reader is None:
            meta |= build_synthetic(cfg, cache, show)
        else:
            settings = meta["settings"]
            meta |= build_from_reader(
                reader, cfg, settings["min_count"], settings["task"], cache, show
            )
        meta["seconds"] = round(time.perf_counter() - started, 3)
        cache.commit(meta)
    log.info(
        "%s: prepared %d rows in %.1fs into %s",
        meta["dataset"],
        meta["total_rows"],
        meta["seconds"],
        root,
    )
    if meta["bad_lines"]:
        log.warning("%s: skipped %d bad lines", meta["dataset"], meta["bad_lines"])
    _warn_of_empty_fields(meta)


def _warn_of_empty_fields(meta: dict) -> None:
    """Log the fields left with no known value: every row maps to out-of-vocabulary there."""
    schema = Schema.from_dict(meta["schema"])
    sizes = zip(schema.cat_fields, schema.cardinalities, strict=True)
    empty = [field for field, size in sizes if size <= FIRST_VALUE_INDEX]  # reserved ones only
    if empty:
        log.warning(
            "%s: fields with no value seen min_count (%d) times carry nothing, every row being "
            "out of their vocabulary: %s",
            meta["dataset"], meta["settings"]["min_count"], ", ".join(empty),
        )  # fmt: skip


def load_split(
    folder: Path, labeled: bool = True, source: str = "", bad_lines: int = 0
) -> SplitArrays:
    """The memory-mapped arrays of one cached split (unlabeled: its placeholder `y` unread)."""
    x_num = folder / "x_num.npy"
    return SplitArrays(
        x_cat=load_array(folder / "x_cat.npy"),
        x_num=load_array(x_num) if x_num.exists() else None,
        y=load_array(folder / "y.npy") if labeled else None,
        extra={p.name[6:-4]: load_array(p) for p in sorted(folder.glob("extra.*.npy"))},
        source=source,
        bad_lines=bad_lines,
    )


class PreparedDataset:
    """A prepared data set in its cache folder: schema, metadata and the splits' arrays."""

    def __init__(self, root: Path, meta: dict) -> None:
        self.root = root
        self.meta = meta
        self.schema = Schema.from_dict(meta["schema"])

    def split(self, name: str) -> SplitArrays:
        """The arrays of the train, valid or test split."""
        if name not in SPLITS:
            raise ConfigError(f"unknown split {name!r}; choose one of: {', '.join(SPLITS)}")
        return load_split(self.root / name)

    @cached_property
    def encoding(self) -> Encoding:
        """The stored vocabularies and numeric statistics."""
        return Encoding.load(self.root, self.meta)

    def encode_file(
        self, path: str | Path, progress: bool = False, *, labeled: bool | None = None
    ) -> SplitArrays:
        """Encode another file (or folder) of this data set's format with the stored encoding.

        Values the vocabularies do not know map to the out-of-vocabulary index. `labeled`:
        None reads a file whose rows hold the feature columns only (Criteo: 39 fields; a
        header or Parquet schema without the label column) as unlabeled, True requires the
        label, False reads without it. Bad lines follow `data.on_bad_line` as in training;
        the result's `bad_lines` counts the skipped ones. The result is cached under this
        data set's folder, keyed by the file's fingerprint. A data set of named columns (CSV,
        Parquet, in-memory rows) reads a Parquet file, or else a CSV file
        (`data.table.separator`), whichever it was prepared from.
        """
        reader, cfg = self.reader_of(path, labeled)
        return self._encode(reader, cfg, str(path), progress)

    def reader_of(
        self, data: str | Path | object, labeled: bool | None
    ) -> tuple[Reader, DataConfig]:
        """A reader of another file (or folder) of this data set's format, or of in-memory
        rows, with the data settings it is read under (those it was prepared with)."""
        if not isinstance(data, str | Path):
            cfg = DataConfig.model_validate(self.meta["config"])
            if cfg.table is None:  # MovieLens, Criteo ...: no named columns to find in the rows
                raise ConfigError(
                    f"{self.meta['dataset']}: rows in memory need a data set whose columns "
                    "data.table names (CSV, Parquet, in-memory rows); give a file of its format"
                )
            return frame_reader(data, cfg, self.schema.task, labeled), cfg
        cfg = DataConfig.model_validate({**self.meta["config"], "path": str(data), "splits": None})
        path = Path(cfg.path)  # `~` expanded
        if self.meta["dataset"] in TABLE_SOURCES:  # the same columns, from either format
            cfg.dataset = "parquet" if is_parquet(path) else "csv"
        spec = DATASETS.get(cfg.dataset)
        if spec.open is None:
            raise DataError(f"{spec.name}: generated data has no file format to encode")
        return spec.reader(path, cfg, self.schema.task, labeled), cfg

    def encode_frame(
        self, data: object, progress: bool = False, *, labeled: bool | None = None
    ) -> SplitArrays:
        """Encode in-memory rows (see `prepare_frame`) with the stored encoding, in their order.

        The columns' roles are those of the prepared configuration's `data.table`; unknown
        values map to the out-of-vocabulary index; without the label column (`labeled` as
        for `encode_file`) the rows are unlabeled. Cached like `encode_file`, by content.
        """
        reader, cfg = self.reader_of(data, labeled)
        return self._encode(reader, cfg, reader.source, progress)

    def _encode(self, reader: Reader, cfg: DataConfig, where: str, progress: bool) -> SplitArrays:
        """All rows of a reader encoded with the stored encoding, cached under `encoded/`."""
        fields = cat_fields(reader.layout, cfg.numeric)
        if fields != self.schema.cat_fields:
            raise DataError(
                f"{where}: fields {', '.join(fields)} differ from the prepared data set's "
                f"{', '.join(self.schema.cat_fields)}"
            )
        settings = {"encoded_with": self.meta["fingerprint"]}
        if not reader.labeled:  # labeled reads keep their keys (and existing caches)
            settings["labeled"] = False
        key, sources = content_key(reader.identities(), settings)
        root = self.root / ENCODED / key
        meta = read_meta(root, key)
        if meta is None:
            with CacheWriter(root) as cache:
                meta = {"fingerprint": key, "sources": sources}
                meta |= self._encode_into(cache, reader, cfg, where, progress)
                cache.commit(meta)
        keep_recent_encodings(root)
        labeled, bad_lines = meta.get("labeled", True), meta.get("bad_lines", 0)
        if "values" in meta:  # not in caches written before it was counted
            warn_of_unknown_values(where, meta["values"], self.encoding, self._usual_values)
        return load_split(root / ENCODED_SPLIT, labeled, where, bad_lines)

    def _usual_values(self) -> dict[str, list[int]]:
        """`unknown_counts` of the rows the model never trained on: validation (else training)."""
        rows = self.split("valid") if self.meta["rows"]["valid"] else self.split("train")
        return unknown_counts(rows.x_cat)

    def _encode_into(
        self, cache: CacheWriter, reader: Reader, cfg: DataConfig, where: str, progress: bool
    ) -> dict:
        """Write the reader's rows encoded into a cache; the metadata to commit with them."""
        spill = open_spill(cache, reader, cfg.numeric)
        found = scan(reader, cfg, None, spill, progress)
        if found.rows == 0:
            skipped = f" ({found.bad_lines} bad lines skipped)" if found.bad_lines else ""
            raise NoRows(f"{where}: no data rows{skipped}", found.bad_lines)
        check_labels(found, self.schema.num_classes, where)
        sizes = {ENCODED_SPLIT: found.rows}
        columns = columns_of(self.encoding, self.schema.num_classes)
        writer = SplitWriter(cache, sizes, columns)  # unlabeled: placeholder y
        encode_pass(spill, self.encoding, cfg, writer, lambda coded: 0, progress)
        spill.remove()
        values = unknown_counts(load_array(cache.tmp / ENCODED_SPLIT / "x_cat.npy"))
        return {"rows": sizes, "bad_lines": found.bad_lines, "labeled": reader.labeled,
                "values": values}  # fmt: skip
