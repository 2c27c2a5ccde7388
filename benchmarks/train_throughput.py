"""Training samples/s of DeepFM: recloss's trainer (sparse embedding updates) against a plain
PyTorch loop with dense Adam, on synthetic Criteo-shaped data (39 fields, embedding 16, DNN
400-400-400, batch 4096), with 10k and 100k values per field, measured interleaved in one run.

    python benchmarks/train_throughput.py [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from _machine import report

from recloss.config import config_from_dict
from recloss.data import prepare_dataset
from recloss.models import build_model
from recloss.runs.online import build_trainer
from recloss.training import Trainer


def make_config(cache: str, cardinality: int, rows: int) -> dict:
    return {
        "data": {
            "dataset": "synthetic",
            "cache_dir": f"{cache}/synthetic-{cardinality}",
            "synthetic": {"rows": rows, "fields": 39, "cardinality": cardinality, "seed": 0},
        },
        "model": {
            "name": "deepfm",
            "embed_dim": 16,
            "params": {"hidden_dims": [400, 400, 400], "dropout": 0.5},
        },
        "loss": {"name": "ce"},
        "train": {"batch_size": 4096, "progress": False, "epochs": 1},
    }


def recloss_round(trainer: Trainer, epoch: int) -> float:
    trainer.state.epoch = epoch  # the epoch's shuffle
    _, samples, seconds = trainer.train_epoch()
    return samples / seconds


def plain_round(
    model, opt, x_cat: torch.Tensor, y: torch.Tensor, steps: int, bs: int, epoch: int
) -> float:
    """The loop most people write first: in-memory tensors, dense Adam over every parameter."""
    from recloss.data.schema import Batch

    model.train()
    gen = torch.Generator().manual_seed(epoch)
    perm = torch.randperm(len(y), generator=gen)
    started = time.perf_counter()
    for i in range(steps):
        idx = perm[i * bs : (i + 1) * bs]
        logits = model(Batch(x_cat[idx], None, y[idx]))
        loss = F.binary_cross_entropy_with_logits(logits, y[idx].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * bs / (time.perf_counter() - started)


def measure(cardinality: int, steps: int, rounds: int, cache: str) -> dict:
    rows = steps * 4096 * 10 // 8 + 4096  # the training split holds `steps` full batches
    cfg = config_from_dict(make_config(cache, cardinality, rows))
    cfg.train.max_steps_per_epoch = steps
    dataset = prepare_dataset(cfg.data, progress=False)
    trainer = build_trainer(cfg, dataset, run_dir=None)

    train = dataset.split("train")
    x_cat = torch.from_numpy(np.asarray(train.x_cat))
    y = torch.from_numpy(np.asarray(train.y, dtype=np.int64))
    torch.manual_seed(0)
    plain = build_model(
        "deepfm", dataset.schema, 16, sparse=False, hidden_dims=[400, 400, 400], dropout=0.5
    )
    plain_opt = torch.optim.Adam(plain.parameters(), lr=1e-3)

    recloss_rates, plain_rates = [], []
    recloss_round(trainer, 0)  # warm-up both (allocator, page cache, Adam state)
    plain_round(plain, plain_opt, x_cat, y, 2, 4096, 0)
    for r in range(rounds):  # interleaved, so drifting machine load hits both alike
        recloss_rates.append(recloss_round(trainer, r + 1))
        plain_rates.append(plain_round(plain, plain_opt, x_cat, y, steps, 4096, r + 1))
    result = {
        "values_per_field": cardinality,
        "embedding_rows": int(sum(dataset.schema.cardinalities)),
        "recloss_samples_per_s": statistics.median(recloss_rates),
        "plain_dense_adam_samples_per_s": statistics.median(plain_rates),
        "rounds": rounds,
        "steps_per_round": steps,
    }
    result["speedup"] = result["recloss_samples_per_s"] / result["plain_dense_adam_samples_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cardinalities", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as cache:
        for cardinality in args.cardinalities:
            r = measure(cardinality, args.steps, args.rounds, cache)
            results.append(r)
            print(
                f"{cardinality:>7} values/field: recloss {r['recloss_samples_per_s']:>9,.0f} "
                f"samples/s | plain dense Adam {r['plain_dense_adam_samples_per_s']:>9,.0f} "
                f"samples/s | speedup {r['speedup']:.2f}x"
            )
    report("train_throughput", {"deepfm_batch4096": results})


if __name__ == "__main__":
    main()
