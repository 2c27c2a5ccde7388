"""AutoLoss remedies: step-size normalisation and its hypergradient, schedule, warm-up, weights."""

import dataclasses

import pytest
import torch
from test_autoloss import (
    TinyNet,
    batch,
    cosine,
    make,
    same,
    train_step,
    unroll_after_training_pass,
)

from recloss.config import LossConfig
from recloss.data.schema import Schema
from recloss.errors import ConfigError
from recloss.losses import cross_entropy, loss_matrix
from recloss.search import build_strategy, stepsize
from recloss.search.autoloss import AutoLoss, effective_weights
from recloss.search.base import OptionError
from recloss.search.controller import load_controller
from recloss.search.hypergrad import (
    TrainingStep,
    Unroll,
    cut,
    finite_diff_hypergradient,
    jvp_hypergradient,
    unrolled_hypergradient,
    window_hypergradients,
)
from recloss.search.objectives import pairwise_loss, task_loss
from recloss.search.remedies import PRESETS, controller_steps_now

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


def normalised_unroll(task):
    classes = 2 if task == "binary" else 5
    torch.manual_seed(0)
    model = TinyNet(1 if task == "binary" else 5)
    autoloss = make(task, variant="normalised", prior="uniform")  # far from CE: c(p) matters
    u = unroll_after_training_pass(model, autoloss, classes, True)
    return dataclasses.replace(u, reference="ce")


def exact_checked(u):
    """The exact hypergradient of `u`, after checking the jvp and finite-difference forms on it."""
    exact, _ = unrolled_hypergradient(u)
    jvp, _ = jvp_hypergradient(u)
    fd, _ = finite_diff_hypergradient(u)
    assert exact.abs().max() > 1e-6
    assert float((jvp - exact).norm() / exact.norm()) < 1e-4
    assert cosine(fd, exact) > 0.9999
    return exact


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_normalised_closed_forms_match_exact_unroll_only_with_the_scale_term(task):
    u = normalised_unroll(task)
    exact = exact_checked(u)
    # without the term of c(p): c * h, the plain hypergradient at the normalised step
    plain, _ = jvp_hypergradient(dataclasses.replace(u, reference=None))
    z, y = u.logits, u.train[1]
    grads = stepsize.logit_gradients(list(u.candidates), z, y)
    c = stepsize.scale(u.weights, grads, stepsize.reference_total("ce", z, y, grads))
    assert cosine(c * plain, exact) < 0.99


@pytest.mark.parametrize(("task", "shape"), [("binary", (64,)), ("multiclass", (64, 5))])
def test_logit_gradients_are_each_candidates_own_and_keep_the_callers_graph(task, shape):
    torch.manual_seed(0)
    candidates = ["focal", "kl", "hinge", "ce"]
    logits = (3 * torch.randn(shape)).requires_grad_()
    y = torch.randint(0, 2 if task == "binary" else 5, shape[:1])
    want = torch.stack(
        [
            torch.autograd.grad(loss_matrix(candidates, logits, y)[:, i].sum(), logits)[0]
            for i in range(len(candidates))
        ],
        dim=1,
    ).reshape(len(y), len(candidates), -1)
    assert torch.equal(stepsize.logit_gradients(candidates, logits, y), want)
    losses = loss_matrix(candidates, logits, y)
    assert torch.equal(stepsize.logit_gradients(candidates, logits, y, losses), want)
    (again,) = torch.autograd.grad(losses[:, 3].sum(), logits)  # the caller's graph is intact
    assert torch.equal(again.reshape(len(y), -1), want[:, 3])


def test_normalised_hypergradient_cannot_scale_all_weights_together():
    u = normalised_unroll("binary")
    grad, _ = jvp_hypergradient(u)
    assert abs(float((grad * u.weights).sum())) < 1e-6 * float(grad.norm() * u.weights.norm())


@pytest.mark.parametrize(("task", "reference"), [("binary", "ce"), ("multiclass", "ce"),
                                                 ("binary", "mean")])  # fmt: skip
def test_normalised_loss_has_the_reference_total_logit_gradient(task, reference):
    classes = 2 if task == "binary" else 5
    torch.manual_seed(1)
    logits = torch.randn(64) * 3 if task == "binary" else torch.randn(64, 5) * 3
    y = torch.randint(0, classes, (64,))
    autoloss = make(task, variant="normalised", normalise=reference, warmup_steps=0)
    with torch.no_grad():  # a controller far from uniform
        autoloss.controller.mlp[-1].bias.copy_(torch.tensor([0.0, 0.0, 3.0, 0.0]))
    z = logits.clone().requires_grad_()
    autoloss.loss(z, y).backward()
    got = z.grad.reshape(64, -1).norm(dim=1).sum() * 64
    if reference == "ce":
        zc = logits.clone().requires_grad_()
        cross_entropy(zc, y).sum().backward()
        want = zc.grad.reshape(64, -1).norm(dim=1).sum()
    else:
        want = stepsize.logit_gradients(autoloss.candidates, logits, y).mean(1).norm(dim=1).sum()
    assert float(got) == pytest.approx(float(want), rel=1e-4)


