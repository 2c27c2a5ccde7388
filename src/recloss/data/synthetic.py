"""Criteo-shaped synthetic CTR data with a known true click probability per row.

Each field takes values 0..cardinality-1 with power-law (Zipf) frequencies. The true logit is an
intercept, plus a first-order effect per value, plus low-rank interactions of a few planted field
pairs (an FM restricted to those pairs); first-order and pairwise parts contribute equal variance
and `signal` is the standard deviation of their sum. The intercept is calibrated so the mean
click probability equals `positive_rate`; labels are Bernoulli draws of that probability.
Rows are generated in fixed-size blocks from seeds derived from `seed`, so the data set does
not depend on how it is consumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from recloss.config import SyntheticConfig
from recloss.errors import ConfigError

BLOCK_ROWS = 1 << 16  # rows per generated block: fixes the random stream of each row
PILOT_ROWS = 1 << 17  # rows used to scale the logit and calibrate the intercept
RANK = 4  # dimension of the planted pairwise interactions
CRITEO_INTS = 13


@dataclass(frozen=True)
class PlantedModel:
    """The true click model behind a synthetic data set."""

    cdf: np.ndarray  # cumulative value frequencies [cardinality]
    first: np.ndarray  # first-order effects [fields, cardinality]
    pairs: np.ndarray  # planted field pairs [P, 2]
    factors: np.ndarray  # interaction factors [fields, cardinality, RANK]
    scale_first: float = 1.0
    scale_pairs: float = 1.0
    intercept: float = 0.0

    def logit(self, codes: np.ndarray) -> np.ndarray:
        """True logit of rows of value codes [n, fields]."""
        return (
            self.intercept
            + self.scale_first * self._first(codes)
            + self.scale_pairs * (self._pairs(codes))
        )

    def _first(self, codes: np.ndarray) -> np.ndarray:
        return self.first[np.arange(codes.shape[1]), codes].sum(axis=1)

    def _pairs(self, codes: np.ndarray) -> np.ndarray:
        total = np.zeros(len(codes))
        for i, j in self.pairs:
            total += np.einsum(
                "nk,nk->n", self.factors[i, codes[:, i]], self.factors[j, codes[:, j]]
            )
        return total

    def sample(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        """Value codes [rows, fields] (int32) drawn from the Zipf frequencies."""
        u = rng.random((rows, self.first.shape[0]))
        return np.searchsorted(self.cdf, u, side="right").astype(np.int32)


def planted_model(cfg: SyntheticConfig) -> PlantedModel:
    """Draw the true model for `cfg` and calibrate its scales and intercept on a pilot sample."""
    rng = np.random.default_rng([cfg.seed, 0])
    freq = np.arange(1, cfg.cardinality + 1, dtype=np.float64) ** -cfg.zipf_exponent
    cdf = np.cumsum(freq / freq.sum())
    cdf[-1] = 1.0
    all_pairs = np.array(list(combinations(range(cfg.fields), 2)))
    chosen = rng.choice(len(all_pairs), size=min(cfg.interactions, len(all_pairs)), replace=False)
    model = PlantedModel(
        cdf=cdf,
        first=rng.standard_normal((cfg.fields, cfg.cardinality)),
        pairs=all_pairs[np.sort(chosen)],
        factors=rng.standard_normal((cfg.fields, cfg.cardinality, RANK)) / np.sqrt(RANK),
    )
    pilot = model.sample(np.random.default_rng([cfg.seed, 1]), min(cfg.rows, PILOT_ROWS))
    first, pairs = model._first(pilot), model._pairs(pilot)
    share = 0.5 if len(model.pairs) else 1.0
    scale_first = cfg.signal * np.sqrt(share) / max(first.std(), 1e-12)
    scale_pairs = cfg.signal * np.sqrt(1 - share) / max(pairs.std(), 1e-12) if share < 1 else 0.0
    centred = scale_first * first + scale_pairs * pairs
    intercept = _calibrate(centred, cfg.positive_rate)
    return PlantedModel(
        cdf, model.first, model.pairs, model.factors, scale_first, scale_pairs, intercept
    )


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large |x|."""
    return np.exp(-np.logaddexp(0.0, -x))


def _calibrate(logits: np.ndarray, rate: float) -> float:
    """Intercept b with mean(sigmoid(logits + b)) == rate, by bisection."""
    low, high = -60.0, 60.0
    for _ in range(80):
        mid = (low + high) / 2
        if expit(logits + mid).mean() < rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def generate(cfg: SyntheticConfig) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Blocks of (value codes [n, fields] int32, labels [n] int8, true probability [n] float32)."""
    model = planted_model(cfg)
    for block, start in enumerate(range(0, cfg.rows, BLOCK_ROWS)):
        rng = np.random.default_rng([cfg.seed, 2, block])
        codes = model.sample(rng, min(BLOCK_ROWS, cfg.rows - start))
        p = expit(model.logit(codes))
        y = (rng.random(len(p)) < p).astype(np.int8)
        yield codes, y, p.astype(np.float32)


def hex_tokens(ids: np.ndarray) -> np.ndarray:
    """8-digit lower-case hex strings of uint32 ids, as a NumPy bytes array."""
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    shifts = np.arange(28, -4, -4, dtype=np.uint32)
    nibbles = (ids.astype(np.uint32)[:, None] >> shifts) & 0xF
    return digits[nibbles].view("S8").ravel()


def write_criteo_tsv(
    path: str | Path, cfg: SyntheticConfig, missing: float = 0.05, seed: int = 0
) -> Path:
    """Write synthetic data in Criteo's TSV format (label, I1..I13, C1..C26).

    Needs `cfg.fields == 39`. Integer fields hold code - 2 (so -2 and -1 occur), categorical
    fields an 8-digit hex token per value; a `missing` share of each field is left empty.
    """
    if cfg.fields != CRITEO_INTS + 26:
        raise ConfigError(f"data.synthetic.fields: Criteo files have 39 fields, not {cfg.fields}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, cfg.seed])
    tokens = [
        pa.array(hex_tokens(rng.integers(0, 2**32, cfg.cardinality)).astype(str))
        for _ in range(cfg.fields - CRITEO_INTS)
    ]
    names = ["label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))]
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with pacsv.CSVWriter(path, _criteo_schema(names), write_options=options) as writer:
        for codes, y, _ in generate(cfg):
            gaps = rng.random(codes.shape) < missing
            columns = [pa.array(y)]
            columns += [pa.array(codes[:, f] - 2, pa.int64(), mask=gaps[:, f]) for f in range(13)]
            for f, table in enumerate(tokens, CRITEO_INTS):
                columns.append(table.take(pa.array(codes[:, f], mask=gaps[:, f])))
            writer.write_batch(pa.record_batch(columns, names=names))
    return path


def _criteo_schema(names: list[str]) -> pa.Schema:
    types = [pa.int8()] + [pa.int64()] * CRITEO_INTS + [pa.string()] * (len(names) - 14)
    return pa.schema(list(zip(names, types, strict=True)))
