import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from recloss.metrics import evaluate, probabilities


def test_binary_hand_computed():
    y = np.array([0, 1, 1, 0])
    q = np.array([0.1, 0.8, 0.3, 0.4])
    got = evaluate("binary", y, q)
    # positive/negative pairs ranked correctly: (0.8 > 0.1, 0.4), (0.3 > 0.1): 3 of 4
    assert got["auc"] == pytest.approx(0.75)
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.3) + math.log(0.6)) / 4
    assert got["logloss"] == pytest.approx(expected)
    assert set(got) == {"auc", "logloss"}


def test_multiclass_hand_computed():
    y = np.array([0, 1, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.6, 0.15, 0.25]])
    got = evaluate("multiclass", y, p)
    # one-vs-rest: class 0 -> 1, class 1 -> 1, class 2 (0.25 vs 0.1 and 0.3) -> 0.5
    assert got["auc"] == pytest.approx(2.5 / 3)
    assert got["logloss"] == pytest.approx(-(math.log(0.7) + math.log(0.5) + math.log(0.25)) / 3)
    assert got["accuracy"] == pytest.approx(2 / 3)


def test_binary_matches_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    q = np.clip(rng.random(500) * 0.6 + 0.3 * y, 0.01, 0.99)
    got = evaluate("binary", y, q)
    assert got["auc"] == pytest.approx(roc_auc_score(y, q))
    assert got["logloss"] == pytest.approx(log_loss(y, q))


def test_multiclass_matches_sklearn_on_random_data():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 400)
    p = rng.dirichlet(np.ones(5), 400)
    p[np.arange(400), y] += 0.3
    p /= p.sum(1, keepdims=True)
    got = evaluate("multiclass", y, p)
    assert got["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert got["logloss"] == pytest.approx(log_loss(y, p))
    assert got["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(1)))


def test_auc_is_nan_with_a_single_class():
    assert math.isnan(evaluate("binary", np.ones(5), np.linspace(0, 1, 5))["auc"])
    assert math.isnan(evaluate("multiclass", np.zeros(3), np.full((3, 4), 0.25))["auc"])


def test_macro_auc_averages_over_present_classes_only():
    y = np.array([0, 0, 2, 2])  # class 1 absent
    p = np.array([[0.8, 0.1, 0.1], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4]])
    got = evaluate("multiclass", y, p)
    auc0 = roc_auc_score(y == 0, p[:, 0])
    auc2 = roc_auc_score(y == 2, p[:, 2])
    assert got["auc"] == pytest.approx((auc0 + auc2) / 2)
    assert auc0 != auc2  # the case distinguishes averaging from either class alone
    # logloss still knows all three classes although only two occur
    assert got["logloss"] == pytest.approx(log_loss(y, p, labels=[0, 1, 2]))


def test_logloss_is_finite_for_certain_wrong_predictions():
    got = evaluate("binary", np.array([1, 0]), np.array([0.0, 1.0]))
    assert math.isfinite(got["logloss"])
    assert got["logloss"] == pytest.approx(-math.log(1e-7), rel=1e-6)
    got = evaluate("multiclass", np.array([0]), np.array([[0.0, 1.0, 0.0]]))
    assert math.isfinite(got["logloss"]) and got["logloss"] > 15


def test_empty_input_gives_nan_and_length_mismatch_raises():
    assert all(math.isnan(v) for v in evaluate("binary", np.array([]), np.array([])).values())
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        evaluate("binary", np.zeros(3), np.zeros(2))


def test_probabilities_from_logits():
    assert torch.allclose(probabilities(torch.tensor([0.0, 100.0])), torch.tensor([0.5, 1.0]))
    p = probabilities(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert torch.allclose(p, torch.full((2, 2), 0.5))


def test_group_auc_is_each_groups_auc_weighted_by_its_rows():
    from recloss.metrics import group_auc

    rng = np.random.default_rng(0)
    groups = rng.integers(0, 60, 3000)
    y = rng.integers(0, 2, 3000)
    y[groups == 7] = 1  # a group of one class: no AUC, left out
    scores = np.round(rng.random(3000) + 0.3 * y, 1)  # many ties within groups
    expected, weight = 0.0, 0
    for g in np.unique(groups[groups != 7]):
        rows = groups == g
        expected += roc_auc_score(y[rows], scores[rows]) * rows.sum()
        weight += rows.sum()
    found = group_auc(y, scores, groups)
    assert found.value == pytest.approx(expected / weight, abs=1e-12)
    assert (found.groups, found.of_groups) == (59, 60)
    assert found.row_share == pytest.approx(weight / 3000)


def test_group_auc_without_a_group_of_both_classes_is_nan():
    from recloss.metrics import group_auc

    found = group_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4]), np.arange(4))
    assert math.isnan(found.value) and found.groups == 0 and found.row_share == 0
    none = group_auc(np.array([]), np.array([]), np.array([], np.int64))  # every value unknown
    assert math.isnan(none.value) and (none.groups, none.of_groups, none.row_share) == (0, 0, 0)
