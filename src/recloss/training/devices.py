"""Where training runs: the device, and this process's place among distributed ranks."""

from __future__ import annotations

import torch

from recloss.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when available, else CPU; `cuda` without a GPU is a ConfigError; a rank
    of several gets its own GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA device is available")
    if name == "cuda" and distributed_rank()[1] > 1:  # each rank has its GPU (`set_device`)
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether `train.precision` means bf16 autocast on `device` (`auto`: where it is native)."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)  # or AMX
    return device.type == "cpu" and bool(native())


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
