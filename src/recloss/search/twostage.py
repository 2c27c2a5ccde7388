"""Two-stage strategies: search one global weight per candidate loss, then retrain from scratch.

DARTS, meta-learning (MeLU-style) and BOHB find fixed loss weights in a search stage; the model is
then retrained from freshly initialised weights with the found weights frozen, exactly as a
`weighted` run with those weights and the same seed. `recloss train` runs both stages in one run
directory:

    run_dir/search/       the search stage's own files (DARTS and meta: a training run)
    run_dir/search.json   the search result, written before the retrain starts
    run_dir/metrics.json  the retrained model's metrics, plus "search" (method, weights, seconds
                          and the method's details) and "retrain_seconds"

Resuming a run skips a finished search and continues the retrain from its last checkpoint; an
interrupted DARTS or meta search continues from the search stage's checkpoint, an interrupted
BOHB search starts again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recloss.config import LossConfig, RunConfig
from recloss.errors import CompatibilityError

if TYPE_CHECKING:
    from recloss.data import PreparedDataset
    from recloss.train import Trainer

SEARCH_DIR = "search"
SEARCH_FILE = "search.json"
METRICS_FILE = "metrics.json"


@dataclass
class SearchResult:
    """What a search stage found: one weight per candidate, its cost, and method details."""

    method: str
    weights: dict[str, float]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The JSON form kept in search.json and in metrics.json's "search"."""
        return {
            "method": self.method,
            "weights": self.weights,
            "seconds": self.seconds,
            **self.details,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SearchResult:
        rest = {k: v for k, v in record.items() if k not in ("method", "weights", "seconds")}
        return cls(record["method"], dict(record["weights"]), float(record["seconds"]), rest)


class TwoStage:
    """Mixin of strategies that run as a search stage followed by a fixed-weight retrain."""

    def search(
        self, cfg: RunConfig, dataset: PreparedDataset, run_dir: Path, resume: bool = False
    ) -> SearchResult:
        """Find the loss weights, writing the stage's files under `run_dir`."""
        raise NotImplementedError


def weighted_config(cfg: RunConfig, weights: dict[str, float]) -> RunConfig:
    """`cfg` with its loss replaced by `weighted` with these weights (the retrain, a trial)."""
    params = {"weights": [weights[c] for c in cfg.loss.candidates]}
    loss = LossConfig(name="weighted", candidates=list(cfg.loss.candidates), params=params)
    return cfg.model_copy(update={"loss": loss})


def train_search_stage(
    cfg: RunConfig, dataset: PreparedDataset, run_dir: Path, epochs: int, resume: bool = False
) -> tuple[Trainer, dict[str, Any]]:
    """Train `cfg`'s strategy online for `epochs` epochs in `run_dir`: (trainer, metrics)."""
    from recloss.train import CHECKPOINT, Trainer  # deferred: recloss.train imports this package

    search_cfg = cfg.model_copy(deep=True)
    search_cfg.train.epochs = epochs
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(search_cfg, dataset, run_dir)
    if resume and (run_dir / CHECKPOINT).is_file():
        trainer.load_checkpoint()
    return trainer, trainer.fit()


def run_two_stage(
    method: TwoStage,
    cfg: RunConfig,
    dataset: PreparedDataset,
    run_dir: Path,
    *,
    stop_after_epochs: int | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Search (or reuse a saved search when resuming), then retrain; return the run's metrics.

    `stop_after_epochs` interrupts the retrain stage (tests use it to simulate a crash).
    """
    from recloss.train import CHECKPOINT, Trainer, distributed_rank  # deferred: see above

    found = load_search(run_dir, cfg) if resume else None
    if found is None:
        found = method.search(cfg, dataset, run_dir / SEARCH_DIR, resume=resume)
        if distributed_rank()[0] == 0:
            write_json(run_dir / SEARCH_FILE, found.record())
    trainer = Trainer(weighted_config(cfg, found.weights), dataset, run_dir)
    if resume and (run_dir / CHECKPOINT).is_file():
        trainer.load_checkpoint()
    metrics = trainer.fit(stop_after_epochs=stop_after_epochs)
    metrics.update(search=found.record(), retrain_seconds=metrics["wall_seconds"])
    if trainer.is_main:
        write_json(run_dir / METRICS_FILE, metrics)
    return metrics


def load_search(run_dir: Path, cfg: RunConfig) -> SearchResult | None:
    """The saved search result of a run directory, or None when its search did not finish."""
    path = run_dir / SEARCH_FILE
    if not path.is_file():
        return None
    try:
        found = SearchResult.from_record(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise CompatibilityError(f"{path}: not a readable search result ({err})") from None
    if list(found.weights) != list(cfg.loss.candidates):
        raise CompatibilityError(
            f"{path}: weights candidates [{', '.join(found.weights)}], the run's config "
            f"has [{', '.join(cfg.loss.candidates)}]"
        )
    return found


def write_json(path: Path, obj: Any) -> None:
    """Write JSON beside `path`, then rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=True))
    os.replace(tmp, path)


__all__ = [
    "SearchResult",
    "TwoStage",
    "load_search",
    "weighted_config",
    "run_two_stage",
    "train_search_stage",
]
