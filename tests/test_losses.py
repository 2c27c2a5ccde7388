import math

import pytest
import torch

from recloss.errors import ConfigError, RecLossError
from recloss.losses import LOSSES, generalized_cross_entropy, kl_loss, loss_matrix, register_loss

NAMES = ["focal", "kl", "hinge", "ce", "gce"]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _binary_expected(z: float, y: int) -> dict[str, float]:
    q = _sigmoid(z)
    pt = q if y == 1 else 1 - q
    ce = -math.log(pt)
    t1 = 0.95 if y == 1 else 0.05
    kl = t1 * math.log(t1 / q) + (1 - t1) * math.log((1 - t1) / (1 - q))
    hinge = max(0.0, 1 - (2 * y - 1) * z)
    return {"ce": ce, "focal": (1 - pt) ** 2 * ce, "kl": kl, "hinge": hinge, "gce": _gce(pt)}


def _gce(pt: float, q: float = 0.7) -> float:
    return (1 - pt**q) / q


def _multiclass_expected(z: list[float], y: int) -> dict[str, float]:
    exps = [math.exp(v) for v in z]
    p = [e / sum(exps) for e in exps]
    ce = -math.log(p[y])
    c = len(z)
    t = [0.9 + 0.1 / c if k == y else 0.1 / c for k in range(c)]
    kl = sum(tk * math.log(tk / pk) for tk, pk in zip(t, p, strict=True))
    other = max(v for k, v in enumerate(z) if k != y)
    hinge = max(0.0, 1 + other - z[y])
    return {"ce": ce, "focal": (1 - p[y]) ** 2 * ce, "kl": kl, "hinge": hinge, "gce": _gce(p[y])}


def test_builtin_candidates_are_registered_with_descriptions():
    assert set(NAMES) <= set(LOSSES.names())
    assert all(LOSSES.get(n).description for n in NAMES)
    assert LOSSES.get("FOCAL") is LOSSES.get("focal")


@pytest.mark.parametrize(("z", "y"), [(0.7, 1), (0.7, 0), (-2.3, 1), (-2.3, 0), (0.0, 1), (1.5, 1)])
def test_binary_losses_match_hand_computed(z, y):
    got = loss_matrix(NAMES, torch.tensor([z], dtype=torch.float64), torch.tensor([y]))
    expected = _binary_expected(z, y)
    for i, name in enumerate(NAMES):
        assert got[0, i].item() == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize(
    ("z", "y"), [([1.0, 2.0, 0.5], 1), ([1.0, 2.0, 0.5], 0), ([0.1, -0.4, 0.3, 2.0, -1.0], 3)]
)
def test_multiclass_losses_match_hand_computed(z, y):
    got = loss_matrix(NAMES, torch.tensor([z], dtype=torch.float64), torch.tensor([y]))
    expected = _multiclass_expected(z, y)
    for i, name in enumerate(NAMES):
        assert got[0, i].item() == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


def test_gce_lies_between_ce_and_mae_and_pushes_less_on_contradicted_examples():
    z, y = torch.tensor([-4.0, 0.5, 3.0], dtype=torch.float64), torch.tensor([1, 1, 1])
    ce = loss_matrix(["ce"], z, y)[:, 0]
    assert torch.allclose(generalized_cross_entropy(z, y, q=1e-6), ce, rtol=1e-5)
    assert torch.allclose(generalized_cross_entropy(z, y, q=1.0), 1 - torch.sigmoid(z))
    zg = z.clone().requires_grad_()
    generalized_cross_entropy(zg, y).sum().backward()
    ce_grad = torch.sigmoid(z) - 1
    assert torch.allclose(zg.grad, ce_grad * torch.sigmoid(z) ** 0.7)  # CE's gradient times p_t^q


def test_crammer_singer_hinge_uses_best_wrong_class():
    logits = torch.tensor([[1.0, 2.0, 0.5], [3.0, 0.0, 0.0]])
    got = LOSSES.get("hinge")(logits, torch.tensor([0, 0]))
    assert torch.allclose(got, torch.tensor([2.0, 0.0]))


@pytest.mark.parametrize("logits", [torch.randn(64) * 3, torch.randn(64, 5) * 3])
def test_kl_differs_from_ce_but_equals_it_without_smoothing(logits):
    y = torch.randint(0, 2 if logits.dim() == 1 else 5, (64,))
    ce = LOSSES.get("ce")(logits, y)
    assert not torch.allclose(LOSSES.get("kl")(logits, y), ce, atol=1e-3)
    assert torch.allclose(kl_loss(logits, y, eps=0.0), ce, atol=1e-5)


@pytest.mark.parametrize("shape", [(6,), (6, 5)])
def test_values_and_gradients_finite_for_extreme_logits(shape):
    torch.manual_seed(0)
    base = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0, 30.0])
    logits = base if len(shape) == 1 else base[:, None] * torch.randn(shape).sign()
    logits = logits.float().requires_grad_()
    classes = 2 if len(shape) == 1 else shape[1]
    y = torch.tensor([1, 0, 0, 1, 1, 0]) % classes
    for name in NAMES:
        logits.grad = None
        values = LOSSES.get(name)(logits, y)
        values.sum().backward()
        assert torch.isfinite(values).all(), name
        assert torch.isfinite(logits.grad).all(), name
        assert (values >= 0).all(), name


def test_confident_wrong_binary_prediction_costs_its_margin():
    logits = torch.tensor([1e4, -1e4])
    got = loss_matrix(["ce", "focal", "hinge"], logits, torch.tensor([0, 1]))
    assert torch.allclose(got, torch.tensor([[1e4, 1e4, 1e4 + 1]] * 2))


def test_loss_matrix_stacks_in_given_order_and_accepts_column_logits():
    logits, y = torch.randn(8), torch.randint(0, 2, (8,))
    m = loss_matrix(["hinge", "ce"], logits, y)
    assert m.shape == (8, 2)
    assert torch.equal(m[:, 0], LOSSES.get("hinge")(logits, y))
    assert torch.equal(loss_matrix(["hinge", "ce"], logits[:, None], y), m)


def test_user_registered_loss_and_task_support():
    name = "test_only_expected_rating_mse"

    @register_loss(name, tasks=("multiclass",))
    def mse(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Squared error of the expected class index."""
        ratings = torch.arange(logits.shape[1], dtype=logits.dtype)
        return (torch.softmax(logits, 1) @ ratings - y.to(logits.dtype)) ** 2

    assert LOSSES.get(name).description == "Squared error of the expected class index."
    logits = torch.tensor([[0.0, 0.0, 100.0]])
    assert loss_matrix(["ce", name], logits, torch.tensor([0]))[0, 1].item() == pytest.approx(4.0)
    with pytest.raises(ConfigError, match="supports multiclass tasks, not binary"):
        loss_matrix([name], torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="already registered"):
        register_loss(name)(mse)


def test_a_registered_loss_that_reduces_over_the_batch_is_named():
    name = "test_only_mean_ce"

    @register_loss(name)
    def mean_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return LOSSES.get("ce").fn(logits, y).mean()

    with pytest.raises(RecLossError, match=rf"loss '{name}' gave shape \[\]; .* \[B\] = \[3\]$"):
        loss_matrix(["ce", name], torch.zeros(3), torch.zeros(3, dtype=torch.long))


def test_unknown_candidate_lists_choices():
    with pytest.raises(ConfigError, match="unknown loss 'mae'.*focal"):
        loss_matrix(["ce", "mae"], torch.zeros(2), torch.zeros(2, dtype=torch.long))
