"""Helpers of the distributed tests: run a function as N gloo ranks on localhost.

`spawn(fn, world, *args)` starts `world` processes with torchrun's environment (RANK,
WORLD_SIZE, MASTER_ADDR/PORT on a free port) so that the library joins the process group
exactly as under torchrun; `fn(rank, *args)` returns a picklable value per rank.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _enter(rank: int, fn, world: int, port: int, results, args: tuple) -> None:
    if world > 1:
        env = {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": world, "LOCAL_WORLD_SIZE": world}
        os.environ.update({k: str(v) for k, v in env.items()})
        os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    import torch

    torch.set_num_threads(1)  # two ranks share the machine's cores
    results[rank] = fn(rank, *args)
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def spawn(fn, world: int, *args: Any) -> list[Any]:
    """`fn(rank, *args)` on each of `world` ranks (one process each); the results by rank."""
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_enter, args=(fn, world, free_port(), results, args), nprocs=world, join=True)
        return [results[r] for r in range(world)]
