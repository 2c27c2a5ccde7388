"""AutoLoss variants: the paper's form, and remedies for its one-step-lookahead bias.

`variant: paper` is the method as published (AUTOLOSS.md). `variant: normalised` adds:
- step-size normalisation (`normalise`: a reference loss, `ce` or `mean`; see `search.stepsize`),
  after the within-batch normalisation of learning-to-reweight (Ren et al., ICML 2018) and
  Meta-Weight-Net (Shu et al., NeurIPS 2019);
- a minimum number of controller steps per epoch (`min_controller_steps`): on a data set with few
  steps per epoch the controller steps more often than every K model steps, or several times per
  model step (on fresh validation batches), so that it learns or stays at its prior;
- a prior centred on a reference candidate (`prior`: `ce` gives CE a weight of `prior_weight`,
  0.97, and the other candidates the rest together; `uniform` is the paper's): a uniform mixture
  with hinge in it is worse than CE on binary tasks, and a controller that learns slowly stays
  near its prior;
- a warm-up (`warmup_steps`, in controller steps): the training loss uses the prior mixture
  (example weights 1) while the controller takes its first steps;
- the validation objective (`objective`): the logloss, or on binary tasks `pairwise`, a smooth
  surrogate of AUC (`objectives.pairwise_loss`) that no shift of the class prior can lower, or
  `calibrated`, the logloss after a Platt map fitted to the validation batch (blind to
  calibration; `recloss.calibration`);
- the unrolled step (`unroll`): `sgd`, the paper's, or `adam`, preconditioned by the model
  optimiser's second moments as its Adam steps (`recloss.training.precondition`);
- the horizon (`horizon`): `step`, the one step about to be taken, or `window`, every model step
  since the last controller step, all along the one validation gradient
  (`hypergrad.window_hypergradients`): a longer horizon against the short-horizon bias (Wu et al.,
  ICLR 2018) for the price of one more `J g'` per model step; not in either preset.
`example_weight` (off in both variants) adds a per-example weight output beside the mixture,
`exp(o_b)` normalised to mean 1 within each label of the batch (`controller.effective_weights`):
it can move an example's share of the step towards zero, as learning-to-reweight's weights can,
but not shift the class prior. Each explicit option overrides the variant's preset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from recloss.search.base import OptionError
from recloss.search.objectives import OBJECTIVES
from recloss.search.stepsize import REFERENCES


@dataclass(frozen=True)
class Remedies:
    """The remedies an AutoLoss run uses."""

    normalise: str | None = None  # reference loss of the step-size normalisation
    example_weight: bool = False
    min_controller_steps: int = 0  # per epoch; 0: every K model steps only
    warmup_steps: int = 0  # controller steps taken with the mixture at its prior
    # "uniform", a candidate that starts with `prior_weight` of the mixture, or one weight per
    # candidate (a searched mixture: `loss.params.retrain: autoloss` of a two-stage method)
    prior: str | tuple[float, ...] = "uniform"
    prior_weight: float = 0.97
    objective: str = "logloss"  # the validation objective (`objectives.OBJECTIVES`)
    horizon: str = "step"  # the model steps a controller step differentiates: HORIZONS
    unroll: str = "sgd"  # the unrolled model step: UNROLLS


PRESETS = {
    "paper": Remedies(),
    "normalised": Remedies(normalise="ce", min_controller_steps=8, warmup_steps=8, prior="ce"),
}
HORIZONS = ("step", "window")
UNROLLS = ("sgd", "adam")  # adam: preconditioned by the optimiser's second moments
VARIANTS = ("auto", *PRESETS)  # auto: normalised for binary tasks, paper for multi-class ones


PRIOR_FLOOR = 1e-3  # the least share of a given mixture: every candidate stays reachable


def prior_logits(
    prior: str | Sequence[float], candidates: list[str], weight: float = 0.97
) -> torch.Tensor:
    """Output-layer biases whose softmax is the prior mixture: `weight` on the `prior` candidate
    and the rest shared by the others, or the given weights (normalised; each at least
    `PRIOR_FLOOR` of the mixture). OptionError for an absent candidate or bad weights."""
    n = len(candidates)
    if not isinstance(prior, str):
        return _mixture_logits(prior, n)
    if prior == "uniform" or n == 1:
        return torch.zeros(n)
    if prior not in candidates:
        raise OptionError("prior", f"{prior!r} is not a candidate ({', '.join(candidates)})")
    others = (1.0 - weight) / (n - 1)
    return torch.tensor([math.log(weight if c == prior else others) for c in candidates])


def _mixture_logits(weights: Sequence[float], n: int) -> torch.Tensor:
    numbers = isinstance(weights, list | tuple) and all(
        isinstance(w, int | float) and not isinstance(w, bool) for w in weights
    )
    if not numbers or len(weights) != n or min(weights) < 0 or sum(weights) <= 0:
        raise OptionError("prior", f"give {n} non-negative weights, one per candidate")
    shares = torch.tensor([float(w) for w in weights], dtype=torch.float64)
    shares = (shares / shares.sum()).clamp(min=PRIOR_FLOOR)
    return (shares / shares.sum()).log().float()


def variant_for(variant: str, task: str) -> str:
    """The preset `variant` names for `task`: `auto` is `normalised` for binary tasks, else `paper`.

    The remedies answer a binary-task problem (every candidate's logit gradient of an example
    has the same sign); the ablation measured them there, and the paper's form wins on 5-class.
    """
    if variant not in VARIANTS:
        raise OptionError("variant", f"unknown {variant!r}; choose one of: {', '.join(VARIANTS)}")
    if variant == "auto":
        return "normalised" if task == "binary" else "paper"
    return variant


def resolve(variant: str, **given: object) -> Remedies:
    """The preset `variant` with every option given (not None) in its place; OptionError if bad."""
    if variant not in PRESETS:
        raise OptionError("variant", f"unknown {variant!r}; choose one of: {', '.join(VARIANTS)}")
    if isinstance(given.get("prior"), list):  # a mixture from a config file: hashable
        given = {**given, "prior": tuple(given["prior"])}
    remedies = replace(PRESETS[variant], **{k: v for k, v in given.items() if v is not None})
    if remedies.normalise not in (None, "none", *REFERENCES):
        choices = ", ".join(("none", *REFERENCES))
        raise OptionError("normalise", f"unknown {remedies.normalise!r}; choose one of: {choices}")
    if remedies.objective not in OBJECTIVES:
        choices = ", ".join(OBJECTIVES)
        raise OptionError("objective", f"unknown {remedies.objective!r}; choose one of: {choices}")
    if remedies.horizon not in HORIZONS:
        choices = ", ".join(HORIZONS)
        raise OptionError("horizon", f"unknown {remedies.horizon!r}; choose one of: {choices}")
    if remedies.unroll not in UNROLLS:
        choices = ", ".join(UNROLLS)
        raise OptionError("unroll", f"unknown {remedies.unroll!r}; choose one of: {choices}")
    weight = remedies.prior_weight
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < 1:
        raise OptionError("prior_weight", f"must be a number in (0, 1), got {weight!r}")
    if remedies.normalise == "none":
        remedies = replace(remedies, normalise=None)
    for key in ("min_controller_steps", "warmup_steps"):
        value = getattr(remedies, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise OptionError(key, f"must be a non-negative integer, got {value!r}")
    return remedies


def check_fits(remedies: Remedies, task: str, hypergrad: str) -> None:
    """Refuse remedies that the task or the hypergradient method cannot take."""
    if remedies.objective != "logloss" and task != "binary":
        raise OptionError("objective", f"{remedies.objective!r} is for binary tasks")
    if remedies.horizon == "window" and hypergrad not in ("finite_diff", "jvp"):
        needs = f"'window' needs hypergrad finite_diff or jvp, not {hypergrad!r}"
        raise OptionError("horizon", needs)


def controller_steps_now(update: int, every: int, epoch_length: int, minimum: int) -> int:
    """Controller steps to take at model step `update` (0: none).

    Every `every` model steps one; when that gives fewer than `minimum` per epoch of
    `epoch_length` model steps (0: not known yet), more often, and on data with fewer model steps
    per epoch than `minimum`, several per model step.
    """
    if minimum and epoch_length and math.ceil(epoch_length / every) < minimum:
        if epoch_length >= minimum:
            every = epoch_length // minimum
        else:
            return math.ceil(minimum / epoch_length)
    return 1 if update % every == 0 else 0


__all__ = [
    "HORIZONS",
    "PRESETS",
    "VARIANTS",
    "prior_logits",
    "Remedies",
    "check_fits",
    "controller_steps_now",
    "resolve",
    "variant_for",
]
