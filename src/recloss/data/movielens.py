"""MovieLens ratings joined with user and item side features, in each published file layout.

Fields: user and item ids; where the data set has them, the user's age bucket (the ml-1m codes
1, 18, 25, 35, 45, 50, 56; raw ages are binned the same way), gender, occupation and the first
three characters of the zip code; the item's release year and its first three genres as three
fields `genre1..genre3` (a movie with fewer genres has missing slots). Timestamps are not used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recloss.data.badlines import BadLines
from recloss.data.convert import rating_label, require, to_int
from recloss.data.formats import Chunk, Layout, Reader, split_fields
from recloss.data.schema import Task
from recloss.data.text import TextBatch, TextFormat, column_names, read_text
from recloss.errors import DataError

GENRE_SLOTS = 3
AGE_EDGES = np.array([18, 25, 35, 45, 50, 56])
AGE_CODES = np.array(["1", "18", "25", "35", "45", "50", "56"], dtype=object)
GROUPLENS_GENRES = (
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
GENRES = tuple(f"genre{i}" for i in range(1, GENRE_SLOTS + 1))
USER_FIELDS = ("age", "gender", "occupation", "zip")
ITEM_FIELDS = ("year", *GENRES)
SIDE_ROWS = 1 << 16

Columns = dict[str, pa.Array]
Convert = Callable[[TextBatch, Columns], Columns]


@dataclass(frozen=True)
class Table:
    """One MovieLens file and where its named columns are."""

    path: Path
    fmt: TextFormat
    columns: dict[str, str]  # our name -> the file's column name (or field position with `sep`)
    sep: str | None = None  # a multi-character separator ("::"): whole lines are split
    width: int = 0  # number of fields per line with `sep`

    def batches(self, policy: BadLines, chunk_rows: int) -> Iterator[tuple[TextBatch, Columns]]:
        """Batches with the named columns as strings."""
        if self.sep is None:
            with closing(read_text(self.path, self.fmt, policy, chunk_rows)) as batches:
                for batch in batches:
                    yield batch, {k: batch.column(v) for k, v in self.columns.items()}
            return
        what = f"fields separated by {self.sep!r}"
        with closing(read_text(self.path, self.fmt, policy, chunk_rows)) as batches:
            for batch in batches:
                tokens = pc.split_pattern(pc.fill_null(batch.column("line"), ""), self.sep)
                parts = [blank_to_null(p) for p in split_fields(batch, tokens, self.width, what)]
                yield batch, {k: parts[int(v)] for k, v in self.columns.items()}

    def side(self, policy: BadLines, convert: Convert) -> Side:
        """The whole (small) table as a lookup of features by the `id` column."""
        ids, features = [], []
        with closing(self.batches(policy, SIDE_ROWS)) as batches:
            for batch, columns in batches:
                require(columns["id"], batch.checks, "id")
                converted = convert(batch, columns)
                keep = pa.array(batch.resolve(policy))
                ids.append(pc.filter(columns["id"], keep))
                features.append({k: pc.filter(v, keep) for k, v in converted.items()})
        if not ids:
            return Side(pa.array([], pa.string()))
        names = features[0]
        return Side(
            pa.concat_arrays(ids), {k: pa.concat_arrays([f[k] for f in features]) for k in names}
        )


@dataclass
class Side:
    """User or item features, looked up by id."""

    ids: pa.Array
    features: Columns = field(default_factory=dict)

    def lookup(self, ids: pa.Array, names: Sequence[str]) -> list[pa.Array]:
        """Features of the given ids (missing where an id has no row)."""
        at = pc.index_in(ids, value_set=self.ids)
        missing = pa.nulls(len(ids), pa.string())
        return [pc.take(self.features[n], at) if n in self.features else missing for n in names]


def blank_to_null(tokens: pa.Array) -> pa.Array:
    """Empty or whitespace-only tokens as missing values."""
    blank = pc.equal(pc.utf8_trim_whitespace(tokens), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), tokens)


def age_bucket(batch: TextBatch, age: pa.Array) -> pa.Array:
    """Raw ages binned into the ml-1m age codes."""
    years = to_int(age, batch.checks, "age")
    codes = AGE_CODES[np.searchsorted(AGE_EDGES, pc.fill_null(years, 0).to_numpy(), side="right")]
    return pc.if_else(years.is_null(), pa.scalar(None, pa.string()), pa.array(codes, pa.string()))


def zip_prefix(zip_code: pa.Array) -> pa.Array:
    """The first three characters of zip codes (the region)."""
    return pc.utf8_slice_codeunits(zip_code, 0, 3)


def year_in(text: pa.Array, pattern: str) -> pa.Array:
    """The 4-digit year that `pattern` (with a group named `year`) finds, else missing."""
    return pc.struct_field(pc.extract_regex(text, pattern), [0])


def genre_slots(genres: pa.Array, sep: str) -> list[pa.Array]:
    """The first genres of a separator-joined list, one array per slot."""
    listed = pc.replace_substring(pc.fill_null(genres, ""), "(no genres listed)", "")
    tokens = pc.split_pattern(listed, sep)
    return [
        blank_to_null(pc.list_slice(tokens, i, i + 1, return_fixed_size_list=True).flatten())
        for i in range(GENRE_SLOTS)
    ]


def flag_genres(batch: TextBatch, flags: Sequence[pa.Array]) -> list[pa.Array]:
    """The first genres of GroupLens's 0/1 genre columns, one array per slot."""
    matrix = np.stack(
        [pc.fill_null(to_int(f, batch.checks, "genre flag"), 0).to_numpy() for f in flags], axis=1
    )
    names = np.array(GROUPLENS_GENRES, dtype=object)
    seen = np.cumsum(matrix == 1, axis=1)
    slots = []
    for i in range(GENRE_SLOTS):
        hit = (matrix == 1) & (seen == i + 1)
        slots.append(
            pa.array(np.where(hit.any(axis=1), names[hit.argmax(axis=1)], None), pa.string())
        )
    return slots


