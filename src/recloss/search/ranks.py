"""Sums and maxima over the ranks of the process group; the values as given without one."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_autograd


def distributed() -> bool:
    """Whether this process is one of several ranks."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def global_sum(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` summed over the ranks, differentiably: its gradient is summed over them too."""
    return dist_autograd.all_reduce(tensor) if distributed() else tensor


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
