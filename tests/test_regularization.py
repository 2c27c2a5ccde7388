"""Whole-table L2 (`train.embedding_regularizer`) applied lazily, against dense references."""

from __future__ import annotations

import pytest
import torch

from recloss.config import TrainConfig, config_from_dict
from recloss.errors import ConfigError
from recloss.models import build_model
from recloss.training import LazyAdam
from recloss.training.optim import LazySGD, flush_regularization, make_optimizers

N, D = 40, 3


def touched_rows(steps: int, share: float, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(N, generator=g) < share).nonzero().squeeze(1) for _ in range(steps)]


def data_grad(w: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return w - target  # the gradient of 1/2 ||w - target||^2, per row


def run_lazy(opt_class, w0, target, schedule, **kw) -> torch.Tensor:
    w = torch.nn.Parameter(w0.clone())
    opt = opt_class([w], **kw)
    for rows in schedule:
        opt.catch_up(w, rows)  # what the trainer does before the forward pass
        g = data_grad(w.detach(), target)[rows]
        w.grad = torch.sparse_coo_tensor(
            rows[None], g, w.shape, check_invariants=False, is_coalesced=True
        )
        opt.step()
    opt.flush()
    return w.detach()


def run_dense(opt_class, w0, target, schedule, **kw) -> torch.Tensor:
    """The dense optimiser with its own weight_decay: every row's L2 gradient at every step."""
    w = torch.nn.Parameter(w0.clone())
    opt = opt_class([w], **kw)
    for rows in schedule:
        mask = torch.zeros(N, 1, dtype=w.dtype).index_fill_(0, rows, 1.0)
        w.grad = data_grad(w.detach(), target) * mask
        opt.step()
    return w.detach()


def start(dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, D, generator=g, dtype=dtype) * 0.1, torch.randn(
        N, D, generator=g, dtype=dtype
    )


def test_lazy_l2_is_dense_l2_for_sgd_exactly():
    w0, target = start(torch.float64)
    schedule = touched_rows(60, share=0.2)
    lazy = run_lazy(LazySGD, w0, target, schedule, lr=0.05, weight_decay=0.3)
    dense = run_dense(torch.optim.SGD, w0, target, schedule, lr=0.05, weight_decay=0.3)
    torch.testing.assert_close(lazy, dense, rtol=1e-12, atol=1e-14)
    plain = run_lazy(LazySGD, w0, target, schedule, lr=0.05)
    assert (plain - dense).abs().max() > 1e-2  # the decay of the missed steps mattered


def test_lazy_adam_with_every_row_touched_is_adam_with_weight_decay():
    w0, target = start()
    schedule = [torch.arange(N)] * 20
    lazy = run_lazy(LazyAdam, w0, target, schedule, lr=0.01, weight_decay=0.1)
    dense = run_dense(torch.optim.Adam, w0, target, schedule, lr=0.01, weight_decay=0.1)
    torch.testing.assert_close(lazy, dense, rtol=0, atol=1e-6)


def replayed_adam(w0, target, schedule, lr, decay, betas=(0.9, 0.999), eps=1e-8):
    """LazyAdam's semantics with the L2-only Adam step of every untouched row replayed at every
    step (frozen moments, the L2 gradient's own second moment): what the catch-up compresses."""
    (b1, b2), w = betas, w0.clone()
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    for t, rows in enumerate(schedule, 1):
        touched = torch.zeros(N, 1, dtype=torch.bool).index_fill_(0, rows, True)
        rate = lr * decay / ((v / (1 - b2**t) + (decay * w) ** 2).sqrt() + eps)
        missed = w * (1 - rate).clamp(min=0)
        g = data_grad(w, target) + decay * w
        m2, v2 = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        stepped = w - lr * (m2 / (1 - b1**t)) / ((v2 / (1 - b2**t)).sqrt() + eps)
        w = torch.where(touched, stepped, missed)
        m, v = torch.where(touched, m2, m), torch.where(touched, v2, v)
    return w


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_lazy_adam_l2_matches_its_step_by_step_definition_and_dense_adam():
    w0, target = start()
    schedule = touched_rows(200, share=0.3)
    kw = {"lr": 0.01, "weight_decay": 0.05}
    lazy = run_lazy(LazyAdam, w0, target, schedule, **kw)
    assert rel(lazy, replayed_adam(w0, target, schedule, 0.01, 0.05)) < 0.02
    dense = run_dense(torch.optim.Adam, w0, target, schedule, **kw)
    lookup_only = run_lazy(LazyAdam, w0, target, schedule, lr=0.01)
    # closer to FuxiCTR's dense Adam than without the missed steps' decay, and as strong overall
    assert rel(lazy, dense) < 0.7 * rel(lookup_only, dense)
    assert abs(float(lazy.norm() / dense.norm()) - 1) < 0.05


def test_a_row_the_l2_dominates_goes_to_zero_like_dense_adam():
    w0 = torch.full((N, D), 0.01)
    schedule = [torch.tensor([0])] + [torch.tensor([1])] * 30  # rows >= 2 never touched
    target = torch.zeros(N, D)
    lazy = run_lazy(LazyAdam, w0, target, schedule, lr=1e-3, weight_decay=0.05)
    dense = run_dense(torch.optim.Adam, w0, target, schedule, lr=1e-3, weight_decay=0.05)
    assert dense[2:].abs().max() < 2e-3 and lazy[2:].abs().max() < 2e-3  # from 1e-2


def test_flush_is_idempotent_and_clocks_survive_a_checkpoint():
    w = torch.nn.Parameter(torch.ones(N, D))
    opt = LazyAdam([w], lr=0.01, weight_decay=0.1)
    for rows in touched_rows(5, 0.5):
        w.grad = torch.sparse_coo_tensor(
            rows[None], torch.ones(len(rows), D), w.shape, check_invariants=True
        )
        opt.step()
    opt.flush()
    once = w.detach().clone()
    opt.flush()
    assert torch.equal(w, once)
    assert (w[opt.state[w]["decayed_at"] == 0] < 1).all()  # never-touched rows decayed too
    again = LazyAdam([torch.nn.Parameter(once.clone())], lr=0.01, weight_decay=0.1)
    again.load_state_dict(opt.state_dict())
    clock = next(iter(again.state.values()))["decayed_at"]
    assert clock.dtype == torch.int32 and clock.tolist() == [5] * N


def small_schema():
    from test_models import make_schema

    return make_schema(numeric=1)


def test_make_optimizers_regularise_both_tables_lazily_or_densely():
    schema = small_schema()
    cfg = TrainConfig(embedding_regularizer=0.05, weight_decay=0.001)
    sparse = build_model("deepfm", schema, embed_dim=4, hidden_dims=(8,))
    adam, lazy = make_optimizers(sparse, cfg)
    tables = {id(sparse.embedding.table.weight), id(sparse.linear.weights.table.weight)}
    assert {id(p) for p in lazy.param_groups[0]["params"]} == tables
    assert lazy.param_groups[0]["weight_decay"] == 0.05
    assert adam.param_groups[0]["weight_decay"] == 0.001
    dense = build_model("deepfm", schema, embed_dim=4, sparse=False, hidden_dims=(8,))
    (adam,) = make_optimizers(dense, cfg)
    dense_tables = {id(dense.embedding.table.weight), id(dense.linear.weights.table.weight)}
    assert [g["weight_decay"] for g in adam.param_groups] == [0.001, 0.05]
    assert {id(p) for p in adam.param_groups[1]["params"]} == dense_tables


def test_flush_regularization_reaches_every_lazy_optimizer():
    w = torch.nn.Parameter(torch.ones(N, D))
    opt = LazyAdam([w], lr=0.01, weight_decay=0.1)
    w.grad = torch.sparse_coo_tensor(
        torch.tensor([[0]]), torch.ones(1, D), w.shape, check_invariants=True
    )
    opt.step()
    opt.step()  # the same gradient again: row 1 has missed two steps
    flush_regularization([torch.optim.Adam([torch.nn.Parameter(torch.ones(1))]), opt])
    assert (w[1:] < 1).all()


def test_old_key_is_refused_with_its_new_names():
    with pytest.raises(ConfigError, match=r"lookup_l2.*embedding_regularizer"):
        config_from_dict({"train": {"embedding_l2": 1e-5}}, "run.yaml")
    cfg = config_from_dict({"train": {"lookup_l2": 1e-5}})
    assert cfg.train.lookup_l2 == 1e-5 and cfg.train.embedding_regularizer == 0.0


def trainer_for(tmp_path, **train):
    from recloss.data import prepare_dataset
    from recloss.runs.online import build_trainer

    cfg = config_from_dict(
        {
            "data": {
                "dataset": "synthetic",
                "cache_dir": str(tmp_path / "cache"),
                "synthetic": {"rows": 3000, "fields": 5, "cardinality": 200, "seed": 3},
            },
            "model": {"name": "deepfm", "embed_dim": 4, "params": {"hidden_dims": [16]}},
            "loss": {"name": "ce"},
            "train": {"epochs": 1, "batch_size": 128, "progress": False, **train},
        }
    )
    return build_trainer(cfg, prepare_dataset(cfg.data, progress=False), run_dir=None)


def test_trainer_steps_on_coalesced_gradients_and_flushes_before_evaluating(tmp_path, monkeypatch):
    import recloss.training.optim as optim

    monkeypatch.setattr(optim, "_unique", lambda _: pytest.fail("sorted a coalesced gradient"))
    trainer = trainer_for(tmp_path, embedding_regularizer=0.05)
    lazy = trainer.optimizers[1]
    batch = next(iter(trainer.train_loader))
    trainer.step(batch)
    table = trainer.model.embedding.table.weight
    assert table.grad.is_coalesced()
    untouched = torch.ones(table.shape[0], dtype=torch.bool)
    untouched[trainer.model.embedding.table_rows(batch.lookup)] = False
    trainer.step(batch)  # the untouched rows have now missed a step of L2
    before = table.detach()[untouched].clone()
    trainer.evaluate(trainer.data.valid)
    assert (table.detach()[untouched].abs() < before.abs()).all()
    assert set(lazy.state[table]["decayed_at"].tolist()) == {2}


def test_lookup_l2_penalises_each_lookup_of_a_row(tmp_path):
    grads = []
    for l2 in (0.0, 1.0):
        trainer = trainer_for(tmp_path, lookup_l2=l2)
        batch = next(iter(trainer.train_loader))
        weight = trainer.model.embedding.table.weight.detach().clone()
        trainer.step(batch)
        grads.append(trainer.model.embedding.table.weight.grad.to_dense())
    index = (batch.x_cat.long() + trainer.model.embedding.offsets).flatten()
    counts = torch.bincount(index, minlength=weight.shape[0]).unsqueeze(1)
    expected = 2 * counts * weight / len(batch)
    torch.testing.assert_close(grads[1] - grads[0], expected, rtol=1e-4, atol=1e-7)


def test_a_run_killed_with_rows_still_owing_decay_resumes_exactly(tmp_path):
    """Checkpoints need no flush: the row clocks are LazyAdam state, so the resumed run catches
    the rows up exactly as the uninterrupted one does."""
    from conftest import InterruptAtStep
    from test_train import small_config

    from recloss.rundir import RunDir
    from recloss.runs import resume, train
    from recloss.training import checkpoint

    overrides = {"train.epochs": 2, "train.checkpoint_every_steps": 4}
    cfg = small_config(tmp_path, **overrides, **{"train.embedding_regularizer": 0.01})
    full = train(cfg, run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[InterruptAtStep(6)])
    saved = checkpoint.load(RunDir(tmp_path / "cut").checkpoint)
    clocks = [s["decayed_at"] for s in saved["optimizers"][1]["state"].values()]
    assert any(bool((c < 4).any()) for c in clocks)  # saved with decay still owed
    resumed = resume(tmp_path / "cut")
    assert resumed.test == full.test
    assert [h.train_loss for h in resumed.history] == [h.train_loss for h in full.history]
    plain = train(small_config(tmp_path, **overrides), run_dir=tmp_path / "plain")
    assert plain.test != full.test  # the regulariser was at work
