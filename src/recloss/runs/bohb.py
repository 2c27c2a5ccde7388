"""BOHB-style loss-weight search (the AutoLoss paper's baseline): TPE + Hyperband, then retrain.

A trial trains the model with fixed loss weights `w` for a budget counted in epochs (fractions
allowed) and is scored by validation AUC. Optuna's TPE sampler, seeded with `train.seed`,
proposes the weights: it samples `u_i` in (0, 1] per candidate and uses
`w_i = -log(u_i) / sum_j -log(u_j)`, uniform on the simplex (Dirichlet(1)) before TPE has
learned anything. Optuna's Hyperband pruner stops weak trials early: every trial reports its
validation AUC after `min_budget * eta^k` epochs and after `max_budget`. All trials start from
the same initialisation and batch order, so they differ only in their weights. The model is then
retrained from scratch with the best finished trial's weights (see `recloss.runs.twostage`).

Options (`loss.params`): `trials` (20), `min_budget` (0.1 epoch), `max_budget` (1.0 epoch),
`eta` (Hyperband's reduction factor, 3). Needs Optuna: `pip install 'recloss[tune]'`.
The search record in metrics.json lists every trial: number, weights, steps trained, budget
reached (epochs), value (its last validation AUC), pruned, state (complete, pruned or fail).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recloss.config import LossConfig, RunConfig
from recloss.data import PreparedDataset
from recloss.data.schema import Schema
from recloss.errors import ConfigError, RecLossError, TrainingDiverged
from recloss.params import check_params
from recloss.rundir import RunDir, SearchRecord
from recloss.runs.online import build_trainer
from recloss.runs.trials import train_to, training_batches
from recloss.runs.twostage import mixture_config
from recloss.search.base import check_options, positive_int
from recloss.training import Trainer

if TYPE_CHECKING:
    import optuna

STUDY_NAME = "recloss-bohb"  # Hyperband assigns brackets by a hash of the study name


@dataclass(frozen=True)
class BohbOptions:
    """`loss.params` of a `bohb` run."""

    trials: int = 20
    min_budget: float = 0.1
    max_budget: float = 1.0
    eta: int = 3

    @classmethod
    def of(cls, params: dict[str, Any]) -> BohbOptions:
        o = cls(**check_params(cls, "bohb", params, "loss.params"))
        check_options([
            ("trials", o.trials, positive_int(o.trials), "a positive integer"),
            ("min_budget", o.min_budget, o.min_budget > 0, "a positive number of epochs"),
            ("max_budget", o.max_budget, o.max_budget >= o.min_budget, "at least min_budget"),
            ("eta", o.eta, positive_int(o.eta) and o.eta >= 2, "an integer of at least 2"),
        ])  # fmt: skip
        return o


class BohbSearch:
    """BOHB: loss weights searched by TPE with Hyperband budgets (then retrained frozen)."""

    label = "BOHB"

    def check(self, loss: LossConfig, schema: Schema | None) -> None:
        BohbOptions.of(loss.params)
        import_optuna()  # fail before any training when it is missing

    def search(
        self, cfg: RunConfig, dataset: PreparedDataset, run_dir: RunDir, resume: bool
    ) -> SearchRecord:
        """Run the trials (an interrupted search starts again); return the best finished one."""
        optuna = import_optuna()
        o = BohbOptions.of(cfg.loss.params)
        started = time.perf_counter()
        per_epoch = steps_per_epoch(cfg, dataset)
        budgets = budget_steps(o.min_budget, o.max_budget, o.eta, per_epoch)
        with quiet(optuna):
            study = optuna.create_study(
                study_name=STUDY_NAME,
                direction="maximize",
                sampler=optuna.samplers.TPESampler(seed=cfg.train.seed),
                pruner=optuna.pruners.HyperbandPruner(budgets[0], budgets[-1], o.eta),
            )
            study.optimize(
                lambda trial: run_trial(trial, cfg, dataset, budgets, per_epoch),
                n_trials=o.trials,
            )
        records = [trial_record(t, per_epoch) for t in study.trials]
        try:
            best = study.best_trial
        except ValueError:
            raise RecLossError(
                "bohb: no trial finished with a validation AUC (is the validation split one class?)"
            ) from None
        details = {"best_trial": best.number, "budgets": budgets, "trials": records}
        return SearchRecord(
            method=cfg.loss.name, weights=best.user_attrs["weights"],
            seconds=time.perf_counter() - started, details=details,
        )  # fmt: skip


def import_optuna() -> Any:
    """The optuna module; ConfigError saying how to install it when it is missing."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            "loss.name: bohb needs Optuna; install it with pip install 'recloss[tune]'"
        ) from None
    return optuna