def test_schedule_guarantees_the_minimum_controller_steps_per_epoch():
    def per_epoch(length, every=7, minimum=20):
        return sum(controller_steps_now(i, every, length, minimum) for i in range(length))

    assert per_epoch(700) == 100  # K alone gives enough
    assert per_epoch(40) >= 20  # every 2nd step instead of every 7th
    assert per_epoch(4) >= 20  # 5 controller steps per model step
    assert per_epoch(40, minimum=0) == 6  # off: every K
    assert controller_steps_now(0, 7, 0, 20) == 1  # first epoch: length not known yet


def run_epochs(autoloss, epochs, steps, classes=2):
    torch.manual_seed(0)
    model = TinyNet(1 if classes == 2 else classes)
    vals = iter([batch(64, classes, 100 + i) for i in range(10_000)])
    for _ in range(epochs):
        for s in range(steps):
            train_step(model, autoloss, batch(32, classes, s), lambda: next(vals))
        autoloss.on_epoch_end()
    return model


def test_small_data_gets_the_minimum_controller_steps_after_its_first_epoch():
    autoloss = make(variant="normalised")
    run_epochs(autoloss, 1, 4)
    first = autoloss.controller_steps
    run_epochs(autoloss, 1, 4)
    assert first == 1
    assert autoloss.controller_steps - first >= 8  # the preset minimum per epoch
    assert autoloss.epoch_length == 4


def test_warm_up_keeps_the_prior_mixture_while_the_controller_learns():
    autoloss = make(variant="normalised", warmup_steps=3, controller_every=1)
    start = [p.detach().clone() for p in autoloss.controller.parameters()]
    prior = torch.tensor([0.01, 0.01, 0.01, 0.97])  # CE-centred: the variant's default
    torch.manual_seed(0)
    model = TinyNet()
    vals = iter([batch(64, 2, 100 + i) for i in range(100)])
    for s in range(3):
        train_step(model, autoloss, batch(32, 2, s), lambda: next(vals))
        assert torch.allclose(autoloss._last.weights, prior.expand(32, 4))
    moved = any(
        not torch.equal(a, b) for a, b in zip(start, autoloss.controller.parameters(), strict=True)
    )
    train_step(model, autoloss, batch(32, 2, 9), lambda: next(vals))
    assert moved
    assert not torch.allclose(autoloss._last.weights, prior.expand(32, 4))


def test_example_weight_output_scales_the_mixture_and_learns(tmp_path):
    autoloss = make(variant="normalised", example_weight=True, warmup_steps=0,
                    controller_every=1)  # fmt: skip
    x, y = batch(32, 2, 0)
    features = autoloss.controller.features(torch.zeros(32), y)
    log_alpha, log_weight = autoloss.controller.outputs(features)
    assert torch.equal(log_weight, torch.zeros(32))  # weights start at 1: the paper's mixture
    head = autoloss.controller.mlp[-1].weight
    before = head[-1].detach().clone()
    run_epochs(autoloss, 1, 5)
    assert not torch.equal(head[-1], before)
    totals, labels = autoloss._last.weights.sum(1), autoloss._last.y
    assert totals.std() > 0  # the examples' total weights now differ
    for label in (0, 1):  # ... but not the labels': mean 1 within each
        assert float(totals[labels == label].mean()) == pytest.approx(1.0, rel=1e-5)
    saved = load_controller(autoloss.save_controller(tmp_path / "c.safetensors"))
    assert saved.spec.example_weight
    reused = make(controller=str(tmp_path / "c.safetensors"), freeze_controller=True)
    assert reused.remedies.example_weight


def test_example_weight_is_normalised_within_each_label_and_never_overflows():
    mixture = torch.full((5, 4), 0.25)
    log_weight = torch.tensor([0.0, 1000.0, -1000.0, 5.0, 1000.0])  # exp alone would overflow
    weights = effective_weights(mixture, log_weight, torch.tensor([0, 0, 1, 1, 1]), 2)
    totals = weights.sum(1)
    assert torch.isfinite(totals).all()
    assert torch.allclose(totals, torch.tensor([0.0, 2.0, 0.0, 0.0, 3.0]))  # mean 1 per label


