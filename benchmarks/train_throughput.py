"""Training samples/s of DeepFM: recloss's trainer against bare PyTorch loops and the MLP bound.

Synthetic Criteo-shaped data (39 fields, embedding 16, DNN 400-400-400, dropout 0.5, batch 4096)
with 10k and 100k values per field. Measured interleaved in one run, round by round: recloss's
trainer (LazyAdam on the touched rows); the same trainer stepping through the same batches held in
memory (no loader and no prefetch thread beside the step: what the input pipeline costs); a bare
loop over the same DeepFM module with dense Adam over every parameter; a bare loop with
`torch.optim.SparseAdam` on sparse embedding tables; and the 400x3 MLP alone (its Linear, ReLU
and dropout layers as the models have them, forward, backward and fused Adam as recloss's dense
parameters have it, on a `[4096, 624]` input): the compute bound of the dense part. The same MLP
whose input also takes a gradient, as an embedding model's must (one more `[4096, 400] x
[400, 624]` product in the backward pass), is that bound for any model that trains its embeddings
through the MLP.

    python benchmarks/train_throughput.py [--steps 20] [--rounds 3]
    python benchmarks/train_throughput.py --threads 1 2   # recloss at 1 and 2 intra-op threads
    python benchmarks/train_throughput.py --precision     # recloss with fp32 and with bf16
    python benchmarks/train_throughput.py --compile       # recloss eager and with train.compile
    python benchmarks/train_throughput.py --compile --compile-precision bf16   # the same in bf16
    python benchmarks/train_throughput.py --headroom      # what a faster embedding optimiser gains

Each mode writes `results/<mode>.json` (`train_throughput`, `train_threads`, `train_precision`,
`train_compile[_bf16]`, `train_headroom`); `--report NAME` writes `results/NAME.json` instead,
e.g. to keep one machine's run beside another's.

`--headroom` bounds what a faster embedding optimiser could give: recloss's step from memory as it
is, with LazyAdam's row update fused into one generated kernel (gather, Adam and write-back of the
weights and both moments, by `torch.compile`), and with the embedding tables' optimiser step
skipped altogether (no kernel can do better), beside the MLP bounds and recloss with its loader.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import tempfile
import time
import types
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from _machine import report
from torch import nn

from recloss.config import RunConfig, config_from_dict
from recloss.data import prepare_dataset
from recloss.data.dedup import Deduplicator
from recloss.data.schema import Batch
from recloss.models import build_model
from recloss.models.layers import Dropout
from recloss.runs.online import build_trainer
from recloss.training import Trainer
from recloss.training.optim import LazyAdam, rows_and_grad

BATCH = 4096
HIDDEN = [400, 400, 400]


def make_config(cache: str, cardinality: int, rows: int) -> dict:
    return {
        "data": {
            "dataset": "synthetic",
            "cache_dir": f"{cache}/synthetic-{cardinality}",
            "synthetic": {"rows": rows, "fields": 39, "cardinality": cardinality, "seed": 0},
        },
        "model": {"name": "deepfm", "embed_dim": 16,
                  "params": {"hidden_dims": HIDDEN, "dropout": 0.5}},
        "loss": {"name": "ce"},
        "train": {"batch_size": BATCH, "progress": False, "epochs": 1},
    }  # fmt: skip


def epoch_config(cache: str, cardinality: int, steps: int) -> RunConfig:
    """The run of `make_config` whose training split holds `steps` full batches, one epoch each."""
    cfg = config_from_dict(make_config(cache, cardinality, steps * BATCH * 10 // 8 + BATCH))
    cfg.train.max_steps_per_epoch = steps
    return cfg


def recloss_round(trainer: Trainer, epoch: int) -> float:
    trainer.state.epoch = epoch  # the epoch's shuffle
    _, samples, seconds = trainer.train_epoch()
    return samples / seconds


def in_memory_round(trainer: Trainer, batches: list[Batch]) -> float:
    """recloss's `Trainer.step` over batches the loader made beforehand."""
    started = time.perf_counter()
    for batch in batches:
        trainer.step(batch)
    return len(batches) * BATCH / (time.perf_counter() - started)


