"""Stochastic loss function (SLF, Liu & Lai, AAAI 2020): binary Gumbel gates over the candidates.

A decision network over the AutoLoss controller's inputs (label and detached prediction; the
same MLP shape) gives gate logits `l_i` per example; each candidate's gate is a binary
Gumbel (concrete) relaxation, several of which may be open at once:

    b_i = sigmoid((l_i + g1 - g2) / tau),   g1, g2 ~ Gumbel(0, 1), fresh per example and step
    loss = mean_b sum_i b_i * loss_i / max(1, sum_i b_i)

The decision network trains jointly with the model, in the same backward pass on the training
batch (no validation data); the strategy owns its Adam optimiser and steps it in
`after_backward()`, before the trainer's optimiser step. The output layer starts at
`gate_bias` (2: gates start mostly open, so `sum_i b_i` starts above 1 and the loss is an
average of the open candidates).
The temperature follows AutoLoss's schedule `tau = max(tau_min, tau0 * exp(-tau_decay * step))`.

Known behaviour of this objective: as the network minimises the training loss, it opens the
gates of the candidates with the smallest values and closes the others, and once less than one
gate's worth is open (`sum_i b_i < 1`) every gate is pushed shut, which starves the model of
gradient. On synthetic CTR data (batches of 256, lr 1e-3) the candidates [focal, kl, hinge, ce]
settled on focal alone within two epochs, and [ce, hinge] closed both gates. A smaller `lr`
slows this drift; watch the per-epoch `open` figure.

Options (`loss.params`): `lr` (1e-3), `hidden` ([64, 64]), `activation` ("relu"), `use_logit`
(False), `gate_bias` (2.0), `tau0` (1.0), `tau_min` (0.05), `tau_decay` (1e-4), `network` (a
saved decision network to start from; its architecture applies), `freeze_network` (False: with
`network`, never update it, as in the transferability experiments).
After training the run directory holds the network as `slf_network.safetensors` (the controller
file format: weights plus task, classes, candidates and architecture in its metadata).
Per epoch it reports the mean gate per candidate and the mean number of open gates;
`weights()` gives the last epoch's mean gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recloss.data.schema import Task
from recloss.losses import loss_matrix
from recloss.search.base import (
    Artifact,
    LossStrategy,
    OptionError,
    StepContext,
    by_candidate,
    check_options,
)
from recloss.search.controller import (
    Controller,
    ControllerSpec,
    check_compatible,
    gumbel_noise,
    load_controller,
    save_controller,
    temperature,
)

NETWORK_FILE = "slf_network.safetensors"


class SlfStrategy(LossStrategy):
    """SLF: a decision network opens binary Gumbel gates over the candidate losses per example."""

    name = "slf"
    label = "SLF"
    artifact = Artifact(NETWORK_FILE, lambda f: {"network": f, "freeze_network": True})
    state_attrs = ("last_gates", "_gate_sum", "_rows")

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str],
        *,
        lr: float = 1e-3,
        hidden: Sequence[int] | None = None,
        activation: str | None = None,
        use_logit: bool | None = None,
        gate_bias: float = 2.0,
        tau0: float = 1.0,
        tau_min: float = 0.05,
        tau_decay: float = 1e-4,
        network: str | Path | None = None,
        freeze_network: bool = False,
    ) -> None:
        super().__init__(task, num_classes, candidates)
        check_options([
            ("lr", lr, lr > 0, "positive"),
            ("tau0", tau0, tau0 > 0, "positive"),
            ("tau_min", tau_min, 0 < tau_min <= tau0, "positive and at most tau0"),
            ("tau_decay", tau_decay, tau_decay >= 0, "non-negative"),
        ])  # fmt: skip
        if freeze_network and network is None:
            raise OptionError("freeze_network", "needs `network`, a saved network file")
        arch = {"hidden": hidden, "activation": activation, "use_logit": use_logit}
        arch = {k: (tuple(v) if k == "hidden" else v) for k, v in arch.items() if v is not None}
        spec = ControllerSpec(task, num_classes, tuple(self.candidates), **arch)
        if network is None:
            self.net = Controller(spec)
            nn.init.constant_(self.net.mlp[-1].bias, gate_bias)
        else:
            self.net = _load_network(network, spec, arch)
        self.frozen = freeze_network
        self.net.requires_grad_(not self.frozen)
        if not self.frozen:
            self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.schedule = (tau0, tau_min, tau_decay)
        self.last_gates: dict[str, float] | None = None
        self._reset_diagnostics()

    def gates(self, logits: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
        """Relaxed binary gates `b` `[B, n]` in [0, 1], differentiable in the network."""
        gate_logits = self.net.mlp(self.net.features(logits, y))
        noise = gumbel_noise(gate_logits.shape, gate_logits.device)
        noise = noise - gumbel_noise(gate_logits.shape, gate_logits.device)
        return torch.sigmoid((gate_logits + noise) / tau)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        losses = loss_matrix(self.candidates, logits, y)
        gates = self.gates(logits, y, temperature(step, *self.schedule)).to(losses.dtype)
        self._record(gates.detach())
        return ((gates * losses).sum(1) / gates.sum(1).clamp(min=1.0)).mean()

    def after_backward(self, ctx: StepContext) -> None:
        """Step the decision network with the gradients the training loss's backward left."""
        if self.optimizer is None:
            return
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _reset_diagnostics(self) -> None:
        self._gate_sum = torch.zeros(len(self.candidates))
        self._rows = 0

    @torch.no_grad()
    def _record(self, gates: torch.Tensor) -> None:
        self._gate_sum = self._gate_sum.to(gates.device) + gates.float().sum(0)
        self._rows += len(gates)

    def on_epoch_end(self) -> dict[str, Any]:
        """Mean gate per candidate and mean open gates per example since the last call."""
        if not self._rows:
            return {"gates": None, "open": None}
        self.last_gates = by_candidate(self.candidates, self._gate_sum / self._rows)
        diagnostics = {"gates": self.last_gates, "open": sum(self.last_gates.values())}
        self._reset_diagnostics()
        return diagnostics

    def weights(self) -> dict[str, float]:
        return dict(self.last_gates or {})

    def save_artifact(self, path: Path) -> None:
        """Write the decision network (the controller file format) for transfer to other runs."""
        save_controller(self.net, path)


def _load_network(path: str | Path, spec: ControllerSpec, given: dict[str, Any]) -> Controller:
    """The saved network at `path`; errors unless it fits the task, candidates and options."""
    net = load_controller(path, option="network")
    check_compatible(net.spec, spec.task, spec.num_classes, spec.candidates, path)
    if replace(net.spec, **given) != net.spec:
        saved = {k: getattr(net.spec, k) for k in given}
        key = ", ".join(given)
        raise OptionError(key, f"{given} differs from the network file's {saved} ({path})")
    return net


__all__ = ["NETWORK_FILE", "SlfStrategy"]