@pytest.mark.parametrize("objective", ["pairwise", "calibrated"])
def test_objectives_closed_forms_match_exact_unroll(objective):
    torch.manual_seed(0)
    model = TinyNet(1)
    autoloss = make(variant="normalised", prior="uniform", objective=objective)
    u = unroll_after_training_pass(model, autoloss, 2, True)
    u = dataclasses.replace(u, reference="ce", objective=objective)
    exact, _ = unrolled_hypergradient(u)
    jvp, _ = jvp_hypergradient(u)
    assert exact.abs().max() > 1e-6
    assert float((jvp - exact).norm() / exact.norm()) < 1e-4
    logloss, _ = jvp_hypergradient(dataclasses.replace(u, objective="logloss"))
    assert cosine(logloss, exact) < 0.99  # a different objective, a different direction


def test_pairwise_loss_is_blind_to_a_shift_and_ranks_like_auc():
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    ranked, reversed_ = torch.tensor([3.0, -1.0, 2.0, 0.0]), torch.tensor([-1.0, 3.0, 0.0, 2.0])
    assert float(pairwise_loss(ranked + 7.0, y)) == pytest.approx(float(pairwise_loss(ranked, y)))
    assert pairwise_loss(ranked, y) < pairwise_loss(reversed_, y)
    assert float(pairwise_loss(ranked, torch.ones(4))) == 0.0  # no pairs: no signal
    with pytest.raises(OptionError, match="objective"):
        make("multiclass", objective="pairwise")


def test_prior_sets_the_starting_mixture():
    log_alpha = make(variant="normalised").controller.alpha(
        torch.zeros(4), torch.ones(4, dtype=torch.long)
    )
    assert torch.allclose(log_alpha[0], torch.tensor([0.01, 0.01, 0.01, 0.97]))
    uniform = make(variant="normalised", prior="uniform").controller.alpha(
        torch.zeros(4), torch.zeros(4, dtype=torch.long)
    )
    assert torch.allclose(uniform, torch.full((4, 4), 0.25))
    tight = make(variant="normalised", prior_weight=0.97).controller.alpha(
        torch.zeros(4), torch.ones(4, dtype=torch.long)
    )
    assert torch.allclose(tight[0], torch.tensor([0.01, 0.01, 0.01, 0.97]))
    with pytest.raises(OptionError, match="prior"):
        make(candidates=["focal", "hinge"], prior="ce")
    searched = make(variant="normalised", prior=[6, 3, 1, 0]).controller.alpha(
        torch.zeros(4), torch.ones(4, dtype=torch.long)
    )  # a mixture: normalised, every share at least 0.001
    expected = torch.tensor([0.6, 0.3, 0.1, 1e-3])
    assert torch.allclose(searched[0], expected / expected.sum(), atol=1e-6)
    for bad in ([1, 2], [1, -1, 1, 1], [0, 0, 0, 0], 3):
        with pytest.raises(OptionError, match="prior: give 4 non-negative weights"):
            make(prior=bad)


def test_default_variant_is_normalised_for_binary_and_paper_for_multiclass():
    assert AutoLoss("binary").remedies == PRESETS["normalised"]
    assert AutoLoss("multiclass", num_classes=5).remedies == PRESETS["paper"]


def test_paper_variant_keeps_the_plain_mixture():
    autoloss = make()
    assert autoloss.remedies.normalise is None and autoloss.remedies.warmup_steps == 0
    logits, y = torch.randn(16), torch.randint(0, 2, (16,))
    loss = autoloss.loss(logits, y)
    mixture = (loss_matrix(autoloss.candidates, logits, y) * autoloss._last.weights).sum(1)
    assert torch.equal(loss, mixture.mean())


@pytest.mark.parametrize(("params", "key"), [
    ({"variant": "greedy"}, "variant"),
    ({"normalise": "focal"}, "normalise"),
    ({"min_controller_steps": -1}, "min_controller_steps"),
    ({"objective": "auc"}, "objective"),
    ({"prior_weight": 1.0}, "prior_weight"),
    ({"horizon": "epoch"}, "horizon"),
    ({"horizon": "window", "hypergrad": "unrolled"}, "horizon"),
])  # fmt: skip
def test_bad_remedy_options_name_the_key(params, key):
    schema = Schema("binary", 2, ("a",), (10,))
    with pytest.raises(ConfigError, match=f"loss.params.{key}"):
        build_strategy(LossConfig(name="autoloss", params=params), schema)