@contextmanager
def quiet(optuna: Any) -> Iterator[None]:
    """Silence Optuna's per-trial log lines (warnings still show); restore its verbosity after."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def steps_per_epoch(cfg: RunConfig, dataset: PreparedDataset) -> int:
    """Training steps in one epoch, capped like the trainer's (`train.max_steps_per_epoch`)."""
    batches = -(-len(dataset.split("train")) // cfg.train.batch_size)
    return min(batches, cfg.train.max_steps_per_epoch or batches)


def budget_steps(min_budget: float, max_budget: float, eta: int, per_epoch: int) -> list[int]:
    """Steps at which trials report: `min_budget * eta^k` epochs below `max_budget`, then it."""
    low = max(1, round(min_budget * per_epoch))
    high = max(low, round(max_budget * per_epoch))
    points = [low * eta**k for k in range(64) if low * eta**k < high]
    return [*points, high]


def suggest_weights(trial: optuna.Trial, candidates: Sequence[str]) -> dict[str, float]:
    """Loss weights on the simplex from one uniform draw per candidate (Dirichlet(1) at first)."""
    raw = [-math.log(trial.suggest_float(f"u_{c}", 1e-6, 1.0)) for c in candidates]
    total = sum(raw)
    if total <= 0:  # every draw at exactly 1: no preference
        return {c: 1.0 / len(candidates) for c in candidates}
    return {c: float(r / total) for c, r in zip(candidates, raw, strict=True)}


def run_trial(
    trial: optuna.Trial,
    cfg: RunConfig,
    dataset: PreparedDataset,
    budgets: list[int],
    per_epoch: int,
) -> float:
    """Train with the trial's weights up to each budget; report validation AUC; prune or finish."""
    weights = suggest_weights(trial, cfg.loss.candidates)
    trial.set_user_attr("weights", weights)
    trainer = build_trainer(mixture_config(cfg, weights), dataset, run_dir=None)
    try:
        return train_to_budgets(trainer, trial, budgets, per_epoch)
    except TrainingDiverged:  # a mixture that diverges is a bad trial, not a failed search
        trial.set_user_attr("diverged", True)
        raise import_optuna().TrialPruned() from None
    finally:
        trial.set_user_attr("steps", trainer.state.step)


def train_to_budgets(
    trainer: Trainer, trial: optuna.Trial, budgets: list[int], per_epoch: int
) -> float:
    """Step the trainer to each budget in turn, reporting validation AUC; the last one's AUC."""
    optuna = import_optuna()
    auc = float("nan")
    with closing(training_batches(trainer, per_epoch)) as batches:
        for budget in budgets:
            train_to(trainer, batches, budget)
            auc = trainer.evaluate(trainer.data.valid)["auc"]
            trial.report(auc, budget)
            if trial.should_prune():
                raise optuna.TrialPruned()
    return auc


def trial_record(trial: optuna.trial.FrozenTrial, per_epoch: int) -> dict[str, Any]:
    """One trial of the search record: weights, steps and budget reached, value, state."""
    steps = trial.user_attrs.get("steps", 0)
    reported = trial.intermediate_values
    value = trial.value if trial.value is not None else reported.get(trial.last_step)
    return {
        "number": trial.number,
        "weights": trial.user_attrs.get("weights"),
        "steps": steps,
        "budget": steps / per_epoch,
        "value": value,
        "pruned": trial.state.name == "PRUNED",
        "diverged": trial.user_attrs.get("diverged", False),
        "state": trial.state.name.lower(),
    }


__all__ = ["BohbOptions", "BohbSearch", "budget_steps", "suggest_weights"]
