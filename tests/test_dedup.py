"""Deduplicated lookups: the loader's distinct values, the models' [U, D] lookups and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_models import ALL, SMALL, make_batch, make_schema

from recloss.data import BatchLoader, SplitArrays
from recloss.data import dedup as dedup_module
from recloss.data.dedup import Deduplicator, lookup_of
from recloss.data.schema import Batch
from recloss.models import build_model
from recloss.models.layers import FeaturesEmbedding
from recloss.training import LazyAdam


def test_distinct_values_and_inverse_agree_with_np_unique():
    rng = np.random.default_rng(0)
    dedup = Deduplicator()
    # buffers reused across batches of other shapes and ranges; the widest is sorted, not marked
    for width in (50, 7, 300, 5000):
        x = rng.integers(0, width, size=(64, 4)).astype(np.int32)
        lookup = dedup(x)
        keys = x.astype(np.int64) + np.arange(4) * 10_000
        distinct, inverse = np.unique(keys, return_inverse=True)
        got = lookup.fields.numpy().astype(np.int64) * 10_000 + lookup.values.numpy()
        assert got.tolist() == distinct.tolist()
        assert np.array_equal(lookup.inverse.numpy(), inverse.reshape(x.shape))
        assert lookup.values.dtype == torch.int32
        assert lookup.inverse.dtype == torch.int64  # index_add_'s fast path


def test_marking_and_sorting_find_the_same_lookup(monkeypatch):
    x = np.random.default_rng(1).integers(0, 400, size=(128, 5)).astype(np.int32)
    found = []
    for sort_above in (10**9, 0):  # always mark, always sort
        monkeypatch.setattr(dedup_module, "SORT_ABOVE", sort_above)
        found.append(Deduplicator()(x))
    for marked, ordered in zip(*found, strict=True):
        assert torch.equal(marked, ordered)


def test_an_empty_categorical_block_has_an_empty_lookup():
    lookup = lookup_of(np.zeros((5, 0), dtype=np.int32))
    assert len(lookup.values) == 0 and lookup.inverse.shape == (5, 0)


def test_loader_attaches_lookups_only_when_asked_and_to_moves_them():
    x = np.arange(40, dtype=np.int32).reshape(20, 2) % 6
    split = SplitArrays(x, None, np.zeros(20, np.int8))
    plain = next(iter(BatchLoader(split, 8, shuffle=True)))
    assert plain.lookup is None
    batch = next(iter(BatchLoader(split, 8, shuffle=True, dedup=True)))
    lookup = batch.lookup
    rebuilt = lookup.values[lookup.inverse.long()]
    assert torch.equal(rebuilt, batch.x_cat)
    assert torch.equal(lookup.fields[lookup.inverse.long()], torch.tensor([[0, 1]] * 8))
    moved = batch.to("cpu")
    assert moved.lookup is not None and torch.equal(moved.lookup.inverse, lookup.inverse)


def with_lookup(batch: Batch) -> Batch:
    return Batch(batch.x_cat, batch.x_num, batch.y, lookup_of(batch.x_cat.numpy()))


def test_deduplicated_lookup_gives_the_same_rows_and_a_coalesced_gradient():
    schema = make_schema(numeric=1)
    emb = FeaturesEmbedding(schema, dim=3).train()
    batch = with_lookup(make_batch(schema, size=40))
    plain = emb(batch.x_cat, batch.x_num)
    plain.pow(2).sum().backward()
    expected = emb.table.weight.grad.coalesce()
    emb.zero_grad()
    out = emb(batch.x_cat, batch.x_num, batch.lookup)
    assert torch.equal(out, plain)
    out.pow(2).sum().backward()
    grad = emb.table.weight.grad
    assert grad.is_sparse and grad.is_coalesced()
    assert len(grad._indices()[0]) == len(batch.lookup.values) < batch.x_cat.numel()
    assert torch.equal(grad._indices(), expected.indices())
    assert torch.equal(grad._values(), expected.values())  # summed in the same order


def test_a_lookup_gives_distinct_rows_in_either_mode_and_dense_tables_the_plain_lookup():
    schema = make_schema()
    batch = with_lookup(make_batch(schema, size=40))
    for mode in ("train", "eval"):  # eval: the hypergradients' validation passes
        emb = getattr(FeaturesEmbedding(schema, dim=3), mode)()
        emb(batch.x_cat, None, batch.lookup).sum().backward()
        assert emb.table.weight.grad.is_coalesced()
        assert len(emb.table.weight.grad._indices()[0]) == len(batch.lookup.values)
    plain = FeaturesEmbedding(schema, dim=3).eval()
    plain(batch.x_cat).sum().backward()
    assert len(plain.table.weight.grad._indices()[0]) == batch.x_cat.numel()  # one per lookup
    dense = FeaturesEmbedding(schema, dim=3, sparse=False).train()
    dense(batch.x_cat, None, batch.lookup).sum().backward()
    assert not dense.table.weight.grad.is_sparse


@pytest.mark.parametrize("name", ALL)
def test_every_model_trains_the_same_with_deduplicated_lookups(name):
    schema = make_schema(numeric=1)
    batch = make_batch(schema, size=32)
    grads = []
    for b in (batch, with_lookup(batch)):
        torch.manual_seed(0)
        model = build_model(name, schema, embed_dim=4, **SMALL.get(name, {})).train()
        model(b).sum().backward()
        grads.append([p.grad.to_dense() for p in model.parameters() if p.grad is not None])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_lazy_adam_takes_coalesced_gradients_as_they_are(monkeypatch):
    import recloss.training.optim as optim

    w = torch.nn.Parameter(torch.zeros(10, 2))
    opt = LazyAdam([w], lr=0.1)
    rows, values = torch.tensor([2, 5]), torch.ones(2, 2)
    monkeypatch.setattr(optim, "_unique", lambda _: pytest.fail("sorted a coalesced gradient"))
    w.grad = torch.sparse_coo_tensor(
        rows[None], values, w.shape, check_invariants=False, is_coalesced=True
    )
    opt.step()
    assert (w != 0).any(dim=1).nonzero().flatten().tolist() == [2, 5]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_step_with_lookups_and_lazy_l2_never_waits_for_the_device():
    from recloss.training.optim import catch_up_lookups

    schema = make_schema()
    model = build_model("deepfm", schema, embed_dim=4, hidden_dims=(8,)).cuda().train()
    tables = [model.embedding.table.weight, model.linear.weights.table.weight]
    opt = LazyAdam(tables, weight_decay=0.01)
    batch = with_lookup(make_batch(schema, size=64)).to("cuda")
    model(batch).sum().backward()
    opt.step()  # the first step allocates the state
    torch.cuda.set_sync_debug_mode("error")
    try:
        model.zero_grad(set_to_none=True)
        catch_up_lookups([opt], model, batch)
        model(batch).sum().backward()
        assert tables[0].grad.is_coalesced()
        opt.step()
        opt.flush()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(tables[0]).all()
