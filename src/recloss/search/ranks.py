"""Sums and maxima over the ranks of the process group; the values as given without one."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol


def distributed() -> bool:
    """Whether this process is one of several ranks."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def global_sum(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` summed over the ranks, differentiably: its gradient is summed over them too."""
    if not distributed():
        return tensor
    # the functional collective is differentiable (its backward sums the gradients over the
    # ranks); torch deprecates `torch.distributed.nn.functional.all_reduce` in its favour
    return funcol.wait_tensor(funcol.all_reduce(tensor, "sum", dist.group.WORLD))


def global_sums(*values: torch.Tensor) -> list[torch.Tensor]:
    """Scalar sums over the ranks, in one exchange."""
    return list(global_sum(torch.stack(values)).unbind()) if distributed() else list(values)


def global_max(tensor: torch.Tensor) -> torch.Tensor:
    """The elementwise maximum over the ranks (a detached copy)."""
    if not distributed():
        return tensor
    top = tensor.detach().clone()
    dist.all_reduce(top, op=dist.ReduceOp.MAX)
    return top
