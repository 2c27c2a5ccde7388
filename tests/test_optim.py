"""LazyAdam: exact Adam on the rows a batch touches, untouched rows left alone."""

from __future__ import annotations

import torch

from recloss.training import LazyAdam
from recloss.training.precondition import AdamPreconditioner


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


def test_adam_preconditioner_gives_adams_step_without_its_momentum():
    """`lr * P grad` is Adam's step when the momentum is the gradient itself (the first step),
    and `P` uses the second moment this step will have; untouched rows get no direction."""
    torch.manual_seed(0)
    dense, table = torch.nn.Parameter(torch.randn(6, 3)), torch.nn.Parameter(torch.randn(10, 2))
    adam, lazy = torch.optim.Adam([dense], lr=0.01), LazyAdam([table], lr=0.01)
    precondition = AdamPreconditioner([adam, lazy])
    rows = torch.tensor([1, 4, 8])
    for step in range(1, 4):
        g_dense, g_rows = torch.randn(6, 3), torch.randn(3, 2)
        dense.grad = g_dense
        table.grad = sparse_grad(rows, g_rows, (10, 2)).coalesce()
        before = [dense.detach().clone(), table.detach().clone()]
        val_rows = torch.tensor([0, 4, 8, 9])  # 0 and 9: not in the step's gradient
        val = sparse_grad(val_rows, torch.ones(4, 2), (10, 2)).coalesce()
        p_dense, p_grad, p_val = precondition([dense, table, table], [g_dense, table.grad, val])
        v = [(adam.state[dense].get("exp_avg_sq", torch.zeros(6, 3)) * 0.999
              + 0.001 * g_dense**2) / (1 - 0.999**step)]  # fmt: skip
        torch.testing.assert_close(p_dense, g_dense / (v[0].sqrt() + 1e-8))
        assert p_val.indices()[0].tolist() == [4, 8]
        adam.step()
        lazy.step()
        if step == 1:  # Adam's first step is lr * g / (|g| + eps): exactly lr * P g
            torch.testing.assert_close(before[0] - dense.detach(), 0.01 * p_dense)
            moved = (before[1] - table.detach())[rows]
            torch.testing.assert_close(moved, 0.01 * p_grad.to_dense()[rows])
            torch.testing.assert_close(p_val.values(), p_grad.values()[1:] / g_rows[1:])
    assert precondition([dense], [None]) == [None]
    table.grad = sparse_grad(torch.tensor([], dtype=torch.long), torch.zeros(0, 2), (10, 2))
    assert precondition([table], [val])[0]._nnz() == 0  # a step that touched no row