def bare_round(model, optimizers, x_cat: torch.Tensor, y: torch.Tensor, steps: int, epoch: int):
    """The loop most people write: in-memory tensors, a shuffled index, one BCE step per batch."""
    model.train()
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))
    started = time.perf_counter()
    for i in range(steps):
        idx = perm[i * BATCH : (i + 1) * BATCH]
        loss = F.binary_cross_entropy_with_logits(model(Batch(x_cat[idx], None, y[idx])),
                                                  y[idx].float())  # fmt: skip
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        for opt in optimizers:
            opt.step()
    return steps * BATCH / (time.perf_counter() - started)


def mlp_round(mlp: nn.Module, opt, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    mlp.train()
    started = time.perf_counter()
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(mlp(x).squeeze(1), y)
        opt.zero_grad()
        x.grad = None  # an input that takes a gradient gets a fresh one, as embeddings do
        loss.backward()
        opt.step()
    return steps * BATCH / (time.perf_counter() - started)


def sparse_adam(model: nn.Module) -> list[torch.optim.Optimizer]:
    tables = [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]
    ids = {id(p) for p in tables}
    dense = [p for p in model.parameters() if id(p) not in ids]
    return [torch.optim.Adam(dense, lr=1e-3), torch.optim.SparseAdam(tables, lr=1e-3)]


def mlp_loops() -> dict[str, Callable[[int, int], float]]:
    """The 400x3 MLP alone (the models' dropout, fused Adam as recloss's dense parameters have
    it) on a `[4096, 624]` input, and the same whose input also takes a gradient."""
    layers: list[nn.Module] = []
    width = 39 * 16
    for h in HIDDEN:
        layers += [nn.Linear(width, h), nn.ReLU(), Dropout(0.5)]
        width = h
    mlp = nn.Sequential(*layers, nn.Linear(width, 1))
    opt = torch.optim.Adam(mlp.parameters(), fused=True)
    x, y = torch.randn(BATCH, 39 * 16), torch.randint(0, 2, (BATCH,)).float()
    x_grad = x.clone().requires_grad_()
    return {
        "mlp_alone": lambda n, e: mlp_round(mlp, opt, x, y, n),
        "mlp_input_grad": lambda n, e: mlp_round(mlp, opt, x_grad, y, n),
    }


def interleaved(
    loops: dict[str, Callable[[int, int], float]], steps: int, rounds: int
) -> dict[str, list[float]]:
    """Each loop's samples/s per round, the loops taking turns within a round (drifting machine
    load hits every loop alike) after a short warm-up (allocator, page cache, optimiser state)."""
    for loop in loops.values():
        loop(2, 0)
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for r in range(rounds):
        for name, loop in loops.items():
            rates[name].append(loop(steps, r + 1))
    return rates


def measure(cardinality: int, steps: int, rounds: int, cache: str) -> dict:
    cfg = epoch_config(cache, cardinality, steps)
    dataset = prepare_dataset(cfg.data, progress=False)
    trainer = build_trainer(cfg, dataset, run_dir=None)
    trainer.train_loader.set_epoch(0)
    batches = list(trainer.train_loader)[:steps]  # with their distinct rows, as the loader gives
    train = dataset.split("train")
    x_cat = torch.from_numpy(np.array(train.x_cat))  # a writable copy in memory
    y = torch.from_numpy(np.asarray(train.y, dtype=np.int64))
    schema, params = dataset.schema, {"hidden_dims": HIDDEN, "dropout": 0.5}
    torch.manual_seed(0)
    dense = build_model("deepfm", schema, 16, sparse=False, **params)
    sparse = build_model("deepfm", schema, 16, sparse=True, **params)
    dense_opt, sparse_opts = [torch.optim.Adam(dense.parameters())], sparse_adam(sparse)
    loops: dict[str, Callable[[int, int], float]] = {
        "recloss": lambda n, e: recloss_round(trainer, e),
        "recloss_in_memory": lambda n, e: in_memory_round(trainer, batches[:n]),
        "bare_dense_adam": lambda n, e: bare_round(dense, dense_opt, x_cat, y, n, e),
        "bare_sparse_adam": lambda n, e: bare_round(sparse, sparse_opts, x_cat, y, n, e),
        **mlp_loops(),
    }
    rates = interleaved(loops, steps, rounds)
    median = {name: statistics.median(v) for name, v in rates.items()}
    return {
        "values_per_field": cardinality,
        "embedding_rows": int(sum(schema.cardinalities)),
        "samples_per_s": median,
        "samples_per_s_all": rates,
        "loader_share": 1 - median["recloss"] / median["recloss_in_memory"],
        "in_memory_share_of_mlp_bound": median["recloss_in_memory"] / median["mlp_alone"],
        "vs_bare_dense_adam": median["recloss"] / median["bare_dense_adam"],
        "vs_bare_sparse_adam": median["recloss"] / median["bare_sparse_adam"],
        "share_of_mlp_bound": median["recloss"] / median["mlp_alone"],
        "share_of_mlp_input_grad_bound": median["recloss"] / median["mlp_input_grad"],
        "rounds": rounds,
        "steps_per_round": steps,
        "torch_threads": torch.get_num_threads(),
    }


def compare_threads(cardinality: int, steps: int, rounds: int, cache: str, counts: list[int]):
    """recloss's samples/s at each intra-op thread count, interleaved round by round, and the
    prefetch thread's work per batch (gathering rows, finding the distinct values)."""
    cfg = epoch_config(cache, cardinality, steps)
    trainer = build_trainer(cfg, prepare_dataset(cfg.data, progress=False), run_dir=None)
    recloss_round(trainer, 0)
    rates: dict[int, list[float]] = {n: [] for n in counts}
    for r in range(rounds):
        for n in counts:
            torch.set_num_threads(n)
            rates[n].append(recloss_round(trainer, r + 1))
    median = {n: statistics.median(v) for n, v in rates.items()}
    loader = prefetch_work(trainer.train_loader, steps)
    step_ms = {n: BATCH / m * 1e3 for n, m in median.items()}
    return {"values_per_field": cardinality, "samples_per_s": rates, "median": median,
            "prefetch_ms_per_batch": loader, "step_ms": step_ms}  # fmt: skip


def prefetch_work(loader, batches: int) -> dict[str, float]:
    """Median ms per batch of the prefetch thread's two jobs, timed alone in this thread."""
    gather, dedup, rows = [], [], loader._rows()
    finder = Deduplicator()
    for b in range(min(batches, len(loader))):
        idx = np.sort(rows[b * loader.batch_size : (b + 1) * loader.batch_size])
        started = time.perf_counter()
        batch = loader._gather(idx)
        gather.append(time.perf_counter() - started)
        started = time.perf_counter()
        finder(batch.x_cat.numpy())
        dedup.append(time.perf_counter() - started)
    return {"gather": statistics.median(gather) * 1e3, "dedup": statistics.median(dedup) * 1e3}


def compare_options(
    cardinality: int, steps: int, rounds: int, cache: str, options: dict[str, dict]
) -> dict:
    """recloss's samples/s under each set of `train` options and the bare fp32 SparseAdam loop,
    interleaved round by round; the first (warm-up) round's seconds, which include compiling."""
    loops: dict[str, Callable[[int, int], float]] = {}
    for name, train_options in options.items():
        cfg = epoch_config(cache, cardinality, steps)
        for key, value in train_options.items():
            setattr(cfg.train, key, value)
        dataset = prepare_dataset(cfg.data, progress=False)
        trainer = build_trainer(cfg, dataset, run_dir=None)
        loops[name] = lambda n, e, t=trainer: recloss_round(t, e)
    train = dataset.split("train")
    x_cat = torch.from_numpy(np.array(train.x_cat))
    y = torch.from_numpy(np.asarray(train.y, dtype=np.int64))
    torch.manual_seed(0)
    sparse = build_model("deepfm", dataset.schema, 16, sparse=True, hidden_dims=HIDDEN, dropout=0.5)
    opts = sparse_adam(sparse)
    loops["bare_sparse_adam_fp32"] = lambda n, e: bare_round(sparse, opts, x_cat, y, n, e)
    warm_up = {}
    for name, loop in loops.items():
        started = time.perf_counter()
        loop(steps, 0)
        warm_up[name] = time.perf_counter() - started
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for r in range(rounds):
        for name, loop in loops.items():
            rates[name].append(loop(steps, r + 1))
    median = {name: statistics.median(v) for name, v in rates.items()}
    return {"values_per_field": cardinality, "samples_per_s": rates, "median": median,
            "warm_up_seconds": warm_up}  # fmt: skip


def print_options(found: list[dict], base: str, other: str) -> None:
    """`other` against `base` and both against the bare fp32 SparseAdam loop, per cardinality."""
    for r in found:
        m, bare = r["median"], r["median"]["bare_sparse_adam_fp32"]
        warm = r["warm_up_seconds"]
        print(f"{r['values_per_field']:>7} values/field: {base} {m[base]:,.0f}  {other} "
              f"{m[other]:,.0f} samples/s: {m[other] / m[base]:.2f}x; bare fp32 SparseAdam "
              f"{bare:,.0f}: {base} {m[base] / bare:.2f}x, {other} {m[other] / bare:.2f}x; "
              f"warm-up round {warm[base]:.1f} s / {warm[other]:.1f} s")  # fmt: skip


def _rows_adam(w, m, v, rows, g, bias1, bias2_sqrt, lr: float, beta1: float, beta2: float,
               eps: float) -> None:  # fmt: skip
    """Adam on rows `rows` of `w` and its moments, written back in place: one kernel compiled."""
    m_rows = m[rows].mul(beta1).add(g, alpha=1 - beta1)
    v_rows = v[rows].mul(beta2).addcmul(g, g, value=1 - beta2)
    w_rows = w[rows] - (lr / bias1) * m_rows / (v_rows.sqrt() / bias2_sqrt + eps)
    w.index_put_((rows,), w_rows)
    m.index_put_((rows,), m_rows)
    v.index_put_((rows,), v_rows)


def fuse_rows(opt: LazyAdam) -> None:
    """Make `opt` update its rows with `_rows_adam` compiled (no L2, as this benchmark's runs)."""
    rows_adam = torch.compile(_rows_adam, dynamic=True)

    def update(self: LazyAdam, param: torch.Tensor, group: dict) -> None:
        beta1, beta2 = group["betas"]
        state = self.state[param]
        if "exp_avg" not in state:
            state.update(step=torch.zeros(()), exp_avg=torch.zeros_like(param),
                         exp_avg_sq=torch.zeros_like(param))  # fmt: skip
        state["step"] += 1
        t = float(state["step"])
        rows, grad = rows_and_grad(param.grad)
        rows_adam(param.data, state["exp_avg"], state["exp_avg_sq"], rows, grad,
                  torch.tensor(1 - beta1**t), torch.tensor(math.sqrt(1 - beta2**t)),
                  group["lr"], beta1, beta2, group["eps"])  # fmt: skip

    opt._update = types.MethodType(update, opt)


def skip_table_step(opt: LazyAdam) -> None:
    """Make `opt.step` leave the tables as they are: the bound of any embedding optimiser."""
    opt.step = lambda closure=None: None


def headroom(cardinality: int, steps: int, rounds: int, cache: str) -> dict:
    """Samples/s of recloss's step from memory as it is, with fused row updates, and with no
    table step, beside recloss with its loader and the MLP bounds, interleaved round by round."""
    cfg = epoch_config(cache, cardinality, steps)
    dataset = prepare_dataset(cfg.data, progress=False)
    trainers = {name: build_trainer(cfg, dataset, run_dir=None)
                for name in ("as_is", "fused_rows", "no_table_step")}  # fmt: skip
    fuse_rows(trainers["fused_rows"].optimizers[-1])
    skip_table_step(trainers["no_table_step"].optimizers[-1])
    loader = trainers["as_is"].train_loader
    loader.set_epoch(0)
    batches = list(loader)[:steps]
    loops: dict[str, Callable[[int, int], float]] = {
        "recloss": lambda n, e: recloss_round(trainers["as_is"], e),
        **{f"in_memory_{name}": lambda n, e, t=t: in_memory_round(t, batches[:n])
           for name, t in trainers.items()},
        **mlp_loops(),
    }  # fmt: skip
    median = {name: statistics.median(v) for name, v in interleaved(loops, steps, rounds).items()}
    loader_share = 1 - median["recloss"] / median["in_memory_as_is"]
    return {
        "values_per_field": cardinality,
        "samples_per_s": median,
        "share_of_mlp_bound": {name: rate / median["mlp_alone"] for name, rate in median.items()},
        "loader_share": loader_share,
        "fused_rows_gain": median["in_memory_fused_rows"] / median["in_memory_as_is"],
        "rounds": rounds,
        "steps_per_round": steps,
    }


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def print_headroom(args: argparse.Namespace) -> None:
    print(f"load before: {load()}")
    with tempfile.TemporaryDirectory() as cache:
        found = [headroom(c, args.steps, args.rounds, cache) for c in args.cardinalities]
    for r in found:
        rates = "  ".join(f"{k} {v:,.0f}" for k, v in r["samples_per_s"].items())
        shares = r["share_of_mlp_bound"]
        print(f"{r['values_per_field']:>7} values/field, samples/s: {rates}")
        print(f"{'':>21}share of the MLP bound: recloss {shares['recloss']:.0%}; from memory "
              f"{shares['in_memory_as_is']:.0%}, fused rows {shares['in_memory_fused_rows']:.0%}"
              f" ({r['fused_rows_gain']:.3f}x), no table step "
              f"{shares['in_memory_no_table_step']:.0%}; the loader costs "
              f"{r['loader_share']:.0%}")  # fmt: skip
    print(f"load after: {load()}")
    report(args.report or "train_headroom", {"deepfm_batch4096": found, "load": load()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cardinalities", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--threads", type=int, nargs="+", help="instead: recloss at these thread counts"
    )
    parser.add_argument("--precision", action="store_true", help="instead: fp32 against bf16")
    parser.add_argument("--compile", action="store_true", help="instead: eager against compiled")
    parser.add_argument("--compile-precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument(
        "--headroom", action="store_true", help="instead: faster and no embedding optimiser steps"
    )
    parser.add_argument("--report", help="the results file's name (default: the mode's)")
    args = parser.parse_args()
    if args.headroom:
        print_headroom(args)
        return
    precision = {"precision": args.compile_precision}
    compiled = {**precision, "compile": True}
    compile_report = "train_compile" + ("_bf16" if args.compile_precision == "bf16" else "")
    compared = {
        "precision": ("train_precision", {"fp32": {}, "bf16": {"precision": "bf16"}}),
        "compile": (compile_report, {"eager": precision, "compiled": compiled}),
    }
    for flag, (name, options) in compared.items():
        if not getattr(args, flag):
            continue
        print(f"load before: {load()}")
        with tempfile.TemporaryDirectory() as cache:
            found = [compare_options(c, args.steps, args.rounds, cache, options)
                     for c in args.cardinalities]  # fmt: skip
        print_options(found, *options)
        print(f"load after: {load()}")
        report(args.report or name, {"deepfm_batch4096": found, "load": load()})
        return
    if args.threads:
        print(f"load before: {load()}")
        with tempfile.TemporaryDirectory() as cache:
            found = [compare_threads(c, args.steps, args.rounds, cache, args.threads)
                     for c in args.cardinalities]  # fmt: skip
        for r in found:
            medians = "  ".join(f"{n} threads {v:,.0f}" for n, v in r["median"].items())
            print(f"{r['values_per_field']:>7} values/field, samples/s: {medians}")
            work, steps = r["prefetch_ms_per_batch"], r["step_ms"]
            shares = ", ".join(f"{(work['gather'] + work['dedup']) / ms:.0%} of a {n}-thread "
                               f"step" for n, ms in steps.items())  # fmt: skip
            print(f"{'':>21}prefetch thread per batch: gather {work['gather']:.1f} ms, distinct "
                  f"values {work['dedup']:.1f} ms ({shares})")  # fmt: skip
        print(f"load after: {load()}")
        report(args.report or "train_threads", {"deepfm_batch4096": found, "load": load()})
        return
    print(f"load before: {load()}")
    results = []
    with tempfile.TemporaryDirectory() as cache:
        for cardinality in args.cardinalities:
            r = measure(cardinality, args.steps, args.rounds, cache)
            results.append(r)
            rates = "  ".join(f"{k} {v:,.0f}" for k, v in r["samples_per_s"].items())
            print(f"{cardinality:>7} values/field, samples/s: {rates}")
            print(f"{'':>21}recloss vs dense Adam {r['vs_bare_dense_adam']:.2f}x, vs SparseAdam "
                  f"{r['vs_bare_sparse_adam']:.2f}x, {r['share_of_mlp_bound']:.0%} of the MLP "
                  f"bound, {r['share_of_mlp_input_grad_bound']:.0%} of the MLP-with-input-"
                  "gradient bound")  # fmt: skip
            print(
                f"{'':>21}the loader costs {r['loader_share']:.0%} of recloss's rate; from "
                f"memory recloss is at {r['in_memory_share_of_mlp_bound']:.0%} of the MLP bound"
            )
    print(f"load after: {load()}")
    report(args.report or "train_throughput", {"deepfm_batch4096": results, "load": load()})


if __name__ == "__main__":
    main()
