"""Platt scaling and the calibrated validation objective built on it."""

import pytest
import torch
import torch.nn.functional as F

from recloss.calibration import (
    calibrated_logloss,
    fit_calibration,
    fit_platt,
    fit_temperature,
    platt_targets,
)
from recloss.search.objectives import task_loss

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


@pytest.mark.parametrize("classes", [1, 5])
def test_fit_temperature_finds_the_minimum_and_recovers_a_planted_temperature(classes):
    g = torch.Generator().manual_seed(3)
    z = 3 * torch.randn(20000, classes, generator=g, dtype=torch.float64).squeeze(1)
    if classes == 1:
        y = (torch.rand(20000, generator=g, dtype=torch.float64) < torch.sigmoid(z / 3)).long()
    else:
        y = torch.multinomial(torch.softmax(z / 3, dim=1), 1, generator=g).squeeze(1)
    scale = fit_temperature(z, y)
    assert scale == pytest.approx(1 / 3, rel=0.05)
    s = torch.tensor(scale, dtype=torch.float64, requires_grad=True)
    (
        F.cross_entropy(s * z, y)
        if classes > 1
        else F.binary_cross_entropy_with_logits(s * z, y.double())
    ).backward()
    assert abs(float(s.grad)) < 1e-8


def test_fit_calibration_gives_a_map_of_the_logits_and_refuses_platt_for_classes():
    z, y = torch.tensor([-2.0, -1.0, 0.5, 1.0, 2.0]), torch.tensor([0, 1, 0, 1, 1])
    assert fit_calibration("none", z, y) is None
    platt = fit_calibration("platt", z, y)
    assert (platt.scale, platt.bias) == fit_platt(z, y)
    torch.testing.assert_close(platt.apply(z), z * platt.scale + platt.bias)
    assert fit_calibration("auto", z, y) == platt
    temperature = fit_calibration("temperature", z, y)
    assert temperature.method == "temperature" and temperature.bias == 0.0
    with pytest.raises(ValueError, match="binary"):
        fit_calibration("platt", torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1]))


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
