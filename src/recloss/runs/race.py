"""Race: train every candidate loss alone for a short budget, retrain with the best one.

Each candidate trains from the same initialisation on the same batches (the run's seed) for
`budget` epochs (fractions allowed) and is scored by its validation AUC then; the model is
retrained from scratch with the winner alone (one-hot weights, `recloss.runs.twostage`). A race
costs `budget` epochs per candidate on top of the retrain.

It is model selection with a horizon of epochs where AutoLoss's hypergradient looks one step
ahead: on binary tasks the best fixed loss's lead over CE builds up over epochs and the one-step
signal does not see it (the README's AutoLoss benchmarks). The winner is often a loss that ranks
well and calibrates badly (focal, KL): pair a race with `train.calibration` to meet CE's logloss.
Picking by calibrated validation logloss, or keeping CE unless the leader's validation lead is
significant, did no better (`benchmarks/race_selection.py`).

Options (`loss.params`): `budget` (1.0 epoch). The search record's details give every
candidate's validation AUC, the steps each trained and the winner.
"""

from __future__ import annotations

import math
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from recloss.config import LossConfig, RunConfig
from recloss.data import PreparedDataset
from recloss.data.schema import Schema
from recloss.errors import RecLossError, TrainingDiverged
from recloss.params import check_params
from recloss.rundir import RunDir, SearchRecord
from recloss.runs.online import build_trainer
from recloss.runs.trials import train_to, training_batches
from recloss.runs.twostage import mixture_config
from recloss.search.base import check_options
from recloss.training import Trainer


@dataclass(frozen=True)
class RaceOptions:
    """`loss.params` of a `race` run."""

    budget: float = 1.0  # epochs each candidate trains before the validation AUCs are compared

    @classmethod
    def of(cls, params: dict[str, Any]) -> RaceOptions:
        o = cls(**check_params(cls, "race", params, "loss.params"))
        check_options([("budget", o.budget, o.budget > 0, "a positive number of epochs")])
        return o


class RaceSearch:
    """Race: each candidate alone for a short budget; the best validation AUC retrains."""

    label = "Race"

    def check(self, loss: LossConfig, schema: Schema | None) -> None:
        RaceOptions.of(loss.params)

    def search(
        self, cfg: RunConfig, dataset: PreparedDataset, run_dir: RunDir, resume: bool
    ) -> SearchRecord:
        """Train each candidate to the budget and score it (an interrupted race starts again)."""
        budget = RaceOptions.of(cfg.loss.params).budget
        started = time.perf_counter()
        aucs, steps = {}, 0
        for candidate in cfg.loss.candidates:
            trainer = trial(cfg, dataset, candidate, budget)
            aucs[candidate] = _valid_auc(trainer)
            steps = trainer.state.step
        scored = {c: auc for c, auc in aucs.items() if math.isfinite(auc)}
        if not scored:
            raise RecLossError(
                "race: no candidate has a validation AUC (is the validation split one class, or "
                "did every candidate diverge?)"
            )
        winner = max(scored, key=scored.__getitem__)  # ties: the first candidate listed
        return SearchRecord(
            method=cfg.loss.name,
            weights={c: float(c == winner) for c in cfg.loss.candidates},
            seconds=time.perf_counter() - started,
            details={"winner": winner, "valid_auc": aucs, "steps": steps},
        )


def _valid_auc(trainer: Trainer) -> float:
    """The trained candidate's validation AUC; NaN, out of the race, where it diverged."""
    try:
        return float(trainer.evaluate(trainer.data.valid)["auc"])
    except TrainingDiverged:
        return math.nan


def trial(cfg: RunConfig, dataset: PreparedDataset, candidate: str, budget: float) -> Trainer:
    """A trainer of `candidate` alone from the run's initialisation, trained for `budget` epochs."""
    onehot = {c: float(c == candidate) for c in cfg.loss.candidates}
    trainer = build_trainer(mixture_config(cfg, onehot), dataset, run_dir=None)
    per_epoch = trainer.steps_per_epoch()
    with closing(training_batches(trainer, per_epoch)) as batches:
        train_to(trainer, batches, max(1, round(budget * per_epoch)))
    return trainer


__all__ = ["RaceOptions", "RaceSearch", "trial"]
