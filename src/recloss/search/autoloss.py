"""AutoLoss (Zhao et al., KDD 2021): a controller weights the candidate losses per example and step.

`AutoLoss` is the trainer's `autoloss` strategy and works in any PyTorch loop as well. The
controller is trained bi-level on validation batches (once every `controller_every` model steps)
with the one-step-unrolled hypergradient of the validation loss (`recloss.search.hypergrad`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from recloss.data.schema import Task
from recloss.errors import ConfigError, RecLossError
from recloss.losses import check_candidates, loss_matrix
from recloss.search.autoloss_stats import SelectionStats
from recloss.search.base import (
    Artifact,
    LossStrategy,
    OptionError,
    Precondition,
    StepContext,
    check_options,
    check_task,
    positive_int,
)
from recloss.search.controller import (
    Controller,
    build_controller,
    effective_weights,
    gumbel_noise,
    save_controller,
    select,
    temperature,
)
from recloss.search.hypergrad import (
    HYPERGRADS,
    Forward,
    ModelCall,
    Pair,
    Unroll,
    cut,
    evaluation,
    hypergradient,
    window_hypergradients,
)
from recloss.search.objectives import flat
from recloss.search.remedies import (
    check_fits,
    controller_steps_now,
    prior_logits,
    resolve,
    variant_for,
)
from recloss.search.shapes import check_batch, checked_forward, validation_pair
from recloss.search.stepsize import global_scale, logit_gradients, reference_total
from recloss.search.window import Selection, Window

DEFAULT_CANDIDATES = ("focal", "kl", "hinge", "ce")
NOISE_SEED_OFFSET = 0x5EED
CONTROLLER_FILE = "controller.safetensors"
FIRST_ORDER = "first_order"  # the p-weighted validation loss: degenerate, for ablations only
# examples a controller step takes at most (None: all): its cost is nearly proportional to them,
# and at batch 4096 a cap of 1024 changed no measured AUC by more than 0.0008 (README)
HYPERGRAD_ROWS = 1024


class AutoLoss(SelectionStats, LossStrategy):
    """Per-example, per-step weights over candidate losses, learned on validation data.

    Call `loss(logits, y)` for the training loss, back-propagate it, then call `update(...)`
    before the optimiser step: every `controller_every` calls it takes one controller step
    (the trainer calls it through `after_backward`).

    Options: `controller_every` (K, default 7), `controller_lr` (Adam, 1e-3), `hidden`
    ((64, 64)), `activation` ("relu"), `use_logit` (also feed the logit, False), Gumbel
    temperature `tau0` (1.0), `tau_min` (0.05), `tau_decay` (1e-4: tau reaches tau_min after
    about 30k steps, a few epochs of a large data set), `hard` (straight-through one-hot
    selection, False), `hypergrad` ("finite_diff", "jvp", "unrolled" or "first_order": the
    validation loss weighted by p, degenerate, for ablations only), `fd_eps` (0.01),
    `controller` (a saved controller file to start from), `freeze_controller` (never update it),
    `trace_every` (record mean weights every N loss calls, 10). `variant` ("auto": "normalised" for
    binary tasks, "paper" for multi-class ones; "paper", the method as published; "normalised")
    presets the remedies, which each of their options overrides (`normalise`,
    `min_controller_steps`, `warmup_steps`, `prior`, `prior_weight`, `example_weight`,
    `objective`, `horizon`, `unroll`: described in `recloss.search.remedies`). `hypergrad_rows`
    (1024; None: all) caps the training and validation examples a controller step takes: the
    validation stream's batches have that many rows, and the hypergradient takes the first that
    many examples of the (shuffled) training batch.
    """

    name = "autoloss"
    sees_train_forward = True
    label = "AutoLoss"
    artifact = Artifact(CONTROLLER_FILE, lambda f: {"controller": f, "freeze_controller": True})
    # counters, and the epoch's running figures so that a resume inside an epoch reports the same
    state_attrs = ("calls", "updates", "controller_steps", "_last_selection", "_tau",
                   "_alpha_sum", "_alpha_by_label", "_label_count", "_trace", "_val_sum",
                   "_val_count", "epoch_length", "_epoch_updates")  # fmt: skip

    def __init__(
        self,
        task: Task = "binary",
        candidates: Sequence[str] = DEFAULT_CANDIDATES,
        num_classes: int | None = None,
        *,
        controller_every: int = 7,
        controller_lr: float = 1e-3,
        hidden: Sequence[int] | None = None,
        activation: str | None = None,
        use_logit: bool | None = None,
        tau0: float = 1.0,
        tau_min: float = 0.05,
        tau_decay: float = 1e-4,
        hard: bool = False,
        hypergrad: str = "finite_diff",
        fd_eps: float = 0.01,
        controller: str | Path | None = None,
        freeze_controller: bool = False,
        trace_every: int = 10,
        variant: str = "auto",
        normalise: str | None = None,
        example_weight: bool | None = None,
        min_controller_steps: int | None = None,
        warmup_steps: int | None = None,
        prior: str | Sequence[float] | None = None,
        prior_weight: float | None = None,
        objective: str | None = None,
        horizon: str | None = None,
        unroll: str | None = None,
        hypergrad_rows: int | None = HYPERGRAD_ROWS,
    ) -> None:
        check_task(task)
        num_classes = 2 if num_classes is None and task == "binary" else num_classes
        if num_classes is None:
            raise ConfigError("num_classes: a multi-class task needs its number of classes")
        super().__init__(task, num_classes, [c.lower() for c in candidates])
        check_options([
            ("controller_every", controller_every, positive_int(controller_every),
             "a positive integer"),
            ("controller_lr", controller_lr, controller_lr > 0, "positive"),
            ("tau0", tau0, tau0 > 0, "positive"),
            ("tau_min", tau_min, 0 < tau_min <= tau0, "positive and at most tau0"),
            ("tau_decay", tau_decay, tau_decay >= 0, "non-negative"),
            ("fd_eps", fd_eps, fd_eps > 0, "positive"),
            ("trace_every", trace_every, positive_int(trace_every), "a positive integer"),
            ("hypergrad_rows", hypergrad_rows,
             hypergrad_rows is None or positive_int(hypergrad_rows), "a positive integer"),
        ])  # fmt: skip
        if freeze_controller and controller is None:
            raise OptionError("freeze_controller", "needs `controller`, a saved controller file")
        check_candidates(self.candidates, task)
        self.variant = variant_for(variant, task)
        remedies = resolve(
            self.variant,
            normalise=normalise,
            example_weight=example_weight,
            min_controller_steps=min_controller_steps,
            warmup_steps=warmup_steps,
            prior=prior,
            prior_weight=prior_weight,
            objective=objective,
            horizon=horizon,
            unroll=unroll,
        )
        if hypergrad not in (*HYPERGRADS, FIRST_ORDER):
            choices = ", ".join((*HYPERGRADS, FIRST_ORDER))
            raise OptionError("hypergrad", f"unknown {hypergrad!r}; choose one of: {choices}")
        check_fits(remedies, task, hypergrad)
        arch = {"hidden": hidden, "activation": activation, "use_logit": use_logit,
                "example_weight": example_weight}  # fmt: skip
        if example_weight is None and controller is None:
            arch["example_weight"] = remedies.example_weight
        prior_mixture = prior_logits(remedies.prior, self.candidates, remedies.prior_weight)
        self._prior = prior_mixture.softmax(0)
        self.controller = self._new_controller(arch, controller)
        self.remedies = replace(remedies, example_weight=self.controller.spec.example_weight)
        self.every, self.hypergrad, self.fd_eps = controller_every, hypergrad, fd_eps
        self.rows = hypergrad_rows
        self.hard = hard
        self.schedule = (tau0, tau_min, tau_decay)
        self.trace_every = trace_every
        self.frozen = freeze_controller
        self.controller.requires_grad_(not self.frozen)
        if not self.frozen:
            self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=controller_lr)
        self.calls = self.updates = self.controller_steps = 0
        self.epoch_length = self._epoch_updates = 0  # model steps of the last whole epoch
        self._last: Selection | None = None
        self._window = Window()  # horizon "window": the model steps since the last controller step
        self._last_selection: dict[str, float] | None = None
        self._tau = self.schedule[0]  # of the last loss() call
        self._generator: torch.Generator | None = None
        self._reset_diagnostics()

    def _new_controller(self, arch: dict[str, Any], saved: str | Path | None) -> Controller:
        """The controller loaded from `saved`, or new with `arch`, its mixture at the prior. Its
        initial weights and its Gumbel noise come from generators of their own: the model's
        random stream (dropout masks) stays that of a fixed-loss run with the same seed, so
        paired comparisons differ only by the loss."""
        self._noise_seed = (torch.initial_seed() + NOISE_SEED_OFFSET + _rank()) % 2**63
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._noise_seed)
            controller = build_controller(self.task, self.num_classes, self.candidates, arch, saved)
        if saved is None:
            with torch.no_grad():
                controller.mlp[-1].bias[: len(self.candidates)] = self._prior.log()
        return controller

    # -- the training loss -----------------------------------------------------------------------
    def tau(self, step: int) -> float:
        """The Gumbel-softmax temperature at `step`."""
        return temperature(step, *self.schedule)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """Training loss `mean_b sum_i p[b, i] * loss_i`; `step` (default: call count) sets tau.

        `logits` are `[B]` or `[B, 1]` (binary) or `[B, num_classes]`, `y` is `[B]`; other
        shapes raise RecLossError before anything is computed.
        """
        check_batch(self.task, self.num_classes, "loss", logits, y)
        logits = flat(logits)
        step = self.calls if step is None else step
        tau = self.tau(step)
        with torch.no_grad():
            features = self.controller.features(logits, y)
            log_alpha, log_weight = self.controller.outputs(features)
            noise = gumbel_noise(log_alpha.shape, log_alpha.device, self._noise(log_alpha.device))
            selection = select(log_alpha, noise, tau, self.hard)
            weights = effective_weights(selection, log_weight, y, self.num_classes)
            if self._warming_up():
                weights = self._prior.to(weights).expand_as(weights).clone()
        self._record(log_alpha.exp(), y, step)
        self._last = Selection(features, noise, tau, logits.detach(), y, weights)
        self._tau = tau
        self.calls += 1
        losses = loss_matrix(self.candidates, logits, y)
        mixture = (losses * weights.to(logits.dtype)).sum(1)
        if self.remedies.normalise is None:
            return mixture.mean()
        grads = logit_gradients(self.candidates, logits, y, losses)
        total = reference_total(self.remedies.normalise, logits, y, grads)
        return global_scale(weights, grads, total).to(logits.dtype) * mixture.mean()

    def _noise(self, device: torch.device) -> torch.Generator:
        """The generator of the Gumbel noise, on `device` (created on first use)."""
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device).manual_seed(self._noise_seed)
        return self._generator

    def get_extra_state(self) -> dict[str, Any]:
        state = {**super().get_extra_state(), "window": self._window.state()}
        if self._generator is not None:
            state["noise"] = (str(self._generator.device), self._generator.get_state())
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self._window.load(state.get("window", []))
        if "noise" in state:
            device, noise = state["noise"]
            self._noise(torch.device(device)).set_state(noise)

    def _warming_up(self) -> bool:
        """Whether the training loss stays at the prior mixture (the first controller steps)."""
        return not self.frozen and self.controller_steps < self.remedies.warmup_steps

    # -- the controller step ---------------------------------------------------------------------
    def update(
        self,
        model: nn.Module,
        train: Pair,
        val: Pair | Callable[[], Pair] | Iterator[Pair],
        lr: float,
        forward: Forward | None = None,
        precondition: Precondition | None = None,
        train_forward: Forward | None = None,
    ) -> bool:
        """After `loss(...).backward()`, before the optimiser step; True if the controller stepped.

        `train` is the `(inputs, labels)` pair just trained on, `val` a validation pair (or a
        function returning the next one, or an iterator of them: drawn on controller steps), `lr`
        the model's learning rate (xi), and `forward(inputs)` (logits) defaults to `model(inputs)`.
        `precondition` is the model optimiser's (`recloss.training.AdamPreconditioner`), which
        `unroll: adam` needs; `train_forward` gives the training loss's logits where they are not
        `forward`'s (a label-noise channel).
        """
        if not lr > 0:
            raise RecLossError(f"AutoLoss.update: lr must be the model's learning rate, got {lr!r}")
        self._epoch_updates += 1
        r = self.remedies
        due = controller_steps_now(self.updates, self.every, self.epoch_length,
                                   r.min_controller_steps)  # fmt: skip
        if self.frozen or due == 0:
            self.updates += 1
            if self.remedies.horizon == "window" and not self.frozen and self._last is not None:
                self._window.add(train, self._last)
            return False
        if self._last is None or len(self._last.y) != len(train[1]):
            raise RecLossError("AutoLoss.update: call loss() on the same training batch first")
        if all(p.grad is None for p in model.parameters()):
            raise RecLossError("AutoLoss.update: no gradients; back-propagate the loss first")
        if r.unroll == "adam" and precondition is None:
            raise RecLossError("AutoLoss.update: unroll 'adam' needs the optimiser's precondition")
        adam = precondition if r.unroll == "adam" else None
        for _ in range(due):
            pair = validation_pair(val)
            self._controller_step(model, train, pair, lr, forward, adam, train_forward)
        self.updates += 1  # only now: a call that failed (a bad validation pair) is no update
        self._window.clear()
        return True

    def _controller_step(
        self,
        model: nn.Module,
        train: Pair,
        val_pair: Pair,
        lr: float,
        forward: Forward | None,
        precondition: Precondition | None,
        train_forward: Forward | None,
    ) -> None:
        """One Adam step of the controller along the hypergradient on `val_pair`."""
        (train, rows), (val_pair, _) = cut(train, self.rows), cut(val_pair, self.rows)
        last, r = self._last.head(rows), self.remedies
        checked = checked_forward(self.task, self.num_classes, forward or model, val_pair)
        u = Unroll(model, checked, self.candidates, train, val_pair, last.logits, last.weights,
                   lr, r.normalise, r.objective, precondition, train_forward)  # fmt: skip
        self.optimizer.zero_grad(set_to_none=True)
        if self.hypergrad == FIRST_ORDER:
            objective = self._first_order_backward(u)
        elif r.horizon == "window":
            earlier = self._window.earlier(rows)
            grads, objective = window_hypergradients(u, earlier, self.hypergrad, self.fd_eps)
            used = [*self._window.selections(rows), last]
            for selection, grad in zip(used, grads, strict=True):
                self._weights_with_grad(selection).backward(grad.to(torch.float32))
        else:
            grad, objective = hypergradient(u, self.hypergrad, self.fd_eps)
            self._weights_with_grad(last).backward(grad.to(torch.float32))
        self.optimizer.step()
        self.controller_steps += 1
        self._val_sum += objective
        self._val_count += 1

    def val_batch_rows(self, batch_size: int) -> int:
        return batch_size if self.rows is None else min(batch_size, self.rows)

    def after_backward(self, ctx: StepContext) -> None:
        def next_val() -> Pair:
            batch = ctx.next_val_batch()
            return batch, batch.y

        self.update(ctx.model, (ctx.batch, ctx.batch.y), next_val, ctx.lr,
                    precondition=ctx.precondition, train_forward=ctx.train_forward)  # fmt: skip

    def _weights_with_grad(self, used: Selection) -> torch.Tensor:
        """A loss call's `p`, recomputed with its Gumbel noise, as a function of V."""
        log_alpha, log_weight = self.controller.outputs(used.features)
        selection = select(log_alpha, used.noise, used.tau, self.hard)
        return effective_weights(selection, log_weight, used.y, self.num_classes)

    def _first_order_backward(self, u: Unroll) -> float:
        """Degenerate ablation: back-propagate the p-weighted validation loss into V."""
        with torch.no_grad(), evaluation(u.model):
            z = ModelCall(u.model, u.forward)(u.val[0])
        log_alpha = self.controller(self.controller.features(z, u.val[1]))
        noise = gumbel_noise(log_alpha.shape, z.device, self._noise(z.device))
        weights = select(log_alpha, noise, self._last.tau, self.hard)
        objective = (loss_matrix(self.candidates, z, u.val[1]) * weights).sum(1).mean()
        objective.backward()
        return float(objective.detach())

    # -- diagnostics -----------------------------------------------------------------------------
    def on_epoch_end(self) -> dict[str, Any]:
        """Mean selection probabilities (overall, by label), controller objective, trace; resets."""
        self.epoch_length, self._epoch_updates = self._epoch_updates, 0
        return self._epoch_diagnostics()

    # -- the artifact ----------------------------------------------------------------------------
    def save_controller(self, path: str | Path) -> Path:
        """Write the controller (weights + task, candidates, architecture) as safetensors."""
        return save_controller(self.controller, path)

    def save_artifact(self, path: Path) -> None:
        self.save_controller(path)


def _rank() -> int:
    """This process's rank in the process group (0 without one): each rank draws its own noise."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


__all__ = ["CONTROLLER_FILE", "DEFAULT_CANDIDATES", "AutoLoss"]
