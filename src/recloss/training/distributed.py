"""Data-parallel training: the process group, gradient averaging, and gathers across ranks.

One process per rank, started by torchrun (or `recloss train --nproc N`, which runs torchrun);
gloo on CPU, NCCL on GPU. Every rank holds a whole replica of the model and trains on its shard
of each global batch. Dense parameters are averaged by DDP during the backward pass; the
embedding tables, whose gradients are sparse rows, are left out of DDP and all-reduced by
gathering every rank's (row, gradient) pairs, so the update is the one a single process makes
on the global batch. While a loss strategy's `after_backward` runs, every gradient autograd
computes with respect to a model parameter (a bi-level strategy's validation gradient) is
averaged the same way, and a strategy's own optimiser averages its gradients before each step:
N ranks with batch B/N take the steps of one process with batch B, up to floating-point order.

Without a process group (one process) `Replicas` passes everything through untouched.

`Replicas` is the trainer's only view of how ranks share the work, and the seam for row-sharded
tables (TorchRec's `DistributedModelParallel` as `forward`, the tables' gradients then reduced by
its own collectives instead of `sync_sparse_grads`); TorchRec's kernels do not load beside this
PyTorch yet, so every table is replicated.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from recloss.errors import ConfigError
from recloss.training.devices import distributed_rank

RANK_SEED_STRIDE = 1_000_003  # rank r > 0 draws dropout and Gumbel noise from seed + r * stride


def launched_by_torchrun() -> bool:
    """Whether torchrun (or `recloss train --nproc`) started this process among several."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_process_group(device: str) -> str | None:
    """Join the launcher's process group (gloo on CPU, NCCL on GPU); its backend, or None alone.

    `device` is `train.device`; a GPU rank uses the GPU of its local rank.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_backend()
    if not (dist.is_available() and launched_by_torchrun()):
        return None
    # the group's threads must be gone before the interpreter finalizes (else: std::terminate)
    atexit.register(leave_process_group)
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if not cuda:
        dist.init_process_group("gloo")
        return "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if local_rank >= torch.cuda.device_count():
        raise ConfigError(
            f"train.device: local rank {local_rank} has no GPU of its own "
            f"({torch.cuda.device_count()} visible); start at most that many processes per node"
        )
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local_rank))
    return "nccl"


def leave_process_group() -> None:
    """Destroy this process's group, if it joined one (at exit, or before a rank's hard exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def backend() -> str | None:
    """The process group's backend; None in one process."""
    return dist.get_backend() if dist.is_available() and dist.is_initialized() else None


def is_main() -> bool:
    """Whether this process is rank 0 (the one that writes files), or alone."""
    return distributed_rank()[0] == 0


def _distributed() -> bool:
    return distributed_rank()[1] > 1


def _comm_device() -> torch.device:
    """Where the backend's tensors must live: the rank's GPU for NCCL, else the CPU."""
    if backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (nothing in one process)."""
    if _distributed():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. prepares the data cache); the others wait, then run it."""
    rank = distributed_rank()[0]
    if rank != 0:
        barrier()
    yield
    if rank == 0:
        barrier()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (a picklable value; `obj` itself in one process)."""
    if not _distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_comm_device())
    return box[0]


def broadcast_tensors_(tensors: Sequence[torch.Tensor]) -> None:
    """Overwrite each tensor with rank 0's values, in place."""
    if not _distributed():
        return
    for t in tensors:
        moved = t.detach().to(_comm_device())
        dist.broadcast(moved, src=0)
        if moved.data_ptr() != t.data_ptr():
            t.detach().copy_(moved)


def average_(tensors: Sequence[torch.Tensor]) -> None:
    """Replace each dense tensor by its mean over the ranks, in place."""
    world = distributed_rank()[1]
    for t in tensors:
        moved = t.to(_comm_device())
        dist.all_reduce(moved)
        t.copy_(moved.div_(world))


def averaged_gradient(grad: torch.Tensor) -> torch.Tensor:
    """A parameter gradient averaged over the ranks: dense by all-reduce, sparse by all-gather."""
    if grad.is_sparse:
        return all_reduce_sparse(grad)
    averaged = grad.clone()
    average_([averaged])
    return averaged


def all_reduce_sparse(grad: torch.Tensor) -> torch.Tensor:
    """Mean over the ranks of a sparse COO row gradient: every rank's rows and values gathered.

    The result is uncoalesced (LazyAdam sums repeated rows); dividing by the world size matches
    DDP's averaging. One small exchange of the ranks' row counts comes first (a host sync).
    """
    world = distributed_rank()[1]
    indices, values = grad._indices(), grad._values()
    device = _comm_device()
    count = torch.tensor([values.shape[0]], device=device)
    counts = [torch.empty_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in torch.cat(counts).tolist()]
    width = max(sizes)
    all_indices = _gather_padded(indices.t().to(device), width)
    all_values = _gather_padded(values.to(device), width)
    rows = torch.cat([t[:n] for t, n in zip(all_indices, sizes, strict=True)]).t()
    vals = torch.cat([t[:n] for t, n in zip(all_values, sizes, strict=True)]).div_(world)
    return torch.sparse_coo_tensor(
        rows.to(grad.device), vals.to(grad.device), grad.shape, check_invariants=False
    )


