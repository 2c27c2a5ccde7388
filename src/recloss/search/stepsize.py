"""Step-size normalisation of a per-example loss mixture, and its exact hypergradient correction.

In the binary case every candidate's logit gradient of an example has the same sign, so a mixture
`sum_i E[b, i] * loss_i` can do little but choose a per-example step size. Wu, Ren, Liao and Grosse
(ICLR 2018) show that a short-horizon meta-objective is a biased judge of step sizes (in their
learning-rate experiments, towards too small ones); here the one-step objective measurably prefers
the candidates with the bigger logit gradient (AUTOLOSS.md section 8). Learning-to-reweight (Ren
et al., ICML 2018) and Meta-Weight-Net (Shu et al., NeurIPS 2019), which use the same one-step
lookahead for example weights, normalise the weights within the batch so that the meta-step
cannot change the effective learning rate; the same idea here, on logit gradients:

    c(E) = R / S(E),   S(E) = sum_b || sum_i E[b, i] g[b, i] ||,   R = sum_b || g_ref[b] ||

with `g[b, i] = dloss_i/dz_b` (detached) and `g_ref` the logit gradient of a reference loss (CE, or
the unweighted mean of the candidates). The training loss is `c * mean_b sum_i E[b, i] loss_i` with
`c` a constant in the model's step, so the mixture redistributes gradient among examples and
candidates but its batch total stays that of the reference. In the hypergradient `c` is a function
of `E`; with `h[b, i]` the hypergradient at fixed `c = 1`, `H = sum E h` and `m_b = sum_i E g`:

    dL_val/dE[b, i] = c * (h[b, i] - (H / S) * <m_b / ||m_b||, g[b, i]>)

(`dc/dE[b, i] = -(c / S) <m_b / ||m_b||, g[b, i]>`, and W' depends on E through `c * E`). It is
orthogonal to `E` (`sum E * dL/dE = 0`): scaling every weight together changes nothing.

Under data parallelism the sums `R`, `S` and `H` run over the global batch (summed across the
ranks of the process group), so N ranks take the steps of one process with the whole batch.
"""

from __future__ import annotations

import torch

from recloss.losses import cross_entropy, loss_matrix
from recloss.search.ranks import global_sums

REFERENCES = ("ce", "mean")
_TINY = 1e-12


def logit_gradients(
    candidates: list[str],
    logits: torch.Tensor,
    y: torch.Tensor,
    losses: torch.Tensor | None = None,
) -> torch.Tensor:
    """Detached `dloss_i/dz_b` of every candidate, `[B, n, C']` (`C' = 1` binary).

    One backward pass batched over the candidates (each example's losses depend on its own
    logits only). `losses`: the caller's loss matrix of `logits`, whose graph is then reused
    and kept for the caller's own backward.
    """
    if losses is None or not losses.requires_grad:
        logits = logits.detach().requires_grad_()
        with torch.enable_grad():
            losses = loss_matrix(candidates, logits, y)
    n = losses.shape[1]
    one_hot = torch.eye(n, dtype=losses.dtype, device=losses.device)[:, None, :]
    (grads,) = torch.autograd.grad(
        losses, logits, one_hot.expand(n, *losses.shape), retain_graph=True, is_grads_batched=True
    )
    return grads.detach().movedim(0, 1).reshape(len(logits), n, -1)


def reference_total(
    reference: str, logits: torch.Tensor, y: torch.Tensor, grads: torch.Tensor
) -> torch.Tensor:
    """`R = sum_b ||g_ref[b]||`: the batch's total logit gradient under the reference loss."""
    if reference == "mean":
        return grads.mean(dim=1).norm(dim=1).sum()
    z = logits.detach().requires_grad_()
    with torch.enable_grad():
        (g,) = torch.autograd.grad(cross_entropy(z, y).sum(), z)
    return g.reshape(len(z), -1).norm(dim=1).sum()


def mixture_total(weights: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """`S(E) = sum_b ||sum_i E[b, i] g[b, i]||`, differentiable in the weights."""
    return (weights.to(grads.dtype)[:, :, None] * grads).sum(dim=1).norm(dim=1).sum()


def scale(weights: torch.Tensor, grads: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """`c(E) = R / S(E)`, differentiable in the weights (0-gradient batches: S floored)."""
    return total / mixture_total(weights, grads).clamp_min(_TINY)


def global_scale(weights: torch.Tensor, grads: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """The detached `c` of the model's step, with `R` and `S` summed over every rank."""
    total, mixture = global_sums(total.detach(), mixture_total(weights.detach(), grads))
    return total / mixture.clamp_min(_TINY)


def corrected(
    h: torch.Tensor, weights: torch.Tensor, grads: torch.Tensor, total: torch.Tensor
) -> torch.Tensor:
    """`dL_val/dE` of the normalised mixture from `h`, the hypergradient at fixed `c = 1`."""
    weights = weights.detach().to(grads.dtype)
    mix = (weights[:, :, None] * grads).sum(dim=1)  # m_b, [B, C']
    s = mix.norm(dim=1).sum()
    unit = mix / mix.norm(dim=1, keepdim=True).clamp_min(_TINY)
    along = (grads * unit[:, None, :]).sum(dim=2)  # <m_b / ||m_b||, g[b, i]>, [B, n]
    total, s, big_h = global_sums(total, s, (weights * h).sum())
    s = s.clamp_min(_TINY)
    return (total / s) * (h - (big_h / s) * along)


__all__ = [
    "REFERENCES",
    "corrected",
    "global_scale",
    "logit_gradients",
    "mixture_total",
    "reference_total",
    "scale",
]
