"""Two-stage methods: search one global weight per candidate loss, then retrain from scratch.

DARTS, meta-learning (MeLU-style) and BOHB find fixed loss weights in a search stage; the model is
then retrained from freshly initialised weights with the found weights frozen, exactly as a
`weighted` run with those weights and the same seed. One run folder holds both stages:

    run_dir/search/       the search stage's own run folder (DARTS and meta: an online run)
    run_dir/search.json   the search result, written before the retrain starts
    run_dir/metrics.json  the retrained model's record, with `search` and `retrain_seconds`,
                          written once, when the retrain has finished

`loss.params.retrain` (`weighted`, the default, or `autoloss`): with `autoloss` the retrain is an
AutoLoss run with its defaults whose controller starts at the searched mixture (AutoLoss's `prior`)
instead of a run with the mixture frozen: the search's horizon of epochs picks the mixture, the
controller adapts it per example.

Resuming a run skips a finished search and continues the retrain from its last checkpoint; an
interrupted DARTS or meta search continues from the search stage's checkpoint, an interrupted
BOHB search starts again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from recloss.config import LossConfig, RunConfig
from recloss.data import PreparedDataset
from recloss.data.schema import Schema
from recloss.errors import CompatibilityError
from recloss.rundir import RunDir, RunRecord, SearchRecord
from recloss.runs.online import fit_run, run_online, save_run
from recloss.search import STRATEGIES, build_strategy, strategy_params
from recloss.search.base import OptionError, check_options, positive_int
from recloss.training import Callback, distributed_rank


class Search(Protocol):
    """A search stage: its display name, its own options, and the search itself."""

    label: str

    def check(self, loss: LossConfig, schema: Schema | None) -> None:
        """Fail now, before any training, on options the search or its stage cannot take
        (without `schema`, before the data is read: those it can check without it)."""

    def search(
        self, cfg: RunConfig, dataset: PreparedDataset, run_dir: RunDir, resume: bool
    ) -> SearchRecord:
        """Find the loss weights, writing the stage's files under `run_dir`."""


@dataclass(frozen=True)
class OnlineSearch:
    """Search by training an online strategy (DARTS, meta) for `search_epochs` epochs."""

    strategy: str  # the online strategy's name
    label: str

    @property
    def description(self) -> str:
        doc = (STRATEGIES.get(self.strategy).__doc__ or self.strategy).strip().splitlines()[0]
        return f"{doc.rstrip('.')}; searched, then retrained frozen (two-stage)."

    def stage_config(self, cfg: RunConfig) -> RunConfig:
        """The search stage's run: the online strategy, `search_epochs` epochs."""
        params = dict(cfg.loss.params)
        epochs = params.pop("search_epochs", 1)
        check_options([("search_epochs", epochs, positive_int(epochs), "a positive integer")])
        loss = cfg.loss.model_copy(update={"name": self.strategy, "params": params})
        train = cfg.train.model_copy(update={"epochs": epochs})
        return cfg.model_copy(update={"loss": loss, "train": train})

    def check(self, loss: LossConfig, schema: Schema | None) -> None:
        stage = self.stage_config(RunConfig(loss=loss)).loss
        if schema is None:
            strategy_params(stage)
        else:
            build_strategy(stage, schema)

    def search(
        self, cfg: RunConfig, dataset: PreparedDataset, run_dir: RunDir, resume: bool
    ) -> SearchRecord:
        stage, stage_cfg = run_dir.search_stage(), self.stage_config(cfg)
        record = run_online(stage_cfg, dataset, stage, resume=resume)
        details = {
            "epochs": record.epochs,
            "updates": record.history[-1].strategy["updates"],
            "trace": [entry.strategy["weights"] for entry in record.history],
        }
        return SearchRecord(
            method=cfg.loss.name, weights=record.weights, seconds=record.wall_seconds,
            details=details,
        )  # fmt: skip


RETRAINS = ("weighted", "autoloss")


def mixture_config(
    cfg: RunConfig, weights: dict[str, float], retrain: str = "weighted"
) -> RunConfig:
    """`cfg` with its loss replaced by `weighted` with these weights (the retrain, a trial), or
    by AutoLoss starting at them (`retrain: autoloss`)."""
    mixture = [weights[c] for c in cfg.loss.candidates]
    params = {"weights": mixture} if retrain == "weighted" else {"prior": mixture}
    loss = LossConfig(name=retrain, candidates=list(cfg.loss.candidates), params=params)
    return cfg.model_copy(update={"loss": loss})


def split_retrain(loss: LossConfig) -> tuple[str, LossConfig]:
    """`loss.params.retrain` and the loss config the search stage sees without it."""
    params = dict(loss.params)
    retrain = params.pop("retrain", "weighted")
    if retrain not in RETRAINS:
        choices = ", ".join(RETRAINS)
        raise OptionError("retrain", f"unknown {retrain!r}; choose one of: {choices}")
    return retrain, loss.model_copy(update={"params": params})


def run_two_stage(
    search: Search,
    cfg: RunConfig,
    dataset: PreparedDataset,
    run_dir: RunDir,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> RunRecord:
    """Search (or reuse the saved search when resuming), retrain, write the record once.

    `callbacks` join the retrain's trainer.
    """
    retrain, search_loss = split_retrain(cfg.loss)
    found = _saved_search(run_dir, cfg) if resume else None
    if found is None:
        found = search.search(
            cfg.model_copy(update={"loss": search_loss}), dataset, run_dir, resume
        )
        if distributed_rank()[0] == 0:
            run_dir.write_search(found)
    trainer, record = fit_run(
        mixture_config(cfg, found.weights, retrain),
        dataset,
        run_dir,
        resume=resume,
        callbacks=callbacks,
    )
    record = record.model_copy(update={"search": found, "retrain_seconds": record.wall_seconds})
    save_run(run_dir, trainer, record)
    return record


def _saved_search(run_dir: RunDir, cfg: RunConfig) -> SearchRecord | None:
    found = run_dir.read_search()
    if found is not None and list(found.weights) != list(cfg.loss.candidates):
        raise CompatibilityError(
            f"{run_dir.path / RunDir.SEARCH}: weights candidates [{', '.join(found.weights)}], "
            f"the run's config has [{', '.join(cfg.loss.candidates)}]"
        )
    return found


__all__ = [
    "RETRAINS",
    "OnlineSearch",
    "Search",
    "run_two_stage",
    "split_retrain",
    "mixture_config",
]