def _gather_padded(t: torch.Tensor, width: int) -> list[torch.Tensor]:
    """Every rank's `t` ([n, ...], n <= width), each padded to `width` rows."""
    padded = t.new_zeros((width, *t.shape[1:]))
    padded[: t.shape[0]] = t
    out = [torch.empty_like(padded) for _ in range(distributed_rank()[1])]
    dist.all_gather(out, padded.contiguous())
    return out


def shard_bounds(rows: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous rows `[lo, hi)` of `rows` that `rank` of `world` scores."""
    per = -(-rows // world)
    return min(rank * per, rows), min((rank + 1) * per, rows)


def gather_rows(local: torch.Tensor, rows: int) -> torch.Tensor:
    """Every rank's `shard_bounds` block of a `[rows, ...]` result, concatenated in row order."""
    rank, world = distributed_rank()
    if world == 1:
        return local
    per = -(-rows // world)
    parts = _gather_padded(local.to(_comm_device()), per)
    sizes = [hi - lo for lo, hi in (shard_bounds(rows, r, world) for r in range(world))]
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)]).to(local.device)


def sparse_tables(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The (name, weight) of every embedding table with sparse gradients."""
    names = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse}
    return [(n, p) for n, p in model.named_parameters() if id(p) in names]


class Replicas:
    """This rank's part in data-parallel training, as the trainer needs it.

    `forward` is the module to run training batches through (DDP around the model when
    distributed); `sync_sparse_grads` all-reduces the tables' row gradients after backward;
    `averaging` is the context `after_backward` runs in; `local_batch` splits the global batch.
    """

    def __init__(
        self, model: nn.Module, strategy: nn.Module, device: torch.device, seed: int
    ) -> None:
        self.rank, self.world = distributed_rank()
        self.model, self.strategy, self.seed = model, strategy, seed
        self.forward: nn.Module = model
        self._tables = [p for _, p in sparse_tables(model)]
        self._hooks: list[Any] = []
        if self.world > 1:
            self.forward = _data_parallel(model, device)
            broadcast_tensors_([*self._tables, *strategy.parameters(), *strategy.buffers()])
            self._average_before_steps(strategy)

    @property
    def backend(self) -> str | None:
        return backend()

    def local_batch(self, batch_size: int, key: str = "train.batch_size") -> int:
        """A rank's share of the global batch; ConfigError unless the world size divides it."""
        if batch_size % self.world:
            raise ConfigError(
                f"{key}: {batch_size} is the global batch and must be a multiple of the "
                f"{self.world} processes"
            )
        return batch_size // self.world

    def reseed(self, step: int) -> None:
        """Before each step: rank r > 0 draws its own dropout and Gumbel noise, from a stream
        of (seed, rank, step), which a resume from rank 0's checkpoint restores exactly (rank 0
        keeps the generator a single process would have, saved in the checkpoint)."""
        if self.rank > 0:
            torch.manual_seed(self.seed + RANK_SEED_STRIDE * self.rank + step)

    def sync_sparse_grads(self) -> None:
        """After backward: each sparse table's `.grad` becomes its mean over the ranks."""
        if self.world == 1:
            return
        for table in self._tables:
            if table.grad is not None:
                table.grad = all_reduce_sparse(table.grad)

    @contextlib.contextmanager
    def averaging(self) -> Iterator[None]:
        """Every gradient computed w.r.t. a model parameter inside is averaged over the ranks."""
        if self.world == 1:
            yield
            return
        handles = [
            p.register_hook(averaged_gradient) for p in self.model.parameters() if p.requires_grad
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def epoch_totals(self, loss: float, samples: int, seconds: float) -> tuple[float, int, float]:
        """An epoch's (mean loss, samples, seconds) over all ranks: the loss and the samples of
        the global batches, the slowest rank's seconds."""
        if self.world == 1:
            return loss, samples, seconds
        sums = torch.tensor([loss * samples, float(samples)], dtype=torch.float64)
        slowest = torch.tensor([seconds], dtype=torch.float64)
        sums, slowest = sums.to(_comm_device()), slowest.to(_comm_device())
        dist.all_reduce(sums)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        total, count = sums.tolist()
        return total / max(count, 1.0), int(count), float(slowest)

    def any_rank(self, flag: bool) -> bool:
        """Whether `flag` holds on any rank (a collective: every rank asks at the same step)."""
        if self.world == 1:
            return flag
        flags = torch.tensor([int(flag)], device=_comm_device())
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return bool(flags.item())

    def broadcast_model(self) -> None:
        """Every rank takes rank 0's weights (e.g. the best epoch's, loaded on rank 0 only)."""
        broadcast_tensors_([*self.model.parameters(), *self.model.buffers()])

    def _average_before_steps(self, strategy: nn.Module) -> None:
        optimizer = getattr(strategy, "optimizer", None)
        if optimizer is None:
            return

        def average_grads(opt: torch.optim.Optimizer, *_: Any) -> None:
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            average_([g for g in grads if not g.is_sparse])

        self._hooks.append(optimizer.register_step_pre_hook(average_grads))


def _data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP around `model` for its dense parameters; the sparse tables are all-reduced apart."""
    ignored = [name for name, _ in sparse_tables(model)]
    if all(name in ignored for name, p in model.named_parameters() if p.requires_grad):
        return model  # nothing dense to average (DDP refuses such a module)
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignored)
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # global batch statistics
        index = device.index if device.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[index])
    return DistributedDataParallel(model)