class MovieLensReader(Reader):
    """Ratings streamed in chunks, joined with the user and item tables held in memory."""

    num_classes = 5

    def __init__(
        self,
        ratings: Table,
        items: tuple[Table, Convert],
        users: tuple[Table, Convert] | None,
        task: Task,
    ) -> None:
        self.ratings, self.items, self.users, self.task = ratings, items, users, task
        self.num_classes = 5 if task == "multiclass" else 2
        side = (*(USER_FIELDS if users else ()), *ITEM_FIELDS)
        self.layout = Layout(cat=("user_id", "item_id", *side))
        self.files = (ratings.path, *((users[0].path,) if users else ()), items[0].path)

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        items = self.items[0].side(policy, self.items[1])
        users = self.users[0].side(policy, self.users[1]) if self.users else None
        with closing(self.ratings.batches(policy, chunk_rows)) as batches:
            for batch, cols in batches:
                require(cols["user"], batch.checks, "user id")
                require(cols["item"], batch.checks, "item id")
                y = rating_label(cols["rating"], batch.checks, self.task)
                keep = batch.resolve(policy)
                side = users.lookup(cols["user"], USER_FIELDS) if users else []
                side += items.lookup(cols["item"], ITEM_FIELDS)
                yield Chunk.kept([cols["user"], cols["item"], *side], [], y, keep, 0)


# --- the published layouts ----------------------------------------------------------------------


def _users_raw_age(batch: TextBatch, c: Columns) -> Columns:
    return {
        "age": age_bucket(batch, c["age"]),
        "gender": c["gender"],
        "occupation": c["occupation"],
        "zip": zip_prefix(c["zip"]),
    }


def _users_coded_age(batch: TextBatch, c: Columns) -> Columns:
    return {**c, "zip": zip_prefix(c["zip"])}


def _items_grouplens(batch: TextBatch, c: Columns) -> Columns:
    flags = [c[g] for g in GROUPLENS_GENRES]
    slots = flag_genres(batch, flags)
    return {
        "year": year_in(c["release"], r"(?P<year>\d{4})\s*$"),
        **dict(zip(GENRES, slots, strict=True)),
    }


