"""AutoLoss's per-epoch diagnostics: mean selection probabilities overall and by label, a trace."""

from __future__ import annotations

from typing import Any

import torch


class SelectionStats:
    """Mixin of `AutoLoss`: records `alpha` per loss call and reports it per epoch.

    Uses the host's `candidates`, `num_classes`, `calls`, `trace_every`, `controller_steps` and
    `_tau`; its running figures are in the host's `state_attrs`.
    """

    candidates: list[str]
    num_classes: int
    calls: int
    trace_every: int
    controller_steps: int
    _tau: float
    _last_selection: dict[str, float] | None

    def _reset_diagnostics(self) -> None:
        n = len(self.candidates)
        self._alpha_sum = torch.zeros(n)
        self._alpha_by_label = torch.zeros(self.num_classes, n)
        self._label_count = torch.zeros(self.num_classes)
        self._trace: list[tuple[int, torch.Tensor]] = []
        self._val_sum, self._val_count = 0.0, 0

    @torch.no_grad()
    def _record(self, alpha: torch.Tensor, y: torch.Tensor, step: int) -> None:
        if self._alpha_sum.device != alpha.device:
            self._alpha_sum = self._alpha_sum.to(alpha.device)
            self._alpha_by_label = self._alpha_by_label.to(alpha.device)
            self._label_count = self._label_count.to(alpha.device)
        alpha = alpha.float()
        self._alpha_sum += alpha.sum(0)
        self._alpha_by_label.index_add_(0, y, alpha)
        self._label_count.index_add_(0, y, torch.ones_like(y, dtype=torch.float32))
        if self.calls % self.trace_every == 0:
            self._trace.append((step, alpha.mean(0)))

    def _epoch_diagnostics(self) -> dict[str, Any]:
        """Mean selection probabilities (overall, by label), controller objective, trace; resets."""
        counts = self._label_count.cpu()
        total = float(counts.sum())
        selection = self._named(self._alpha_sum.cpu() / total) if total else None
        by_label = {
            str(c): self._named(row / counts[c])
            for c, row in enumerate(self._alpha_by_label.cpu())
            if counts[c] > 0
        }
        trace_alpha = torch.stack([a for _, a in self._trace]).cpu() if self._trace else None
        diagnostics = {
            "tau": self._tau,
            "controller_steps": self.controller_steps,
            "selection": selection,
            "selection_by_label": by_label,
            "val_objective": self._val_sum / self._val_count if self._val_count else None,
            "trace": {
                "step": [s for s, _ in self._trace],
                "alpha": {
                    c: [] if trace_alpha is None else trace_alpha[:, i].tolist()
                    for i, c in enumerate(self.candidates)
                },
            },
        }
        if selection is not None:
            self._last_selection = selection
        self._reset_diagnostics()
        return diagnostics

    def weights(self) -> dict[str, float]:
        """Learned mean selection probability per candidate (last epoch, else so far)."""
        selection = self._last_selection
        total = float(self._label_count.sum())
        if selection is None and total:
            selection = self._named(self._alpha_sum.cpu() / total)
        return dict(selection or {})

    def _named(self, values: torch.Tensor) -> dict[str, float]:
        return {c: float(v) for c, v in zip(self.candidates, values, strict=True)}