def test_window_hypergradients_match_the_exact_unroll_of_the_window_to_first_order():
    """Three SGD steps with their own loss weights: each step's hypergradient, all along the last
    step's validation gradient, against autograd through all three steps (error O(xi))."""
    torch.manual_seed(0)
    model, xi, candidates = TinyNet(), 0.01, ["focal", "kl", "hinge", "ce"]
    steps = [batch(32, 2, seed) for seed in (1, 2, 3)]
    val = batch(64, 2, 9)
    weights = tuple(torch.softmax(torch.randn(32, 4), 1) for _ in steps)
    start = {k: p.detach().clone() for k, p in model.named_parameters()}

    def train_loss(params, x, y, w):
        logits = torch.func.functional_call(model, params, (x,))
        return (loss_matrix(candidates, logits, y) * w).sum(1).mean()

    def val_after_the_window(ws):
        params = start
        for (x, y), w in zip(steps, ws, strict=True):
            grads = torch.func.grad(train_loss)(params, x, y, w)
            params = {k: params[k] - xi * grads[k] for k in params}
        return task_loss(torch.func.functional_call(model, params, (val[0],)), val[1])

    exact = torch.func.grad(val_after_the_window)(weights)
    earlier = []
    for (x, y), w in zip(steps, weights, strict=True):  # the same three steps, one by one
        logits = model(x)
        model.zero_grad()
        (loss_matrix(candidates, logits, y) * w).sum(1).mean().backward()
        if len(earlier) < 2:
            earlier.append(TrainingStep((x, y), logits.detach(), w))
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-xi)
    u = Unroll(model, model, candidates, steps[-1], val, logits.detach(), weights[-1], xi)
    for method in ("finite_diff", "jvp"):
        grads, _ = window_hypergradients(u, earlier, method)
        for got, want in zip(grads, exact, strict=True):
            assert float((got - want).norm() / want.norm()) < 0.02
    assert torch.equal(grads[-1], jvp_hypergradient(u)[0])  # the last step's, as without one


def test_window_holds_the_steps_since_the_last_controller_step():
    torch.manual_seed(0)
    model, autoloss = TinyNet(), make(controller_every=3, horizon="window")
    val = batch(64, 2, 9)
    sizes = []
    for seed in range(7):
        train_step(model, autoloss, batch(32, 2, seed), val)
        sizes.append(len(autoloss._window.steps))
    assert sizes == [0, 1, 2, 0, 1, 2, 0]  # controller steps at 0, 3 and 6
    assert autoloss.controller_steps == 3
    autoloss.frozen = True  # a frozen controller keeps no window
    for seed in range(4):
        train_step(model, autoloss, batch(32, 2, seed), val)
    assert not autoloss._window.steps


def diagonal_preconditioner(model, seed=3):
    """A fixed positive diagonal `P` per parameter, as `Unroll.precondition` takes it."""
    g = torch.Generator().manual_seed(seed)
    diagonals = {id(p): torch.rand(p.shape, generator=g) + 0.5 for p in model.parameters()}

    def precondition(params, directions):
        return [
            d if d is None else d * diagonals[id(p)]
            for p, d in zip(params, directions, strict=True)
        ]

    return precondition


@pytest.mark.parametrize(("variant", "reference"), [("paper", None), ("normalised", "ce")])
def test_preconditioned_closed_forms_match_the_exact_preconditioned_unroll(variant, reference):
    torch.manual_seed(0)
    model = TinyNet(1)
    autoloss = make(variant=variant, prior="uniform")
    u = unroll_after_training_pass(model, autoloss, 2, True)
    u = dataclasses.replace(u, reference=reference, precondition=diagonal_preconditioner(model))
    exact = exact_checked(u)
    sgd, _ = unrolled_hypergradient(dataclasses.replace(u, precondition=None))
    assert cosine(sgd, exact) < 0.999  # the preconditioner changes the direction


def test_hypergrad_rows_takes_the_first_rows_of_the_training_and_validation_batches():
    """A capped controller step is the uncapped one on the batches' first `rows` examples
    (the model's gradient, and so `W'`, still that of the whole training batch)."""
    torch.manual_seed(0)
    model = TinyNet(1)
    (x, y), (vx, vy) = batch(32, 2, 1), batch(64, 2, 2)
    capped, whole, start = (make(hypergrad_rows=rows) for rows in (16, None, None))
    assert capped.val_batch_rows(4096) == 16 and whole.val_batch_rows(4096) == 4096
    assert make().val_batch_rows(4096) == 1024 and make().val_batch_rows(512) == 512  # default
    logits = model(x)
    model.zero_grad()
    capped.loss(logits, y).backward()
    whole.loss(logits[:16].detach(), y[:16])  # the same Gumbel noise on the first 16
    assert capped.update(model, (x, y), (vx, vy), 0.05)
    assert whole.update(model, (x[:16], y[:16]), (vx[:16], vy[:16]), 0.05)
    capped_params, whole_params = capped.controller.parameters(), whole.controller.parameters()
    assert all(torch.allclose(a, b) for a, b in zip(capped_params, whole_params, strict=True))
    assert not same(capped.controller.parameters(), start.controller.parameters())
    assert cut((x, y), 32) == ((x, y), None) and cut((x, y), 16)[1] == 16  # as many: not cut
    assert cut(({"x": x}, y), 16)[1] is None  # inputs it cannot cut: all rows
