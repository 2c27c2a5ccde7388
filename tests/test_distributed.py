"""Data-parallel training on 2 CPU ranks (gloo, localhost) against one process, same global batch.

The reference runs in a process of its own too, with the same configuration: the global batch
of 2 ranks is the single process's batch, row for row. Dropout is off and AutoLoss's Gumbel
noise is zero in both, so that the runs differ only by how the work is split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from distributed_ranks import spawn

import recloss.search.autoloss as autoloss
from recloss import train
from recloss.training import Callback

STEPS_PER_EPOCH = 6
LOSSES = ("ce", "autoloss")
AUTOLOSS = {"controller_every": 2}  # the binary default: normalised, its sums over all ranks


def _config(cache: Path, loss: str) -> dict:
    """Synthetic data, a small DeepFM without dropout, 2 short epochs of a global batch of 256."""
    return {
        "data": {
            "dataset": "synthetic",
            "cache_dir": str(cache),
            "synthetic": {"rows": 4000, "fields": 6, "cardinality": 40, "seed": 5},
        },
        "model": {
            "name": "deepfm",
            "embed_dim": 8,
            "params": {"dropout": 0.0, "hidden_dims": [64, 64]},
        },
        "loss": {"name": loss, "params": AUTOLOSS if loss == "autoloss" else {}},
        "train": {
            "epochs": 2,
            "batch_size": 256,
            "max_steps_per_epoch": STEPS_PER_EPOCH,
            "progress": False,
            "patience": 5,
            "seed": 11,
            "device": "cpu",
            "calibration": "platt",  # fitted on the validation logits the ranks gather
        },
    }


class FirstStep(Callback):
    """Keeps the floating-point weights of the model and the strategy after the first step."""

    def __init__(self) -> None:
        self.weights: dict[str, np.ndarray] = {}

    def on_train_batch_end(self, trainer, batch_size, mean_loss) -> None:
        if trainer.state.step == 1:
            state = {**trainer.model.state_dict(), **trainer.strategy.state_dict()}
            self.weights = {
                k: v.detach().numpy().copy()
                for k, v in state.items()
                if torch.is_tensor(v) and v.is_floating_point()
            }


def _zero_noise(shape, device="cpu", generator=None) -> torch.Tensor:
    return torch.zeros(tuple(shape), device=device)


def _train(cfg: dict, run_dir: str) -> dict:
    """Train; the record's figures and the weights after the first step."""
    first = FirstStep()
    record = train(cfg, run_dir=run_dir, callbacks=[first])
    return {
        "test": record.test,
        "calibration": record.calibration,
        "losses": [e.train_loss for e in record.history],
        "steps": record.steps,
        "world": (record.world_size, record.backend),
        "first_step": first.weights,
    }


def _train_each(rank: int, cache: str, out: str) -> dict | None:
    """On every rank: train with each loss in turn; rank 0 returns the figures by loss."""
    autoloss.gumbel_noise = _zero_noise
    found = {loss: _train(_config(Path(cache), loss), f"{out}/{loss}") for loss in LOSSES}
    return found if rank == 0 else None


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    """Per loss: (one process, two ranks), on the same cached data set."""
    root = tmp_path_factory.mktemp("dist")
    two, other = spawn(_train_each, 2, str(root / "cache"), str(root / "two"))
    assert other is None  # rank 1 writes and reports nothing
    saved = autoloss.gumbel_noise
    autoloss.gumbel_noise = _zero_noise
    try:
        one = {
            loss: _train(_config(root / "cache", loss), str(root / "one" / loss)) for loss in LOSSES
        }
    finally:
        autoloss.gumbel_noise = saved
    return {loss: (one[loss], two[loss]) for loss in LOSSES}


@pytest.mark.parametrize("loss", LOSSES)
def test_two_ranks_take_the_steps_of_one_process_with_the_global_batch(runs, loss):
    one, two = runs[loss]
    assert one["world"] == (1, None) and two["world"] == (2, "gloo")
    assert one["steps"] == two["steps"] == 2 * STEPS_PER_EPOCH
    # the weights after one step: embedding tables, dense layers and the strategy's own
    assert sorted(one["first_step"]) == sorted(two["first_step"])
    for key, value in one["first_step"].items():
        np.testing.assert_allclose(two["first_step"][key], value, rtol=1e-4, atol=1e-6, err_msg=key)
    assert abs(one["test"]["auc"] - two["test"]["auc"]) < 1e-3
    assert abs(one["test"]["logloss"] - two["test"]["logloss"]) < 1e-3
    assert two["calibration"].scale == pytest.approx(one["calibration"].scale, rel=1e-3)
    assert two["calibration"].bias == pytest.approx(one["calibration"].bias, abs=1e-3)
    # the epochs' training loss is that of the global batches, not rank 0's share
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-4)


def _example_weights(rows: slice) -> tuple[torch.Tensor, torch.Tensor]:
    """`effective_weights` of `rows` of one fixed batch, and the gradient of `sum E * h` by the
    example weights' logits."""
    from recloss.search.controller import effective_weights

    g = torch.Generator().manual_seed(0)
    log_weight, h = torch.randn(16, generator=g), torch.randn(16, 4, generator=g)
    p = torch.randn(16, 4, generator=g).softmax(1)
    y = (torch.arange(16) % 3 == 0).long()
    mine = log_weight[rows].clone().requires_grad_()
    weights = effective_weights(p[rows], mine, y[rows], 2)
    (weights * h[rows]).sum().backward()
    return weights.detach(), mine.grad


def _example_weights_on_rank(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.distributed.init_process_group("gloo")
    return _example_weights(slice(8 * rank, 8 * rank + 8))


def test_the_example_weight_is_normalised_within_each_label_of_the_global_batch():
    weights, grad = _example_weights(slice(None))
    ranks = spawn(_example_weights_on_rank, 2)
    torch.testing.assert_close(torch.cat([w for w, _ in ranks]), weights)
    torch.testing.assert_close(torch.cat([g for _, g in ranks]), grad)
