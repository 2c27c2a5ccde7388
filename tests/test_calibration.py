"""Platt scaling and the calibrated validation objective built on it."""

import pytest
import torch
import torch.nn.functional as F

from recloss.calibration import calibrated_logloss, fit_platt, platt_targets
from recloss.search.hypergrad import task_loss

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


def platt_loss(z, y, scale, bias):
    """The fit's objective: logloss against Platt's smoothed targets."""
    return F.binary_cross_entropy_with_logits(scale * z + bias, platt_targets(y))


def test_fit_platt_finds_the_minimum_and_recovers_a_planted_map():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, generator=g, dtype=torch.float64)
    y = (torch.rand(20000, generator=g, dtype=torch.float64) < torch.sigmoid(2 * z - 1)).double()
    scale, bias = fit_platt(z, y)
    assert scale == pytest.approx(2.0, abs=0.1) and bias == pytest.approx(-1.0, abs=0.1)
    params = torch.tensor([scale, bias], dtype=torch.float64, requires_grad=True)
    platt_loss(z, y, params[0], params[1]).backward()
    assert params.grad.abs().max() < 1e-8  # a minimum, not just near one


def test_fit_platt_stays_finite_on_separable_and_one_class_data():
    separable = fit_platt(torch.tensor([-2.0, -1.0, 1.0, 2.0]), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    constant = fit_platt(torch.zeros(10), torch.tensor([0.0] * 9 + [1.0]))
    negatives = fit_platt(torch.randn(10), torch.zeros(10))
    for scale, bias in (separable, constant, negatives):
        assert abs(scale) < 10 and abs(bias) < 10


def test_calibrated_logloss_gradient_is_that_of_the_refitted_minimum():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(300, generator=g, dtype=torch.float64, requires_grad=True)
    y = (torch.rand(300, generator=g, dtype=torch.float64) < torch.sigmoid(z.detach())).long()
    calibrated_logloss(z, y).backward()
    direction, e = torch.randn(300, generator=g, dtype=torch.float64), 1e-4
    with torch.no_grad():
        plus, minus = (calibrated_logloss(z + s * e * direction, y) for s in (1, -1))
    assert float(z.grad @ direction) == pytest.approx(float((plus - minus) / (2 * e)), rel=1e-5)


def test_calibrated_objective_is_blind_to_an_affine_map_of_the_logits():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(500, generator=g)
    y = (torch.rand(500, generator=g) < torch.sigmoid(z)).long()
    calibrated = float(task_loss(z, y, "calibrated"))
    assert float(task_loss(3 * z - 2, y, "calibrated")) == pytest.approx(calibrated, rel=1e-4)
    assert float(task_loss(3 * z - 2, y)) > calibrated  # the plain logloss sees the map
