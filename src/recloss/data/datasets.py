"""Named data sets: where their files are, how to read them, their default task and min-count.

Min-count defaults follow the literature: Criteo 10 and Avazu 2 as in FuxiCTR's Criteo_x4_001
and Avazu_x4_001 benchmark settings (AutoInt used 5 for Avazu); 1 (keep every value) for
MovieLens, libFM and user tables, where the data sets are small or already filtered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recloss.config import DataConfig, TableSchema
from recloss.data.fetch import fetch_ml100k
from recloss.data.formats import AvazuReader, CriteoReader, LibFMReader, Reader
from recloss.data.movielens import atomic_100k, grouplens_100k, movielens_1m, movielens_20m
from recloss.data.schema import Task
from recloss.data.tables import CSVReader, ParquetReader
from recloss.errors import ConfigError, DataError
from recloss.registry import Registry

Files = dict[str, Path] | list[Path]
Opener = Callable[[Path, DataConfig, Task, bool | None], Reader]  # the last: `labeled`


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

    def reader(
        self, path: Path, cfg: DataConfig, task: Task, labeled: bool | None = True
    ) -> Reader:
        """The reader of the data at `path` (a file or a folder).

        `labeled`: True requires the label column, False reads the rows without it, None
        detects which (see `recloss.data.formats`).
        """
        if self.open is None:
            raise DataError(f"{self.name}: generated data has no files to read")
        if not path.exists():
            raise DataError(f"{self.name}: {path} does not exist; expected {self.expects}")
        return self.open(path, cfg, task, labeled)


DATASETS: Registry[DatasetSpec] = Registry("data set")


def _missing(name: str, path: Path, expects: str) -> DataError:
    return DataError(f"{name}: {path} holds no data files; expected {expects}")


def _own_splits(folder: Path, patterns: dict[str, Sequence[str]]) -> dict[str, Path] | None:
    """The train/valid/test files of a folder, if it has exactly one of each."""
    found = {}
    for split, globs in patterns.items():
        hits = sorted({p for g in globs for p in folder.glob(g) if p.is_file()})
        if len(hits) != 1:
            return None
        found[split] = hits[0]
    return found


def _day_number(path: Path) -> int:
    match = re.match(r"day_(\d+)", path.name)
    return int(match.group(1)) if match else -1


CRITEO_EXPECTS = "a Criteo train.txt or day_N file, or a folder with train.txt or day_* files"


def _criteo(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    if path.is_file():
        return CriteoReader([path], labeled)
    train = [p for p in (path / "train.txt", path / "train.txt.gz") if p.is_file()]
    days = sorted((p for p in path.glob("day_*") if p.is_file()), key=_day_number)
    if not (train or days):
        raise _missing("criteo", path, CRITEO_EXPECTS)
    return CriteoReader(train[:1] or days, labeled)


AVAZU_EXPECTS = "Avazu's train.csv (or train.gz), or a folder with it"


def _avazu(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    if path.is_file():
        return AvazuReader([path], labeled)
    names = ("train.csv", "train.csv.gz", "train.gz", "train")
    found = [path / n for n in names if (path / n).is_file()]
    if not found:
        raise _missing("avazu", path, AVAZU_EXPECTS)
    return AvazuReader(found[:1], labeled)


ML100K_EXPECTS = "a folder with u.data, u.user, u.item (GroupLens) or ml-100k.inter/.user/.item"


def _ratings_only(name: str, labeled: bool | None) -> None:
    if labeled is False:
        raise DataError(f"{name}: a ratings file is read with its ratings (no unlabeled layout)")


def _movielens_100k(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    _ratings_only("movielens-100k", labeled)
    folder = path.parent if path.is_file() else path
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
    folder = path.parent if path.is_file() else path
    _needs("movielens-1m", folder, ("ratings.dat", "users.dat", "movies.dat"), ML1M_EXPECTS)
    return movielens_1m(folder, task)


ML20M_EXPECTS = "a folder with ratings.csv and movies.csv (ml-20m or ml-25m)"


def _movielens_20m(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    _ratings_only("movielens-20m", labeled)
    folder = path.parent if path.is_file() else path
    _needs("movielens-20m", folder, ("ratings.csv", "movies.csv"), ML20M_EXPECTS)
    return movielens_20m(folder, task)


LIBFM_SPLITS = {
    "train": ("*.train.libfm",),
    "valid": ("*.validation.libfm", "*.valid.libfm"),
    "test": ("*.test.libfm",),
}


def _libfm_files(name: str, path: Path, expects: str) -> Files:
    if path.is_file():
        return [path]
    own = _own_splits(path, LIBFM_SPLITS)
    if own is not None:
        return own
    files = sorted(p for p in path.glob("*.libfm") if p.is_file())
    if not files:
        raise _missing(name, path, expects)
    return files


FRAPPE_EXPECTS = "a folder with frappe.train.libfm, frappe.validation.libfm, frappe.test.libfm"
LIBFM_EXPECTS = "a libFM file, or a folder of *.libfm files (*.train/.validation/.test.libfm)"


def _frappe(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    return LibFMReader(_libfm_files("frappe", path, FRAPPE_EXPECTS), labeled)


def _libfm(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    return LibFMReader(_libfm_files("libfm", path, LIBFM_EXPECTS), labeled)


def _table(cfg: DataConfig) -> TableSchema:
    if cfg.table is None:
        raise ConfigError(
            f"data.table: the {cfg.dataset} data set needs a table schema "
            "(label, categorical and numeric columns)"
        )
    return cfg.table


def _table_files(name: str, path: Path, suffixes: Sequence[str], expects: str) -> Files:
    if path.is_file():
        return [path]
    splits = {"train": ("train",), "valid": ("valid", "validation"), "test": ("test",)}
    own = _own_splits(
        path, {k: [f"{stem}{s}" for stem in v for s in suffixes] for k, v in splits.items()}
    )
    if own is not None:
        return own
    files = sorted(p for s in suffixes for p in path.glob(f"*{s}") if p.is_file())
    if not files:
        raise _missing(name, path, expects)
    return files


CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
CSV_EXPECTS = "a CSV file, or a folder of them (train/valid/test files are used as the splits)"
PARQUET_EXPECTS = "a Parquet file, or a folder of them (train/valid/test files: the splits)"


def _csv(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    table = _table(cfg)
    files = _table_files("csv", path, CSV_SUFFIXES, CSV_EXPECTS)
    return CSVReader(files, table, task, labeled)


def _parquet(path: Path, cfg: DataConfig, task: Task, labeled: bool | None) -> Reader:
    table = _table(cfg)
    files = _table_files("parquet", path, (".parquet",), PARQUET_EXPECTS)
    return ParquetReader(files, table, task, labeled)


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
    DatasetSpec("criteo", CRITEO_EXPECTS, _criteo, min_count=10),
    DatasetSpec("avazu", AVAZU_EXPECTS, _avazu, min_count=2),
    DatasetSpec("frappe", FRAPPE_EXPECTS, _frappe),
    DatasetSpec("libfm", LIBFM_EXPECTS, _libfm),
    DatasetSpec("csv", CSV_EXPECTS, _csv, tasks=BOTH),
    DatasetSpec("parquet", PARQUET_EXPECTS, _parquet, tasks=BOTH),
    DatasetSpec("synthetic", "no files: generated from data.synthetic", None),
):
    DATASETS.add(_spec.name, _spec)