def _items_titled(sep: str) -> Convert:
    def convert(batch: TextBatch, c: Columns) -> Columns:
        year = year_in(c["title"], r"\((?P<year>\d{4})\)\s*$")
        return {"year": year, **dict(zip(GENRES, genre_slots(c["genres"], sep), strict=True))}

    return convert


def _items_atomic(batch: TextBatch, c: Columns) -> Columns:
    return {"year": c["year"], **dict(zip(GENRES, genre_slots(c["genres"], " "), strict=True))}


def grouplens_100k(folder: Path, task: Task) -> MovieLensReader:
    """ml-100k as GroupLens ships it: u.data, u.user, u.item (latin-1, '|'-separated tables)."""
    pipe = dict(delimiter="|", encoding="latin1")
    item_cols = ("id", "title", "release", "video", "url", *GROUPLENS_GENRES)
    ratings = Table(
        folder / "u.data",
        TextFormat("\t", columns=("user", "item", "rating", "time"), encoding="latin1"),
        {"user": "user", "item": "item", "rating": "rating"},
    )
    users = Table(
        folder / "u.user",
        TextFormat(**pipe, columns=("id", "age", "gender", "occupation", "zip")),
        {k: k for k in ("id", "age", "gender", "occupation", "zip")},
    )
    items = Table(
        folder / "u.item",
        TextFormat(**pipe, columns=item_cols),
        {k: k for k in ("id", "release", *GROUPLENS_GENRES)},
    )
    return MovieLensReader(ratings, (items, _items_grouplens), (users, _users_raw_age), task)


def atomic_100k(inter: Path, task: Task) -> MovieLensReader:
    """RecBole atomic files `<name>.inter/.user/.item`: tab-separated, typed `name:type` headers."""
    tab = TextFormat("\t", header=True)

    def table(path: Path, wanted: dict[str, str]) -> Table:
        header = {name.split(":", 1)[0]: name for name in column_names(path, tab)}
        missing = [v for v in wanted.values() if v not in header]
        if missing:
            raise DataError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
        return Table(path, tab, {k: header[v] for k, v in wanted.items()})

    ratings = table(inter, {"user": "user_id", "item": "item_id", "rating": "rating"})
    users = table(
        inter.with_suffix(".user"),
        {
            "id": "user_id",
            "age": "age",
            "gender": "gender",
            "occupation": "occupation",
            "zip": "zip_code",
        },
    )
    items = table(
        inter.with_suffix(".item"), {"id": "item_id", "year": "release_year", "genres": "class"}
    )
    return MovieLensReader(ratings, (items, _items_atomic), (users, _users_raw_age), task)


def movielens_1m(folder: Path, task: Task) -> MovieLensReader:
    """ml-1m: ratings.dat, users.dat, movies.dat, '::'-separated, latin-1."""
    line = TextFormat("\x1f", columns=("line",), encoding="latin1")
    ratings = Table(
        folder / "ratings.dat", line, {"user": "0", "item": "1", "rating": "2"}, "::", 4
    )
    users = Table(
        folder / "users.dat",
        line,
        {"id": "0", "gender": "1", "age": "2", "occupation": "3", "zip": "4"},
        "::",
        5,
    )
    items = Table(folder / "movies.dat", line, {"id": "0", "title": "1", "genres": "2"}, "::", 3)
    return MovieLensReader(ratings, (items, _items_titled("|")), (users, _users_coded_age), task)


def movielens_20m(folder: Path, task: Task) -> MovieLensReader:
    """ml-20m / ml-25m: ratings.csv and movies.csv with headers (no user features)."""
    ratings = Table(
        folder / "ratings.csv",
        TextFormat(",", header=True),
        {"user": "userId", "item": "movieId", "rating": "rating"},
    )
    items = Table(
        folder / "movies.csv",
        TextFormat(",", header=True, quoted=True),
        {"id": "movieId", "title": "title", "genres": "genres"},
    )
    for table in (ratings, items):
        have = column_names(table.path, table.fmt)
        missing = [c for c in table.columns.values() if c not in have]
        if missing:
            raise DataError(f"{table.path}:1: header lacks column(s) {', '.join(missing)}")
    return MovieLensReader(ratings, (items, _items_titled("|")), None, task)
