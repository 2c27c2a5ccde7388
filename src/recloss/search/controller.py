"""The AutoLoss controller: an MLP from (label, prediction) to a probability per candidate loss.

Also the Gumbel-softmax selection, its temperature schedule, and the controller's standalone file
(safetensors with the task, candidates and architecture in its metadata) for transfer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from recloss.atomic import write_atomic
from recloss.data.schema import Task
from recloss.errors import CompatibilityError, ConfigError
from recloss.search.base import OptionError, check_task
from recloss.search.ranks import global_max, global_sum

FILE_FORMAT = "recloss-controller/1"
LOGIT_CLAMP = 20.0  # the optional logit input is clipped: the MLP should not see |z| of 1e4
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}


@dataclass(frozen=True)
class ControllerSpec:
    """Everything that defines a controller's shape and meaning (its file's metadata)."""

    task: Task
    num_classes: int
    candidates: tuple[str, ...]
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    use_logit: bool = False  # feed the (clipped) logit as well as label and prediction
    example_weight: bool = False  # one more output: a log weight per example, 0 at start

    def __post_init__(self) -> None:
        check_task(self.task)
        if self.task == "binary" and self.num_classes != 2:
            raise ConfigError(f"num_classes: a binary task has 2 classes, got {self.num_classes}")
        if self.num_classes < 2:
            raise ConfigError(f"num_classes: need at least 2 classes, got {self.num_classes}")
        if not self.candidates:
            raise ConfigError("candidates: give at least one candidate loss")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise OptionError("hidden", f"give positive layer sizes, got {list(self.hidden)}")
        if self.activation not in ACTIVATIONS:
            choices = ", ".join(ACTIVATIONS)
            message = f"unknown {self.activation!r}; choose one of: {choices}"
            raise OptionError("activation", message)

    @property
    def inputs(self) -> str:
        """The controller's input features, as recorded in its file."""
        return "label,prediction,logit" if self.use_logit else "label,prediction"

    @property
    def in_features(self) -> int:
        if self.task == "binary":
            return 3 if self.use_logit else 2
        return self.num_classes * (3 if self.use_logit else 2)

    def metadata(self) -> dict[str, str]:
        """String metadata for the safetensors file."""
        return {
            "format": FILE_FORMAT,
            "task": self.task,
            "num_classes": str(self.num_classes),
            "candidates": json.dumps(list(self.candidates)),
            "hidden": json.dumps(list(self.hidden)),
            "activation": self.activation,
            "inputs": self.inputs,
            "outputs": "mixture,example_weight" if self.example_weight else "mixture",
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> ControllerSpec:
        return cls(
            task=meta["task"],  # type: ignore[arg-type]
            num_classes=int(meta["num_classes"]),
            candidates=tuple(json.loads(meta["candidates"])),
            hidden=tuple(int(h) for h in json.loads(meta["hidden"])),
            activation=meta["activation"],
            use_logit=meta["inputs"].split(",")[-1] == "logit",
            example_weight=meta.get("outputs", "mixture").endswith("example_weight"),
        )


class Controller(nn.Module):
    """MLP over `[y, q]` (binary) or `[onehot(y), softmax(z)]` (multi-class) -> log alpha `[B, n]`.

    The prediction is detached: the controller weights the losses and never trains the model.
    The output layer starts at zero, so every candidate starts with the same probability.
    """

    def __init__(self, spec: ControllerSpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        width = spec.in_features
        for h in spec.hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[spec.activation]()]
            width = h
        out = nn.Linear(width, len(spec.candidates) + int(spec.example_weight))
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.mlp = nn.Sequential(*layers, out)

    def features(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The controller's input for a batch of logits and labels (no gradient to the logits)."""
        z = logits.detach().float()
        if self.spec.task == "binary":
            parts = [y.float()[:, None], torch.sigmoid(z)[:, None]]
            if self.spec.use_logit:
                parts.append(z.clamp(-LOGIT_CLAMP, LOGIT_CLAMP)[:, None])
        else:
            log_p = F.log_softmax(z, dim=1)  # shift-free logits
            parts = [F.one_hot(y, self.spec.num_classes).float(), log_p.exp()]
            if self.spec.use_logit:
                parts.append(log_p.clamp(min=-LOGIT_CLAMP))
        return torch.cat(parts, dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Log selection probabilities `log alpha` `[B, n]` of prepared `features`."""
        return self.outputs(features)[0]

    def outputs(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`(log alpha [B, n], log example weight [B] or None)` of prepared `features`.

        The example weight is unnormalised and unbounded (a bounded form such as `2 * sigmoid`
        saturates and stops learning): AutoLoss normalises it within each label of the batch.
        """
        out = self.mlp(features)
        n = len(self.spec.candidates)
        weight = out[:, n] if self.spec.example_weight else None
        return F.log_softmax(out[:, :n], dim=1), weight

    def alpha(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Selection probabilities `alpha` `[B, n]` for a batch of logits and labels."""
        return self(self.features(logits, y)).exp()


def temperature(step: int, tau0: float, tau_min: float, decay: float) -> float:
    """Gumbel-softmax temperature `max(tau_min, tau0 * exp(-decay * step))`."""
    return max(tau_min, tau0 * math.exp(-decay * step))


def gumbel_noise(
    shape: Sequence[int],
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Standard Gumbel noise `-log(-log u)`, fresh per element (from `generator` if given)."""
    u = torch.rand(tuple(shape), device=device, generator=generator)
    u = u.clamp_(torch.finfo(torch.float32).tiny, 1.0)
    return -torch.log(-torch.log(u))


def select(log_alpha: torch.Tensor, noise: torch.Tensor, tau: float, hard: bool) -> torch.Tensor:
    """Gumbel-softmax weights `p = softmax((log alpha + g) / tau)`; one-hot forward when `hard`.

    The hard version is straight-through: forward values are the one-hot argmax, gradients
    are those of the soft weights.
    """
    soft = F.softmax((log_alpha + noise) / tau, dim=1)
    if not hard:
        return soft
    one_hot = F.one_hot(soft.argmax(dim=1), soft.shape[1]).to(soft.dtype)
    return one_hot + soft - soft.detach()


def save_controller(controller: Controller, path: str | Path) -> Path:
    """Write the controller's weights and spec to a safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in controller.state_dict().items()}
    data = safetensors_bytes(tensors, metadata=controller.spec.metadata())
    write_atomic(path, lambda tmp: tmp.write_bytes(data))
    return path


def load_controller(path: str | Path, option: str = "controller") -> Controller:
    """Read a controller written by `save_controller`; CompatibilityError if it is not one, and
    where it is missing an OptionError naming the `option` that gave the path (so that a method
    built before any data is read refuses it then)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise OptionError(option, f"{path}: {option} file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as err:
        raise CompatibilityError(f"{path}: not a safetensors controller file ({err})") from None
    if meta.get("format") != FILE_FORMAT:
        found = meta.get("format")
        raise CompatibilityError(f"{path}: not a recloss controller file (format {found!r})")
    try:
        controller = Controller(ControllerSpec.from_metadata(meta))
        controller.load_state_dict(tensors)
    except (KeyError, ValueError, RuntimeError, ConfigError) as err:
        raise CompatibilityError(f"{path}: damaged controller file ({err})") from None
    return controller


def check_compatible(
    spec: ControllerSpec,
    task: Task,
    num_classes: int,
    candidates: Sequence[str],
    source: str | Path,
) -> None:
    """CompatibilityError unless a saved controller fits this task and candidate list."""
    if spec.task != task or spec.num_classes != num_classes:
        raise CompatibilityError(
            f"{source}: controller was trained for a {_describe(spec.task, spec.num_classes)} "
            f"task, this run is {_describe(task, num_classes)}"
        )
    if [c.lower() for c in spec.candidates] != [c.lower() for c in candidates]:
        raise CompatibilityError(
            f"{source}: controller weights candidates [{', '.join(spec.candidates)}], this run "
            f"uses [{', '.join(candidates)}]; set loss.candidates to the controller's list"
        )


def effective_weights(
    weights: torch.Tensor, log_weight: torch.Tensor | None, y: torch.Tensor, classes: int
) -> torch.Tensor:
    """The loss weights `E[b, i] = w_b * p[b, i]` (`p` alone without an example-weight output).

    `w = exp(log_weight)` normalised to mean 1 within each label of the batch (a softmax per
    label, times its count): left free, the one-step objective spends the weight on shifting the
    class prior (on noisy labels it dropped the positives wholesale) instead of on telling
    examples of the same label apart. Under data parallelism the batch is the global one: the
    per-label maxima, sums and counts run over every rank (the sums differentiably).
    """
    if log_weight is None:
        return weights
    labels = y.long()
    top = torch.full((classes,), -torch.inf, dtype=log_weight.dtype, device=y.device)
    top = global_max(top.scatter_reduce(0, labels, log_weight.detach(), "amax"))
    w = (log_weight - top[labels]).exp()  # shifted by the label's maximum: no overflow
    sums = torch.zeros(classes, dtype=w.dtype, device=y.device).index_add(0, labels, w)
    counts = torch.bincount(labels, minlength=classes).to(w.dtype)
    sums, counts = global_sum(torch.stack([sums, counts])).unbind()
    return weights * (w * counts[labels] / sums[labels])[:, None]


def build_controller(
    task: Task,
    num_classes: int,
    candidates: list[str],
    arch: dict[str, Any],
    path: str | Path | None,
) -> Controller:
    """A fresh controller, or the saved one at `path` if it fits the task and candidates."""
    if path is None:
        given = {k: (tuple(v) if k == "hidden" else v) for k, v in arch.items() if v is not None}
        return Controller(ControllerSpec(task, num_classes, tuple(candidates), **given))
    controller = load_controller(path)
    spec = controller.spec
    check_compatible(spec, task, num_classes, candidates, path)
    for key, value in arch.items():
        saved = getattr(spec, key)
        if value is not None and (tuple(value) if key == "hidden" else value) != saved:
            raise OptionError(key, f"{value!r} differs from the controller file's {saved!r}")
    return controller


def _describe(task: Task, num_classes: int) -> str:
    return "binary" if task == "binary" else f"{num_classes}-class"
