"""LazyAdam: exact Adam on the rows a batch touches, untouched rows left alone."""

from __future__ import annotations

import torch

from recloss.training import LazyAdam


def sparse_grad(rows: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    return torch.sparse_coo_tensor(rows[None], values, shape, check_invariants=True)


def test_matches_adam_when_every_row_is_touched():
    torch.manual_seed(0)
    dense = torch.nn.Parameter(torch.randn(30, 4))
    lazy = torch.nn.Parameter(dense.detach().clone())
    adam, lazy_adam = torch.optim.Adam([dense], lr=0.01), LazyAdam([lazy], lr=0.01)
    for _ in range(5):
        g = torch.randn(30, 4)
        dense.grad = g.clone()
        lazy.grad = sparse_grad(torch.arange(30), g.clone(), (30, 4))
        adam.step()
        lazy_adam.step()
    torch.testing.assert_close(lazy, dense, rtol=0, atol=1e-6)


def test_untouched_rows_and_their_moments_stay_put():
    w = torch.nn.Parameter(torch.zeros(10, 2))
    opt = LazyAdam([w], lr=0.1)
    w.grad = sparse_grad(torch.tensor([3, 3, 7]), torch.ones(3, 2), (10, 2))
    opt.step()
    moved = (w != 0).any(dim=1).nonzero().flatten().tolist()
    assert moved == [3, 7]
    # duplicate lookups of row 3 are summed before the update, like a dense gradient
    assert torch.equal(opt.state[w]["exp_avg"][3], torch.full((2,), 0.2))
    assert torch.equal(opt.state[w]["exp_avg"][7], torch.full((2,), 0.1))


def test_agrees_with_sparse_adam_on_an_embedding():
    torch.manual_seed(1)
    a = torch.nn.Embedding(100, 8, sparse=True)
    b = torch.nn.Embedding(100, 8, sparse=True)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = torch.optim.SparseAdam(a.parameters(), lr=1e-3), LazyAdam(b.parameters())
    target = torch.randn(64, 8) * 3
    for _ in range(4):
        idx = torch.randint(0, 100, (64,))
        for emb, opt in ((a, opt_a), (b, opt_b)):
            emb.zero_grad()
            ((emb(idx) - target) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=1e-5)
