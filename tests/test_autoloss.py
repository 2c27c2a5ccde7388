import copy
import dataclasses
import itertools
import math

import pytest
import torch
from conftest import InterruptAfter
from safetensors import safe_open
from torch import nn

from recloss.config import LossConfig
from recloss.data.schema import Batch, Schema
from recloss.errors import CompatibilityError, ConfigError, RecLossError
from recloss.losses import loss_matrix
from recloss.search import STRATEGIES, build_strategy
from recloss.search.autoloss import AutoLoss
from recloss.search.base import OptionError, StepContext
from recloss.search.controller import Controller, ControllerSpec, load_controller, select
from recloss.search.hypergrad import (
    Unroll,
    finite_diff_hypergradient,
    jvp_hypergradient,
    unrolled_hypergradient,
)
from recloss.training.flip_channel import noisy_logit

CARD, FIELDS = 40, 3


class TinyNet(nn.Module):
    """Embedding + MLP over index features; optional dropout, batch norm, sparse embedding."""

    def __init__(self, outputs=1, sparse=False, dropout=0.0, batch_norm=False):
        super().__init__()
        self.embedding = nn.Embedding(CARD, 8, sparse=sparse)
        norm = nn.BatchNorm1d(16) if batch_norm else nn.Identity()
        self.mlp = nn.Sequential(
            nn.Linear(FIELDS * 8, 16), norm, nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, outputs)
        )

    def forward(self, x):
        if isinstance(x, Batch):
            x = x.x_cat
        return self.mlp(self.embedding(x).flatten(1)).squeeze(-1)


def batch(n, classes, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, CARD, (n, FIELDS), generator=g), torch.randint(
        0, classes, (n,), generator=g
    )


def make(task="binary", **options):
    """An AutoLoss of the paper's form unless `variant` says otherwise."""
    num_classes = 2 if task == "binary" else 5
    return AutoLoss(task, num_classes=num_classes, **{"variant": "paper", **options})


def train_step(model, autoloss, xy, val, lr=0.05, forward=None):
    """One step of a user's loop: loss, backward, controller update, SGD step."""
    x, y = xy
    loss = autoloss.loss((forward or model)(x), y)
    model.zero_grad()
    loss.backward()
    stepped = autoloss.update(model, xy, val, lr, forward=forward)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(p.grad, alpha=-lr)
    return stepped


def same(tensors, others):
    return all(torch.equal(a, b) for a, b in zip(tensors, others, strict=True))


def cosine(a, b):
    return float((a * b).sum() / (a.norm() * b.norm()))


def unroll_after_training_pass(model, autoloss, classes, deterministic):
    """Training loss, backward, and the controller step's inputs, as `update` would see them."""
    (x, y), val = batch(32, classes, 1), batch(64, classes, 2)
    model.train(not deterministic)
    logits = model(x)
    model.train()
    model.zero_grad()
    autoloss.loss(logits, y).backward()
    weights = autoloss._last.weights
    return Unroll(model, model, autoloss.candidates, (x, y), val, logits.detach(), weights, 0.05)


# torch's forward-mode AD scripts its decompositions on first use and warns about it
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


def test_hypergradients_through_a_label_noise_channel_agree():
    """With the training loss on logits through a flip channel (`Unroll.train_forward`), the
    closed forms match the exact unroll through the channel; validation stays on the model's."""
    torch.manual_seed(0)
    model, autoloss = TinyNet(1), make("binary")
    (x, y), val = batch(32, 2, 1), batch(64, 2, 2)
    rates = torch.linspace(0.0, 0.4, 32)

    def through(inputs):
        return noisy_logit(model(inputs), rates)

    logits = through(x)
    model.zero_grad()
    autoloss.loss(logits, y).backward()
    weights = autoloss._last.weights
    u = Unroll(model, model, autoloss.candidates, (x, y), val, logits.detach(), weights, 0.05,
               train_forward=through)  # fmt: skip
    exact, _ = unrolled_hypergradient(u)
    assert cosine(finite_diff_hypergradient(u)[0], exact) > 0.99
    assert cosine(jvp_hypergradient(u)[0], exact) > 0.99
    plain, _ = unrolled_hypergradient(dataclasses.replace(u, train_forward=None))
    assert cosine(plain, exact) < 0.999  # the channel is in the hypergradient


@pytest.mark.parametrize(
    ("task", "sparse", "dropout"),
    [
        ("binary", False, 0.0),
        ("multiclass", False, 0.0),
        ("binary", True, 0.3),
        ("multiclass", True, 0.3),
    ],
)
def test_second_order_hypergradients_agree(task, sparse, dropout):
    classes = 2 if task == "binary" else 5
    torch.manual_seed(0)
    model = TinyNet(1 if task == "binary" else 5, sparse=sparse, dropout=dropout)
    # the hypergradient's passes run in evaluation mode; the exact unroll recomputes the
    # training gradient there, so it matches when the training pass drew no dropout either
    u = unroll_after_training_pass(model, make(task), classes, deterministic=True)
    before = [p.detach().clone() for p in model.parameters()]
    exact, val_exact = unrolled_hypergradient(u)
    fd, val_fd = finite_diff_hypergradient(u)
    jvp, _ = jvp_hypergradient(u)
    assert exact.shape == (32, 4)
    assert exact.abs().max() > 1e-5
    assert cosine(fd, exact) > 0.99
    assert cosine(jvp, exact) > 0.99
    assert val_fd == pytest.approx(val_exact, rel=1e-5)
    assert same(before, model.parameters())
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_hypergradient_after_a_dropout_pass_is_deterministic(task):
    classes = 2 if task == "binary" else 5
    torch.manual_seed(0)
    model = TinyNet(1 if task == "binary" else 5, sparse=True, dropout=0.5)
    u = unroll_after_training_pass(model, make(task), classes, deterministic=False)
    fd, _ = finite_diff_hypergradient(u)
    torch.manual_seed(123)  # a different random state must not change anything
    again, _ = finite_diff_hypergradient(u)
    jvp, _ = jvp_hypergradient(u)
    assert torch.equal(fd, again)
    assert fd.abs().max() > 1e-5
    assert cosine(fd, jvp) > 0.99


def test_update_restores_weights_and_batch_norm_statistics():
    torch.manual_seed(0)
    model = TinyNet(batch_norm=True)
    autoloss = make()
    x, y = batch(32, 2, 1)
    autoloss.loss(model(x), y).backward()
    params = [p.detach().clone() for p in model.parameters()]
    stats = [b.clone() for b in model.buffers()]
    assert autoloss.update(model, (x, y), batch(32, 2, 2), lr=0.1)
    assert same(params, model.parameters())
    assert same(stats, model.buffers())


def test_controller_steps_every_k_updates_and_reads_validation_only_then():
    torch.manual_seed(0)
    model, autoloss = TinyNet(), make(controller_every=3)
    calls = []

    def next_val():
        calls.append(1)
        return batch(16, 2, len(calls))

    stepped = [train_step(model, autoloss, batch(16, 2, 100 + i), next_val) for i in range(7)]
    assert stepped == [True, False, False, True, False, False, True]
    assert len(calls) == 3
    assert autoloss.controller_steps == 3


def test_training_loss_is_weighted_sum_and_does_not_train_controller():
    torch.manual_seed(0)
    model, autoloss = TinyNet(), make()
    x, y = batch(16, 2, 1)
    logits = model(x)
    loss = autoloss.loss(logits, y)
    expected = (loss_matrix(autoloss.candidates, logits, y) * autoloss._last.weights).sum(1).mean()
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert all(p.grad is None for p in autoloss.controller.parameters())
    assert torch.allclose(autoloss._last.weights.sum(1), torch.ones(16))


def test_controller_starts_uniform_and_sees_detached_label_and_prediction():
    spec = ControllerSpec("multiclass", 5, ("ce", "hinge", "kl"))
    controller = Controller(spec)
    logits = torch.randn(4, 5, requires_grad=True)
    y = torch.tensor([0, 4, 2, 2])
    features = controller.features(logits, y)
    assert features.shape == (4, 10)
    assert torch.equal(features[:, :5], nn.functional.one_hot(y, 5).float())
    assert torch.allclose(features[:, 5:], torch.softmax(logits, 1))
    assert not features.requires_grad
    assert torch.allclose(controller.alpha(logits, y), torch.full((4, 3), 1 / 3))
    binary = Controller(ControllerSpec("binary", 2, ("ce", "focal"), use_logit=True))
    z = torch.tensor([0.0, 1e4])
    assert torch.allclose(
        binary.features(z, torch.tensor([1, 0])), torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 20.0]])
    )


def test_temperature_schedule():
    autoloss = make(tau0=1.0, tau_min=0.05, tau_decay=1e-3)
    assert autoloss.tau(0) == 1.0
    assert autoloss.tau(1000) == pytest.approx(math.exp(-1))
    assert autoloss.tau(10**6) == 0.05
    taus = [autoloss.tau(s) for s in range(0, 5000, 100)]
    assert taus == sorted(taus, reverse=True)


def test_hard_selection_is_one_hot_forward_with_soft_gradients():
    torch.manual_seed(0)
    log_alpha = torch.log_softmax(torch.randn(8, 4), 1).requires_grad_()
    noise = -torch.log(-torch.log(torch.rand(8, 4)))
    hard = select(log_alpha, noise, tau=0.5, hard=True)
    assert torch.allclose(hard, nn.functional.one_hot(hard.argmax(1), 4).float())
    (hard * torch.arange(4.0)).sum().backward()
    soft_grad = log_alpha.grad.clone()
    log_alpha.grad = None
    (select(log_alpha, noise, tau=0.5, hard=False) * torch.arange(4.0)).sum().backward()
    assert torch.allclose(soft_grad, log_alpha.grad)
    assert soft_grad.abs().sum() > 0


def test_hard_mode_trains_with_one_hot_weights():
    torch.manual_seed(0)
    model, autoloss = TinyNet(), make(hard=True)
    x, y = batch(16, 2, 1)
    autoloss.loss(model(x), y)
    weights = autoloss._last.weights
    assert torch.allclose(weights.max(1).values, torch.ones(16))
    assert torch.allclose(weights.sum(1), torch.ones(16))


def test_save_and_load_controller_round_trip(tmp_path):
    torch.manual_seed(0)
    model, autoloss = TinyNet(5), make("multiclass", hidden=[16, 8], activation="tanh")
    for i in range(3):
        train_step(model, autoloss, batch(16, 5, i), batch(16, 5, 50 + i))
    path = autoloss.save_controller(tmp_path / "c.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["task"] == "multiclass" and meta["num_classes"] == "5"
    assert meta["candidates"] == '["focal", "kl", "hinge", "ce"]'
    assert meta["hidden"] == "[16, 8]" and meta["activation"] == "tanh"
    assert meta["inputs"] == "label,prediction"
    loaded = load_controller(path)
    logits, y = torch.randn(6, 5), torch.randint(0, 5, (6,))
    assert torch.equal(loaded.alpha(logits, y), autoloss.controller.alpha(logits, y))
    assert not torch.allclose(loaded.alpha(logits, y), torch.full((6, 4), 0.25))
    transferred = make("multiclass", controller=path)
    assert transferred.controller.spec.hidden == (16, 8)


def test_frozen_controller_receives_no_updates(tmp_path):
    path = make().save_controller(tmp_path / "c.safetensors")
    torch.manual_seed(0)
    model, frozen = TinyNet(), make(controller=path, freeze_controller=True, controller_every=1)
    before = [p.clone() for p in frozen.controller.parameters()]

    def no_val():
        raise AssertionError("a frozen controller reads no validation batches")

    assert not any(train_step(model, frozen, batch(16, 2, i), no_val) for i in range(3))
    assert frozen.optimizer is None
    assert same(before, frozen.controller.parameters())
    assert all(p.grad is None for p in frozen.controller.parameters())
    with pytest.raises(ConfigError, match="freeze_controller"):
        make(freeze_controller=True)


def test_incompatible_controller_files_are_refused(tmp_path):
    path = make().save_controller(tmp_path / "binary.safetensors")
    with pytest.raises(CompatibilityError, match="binary task, this run is 5-class"):
        make("multiclass", controller=path)
    with pytest.raises(
        CompatibilityError, match=r"candidates \[focal, kl, hinge, ce\].*\[ce, kl\]"
    ):
        make(candidates=["ce", "kl"], controller=path)
    with pytest.raises(ConfigError, match="hidden"):
        make(controller=path, hidden=[8])
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(CompatibilityError, match="not a safetensors controller"):
        make(controller=junk)
    with pytest.raises(ConfigError, match="not found"):
        make(controller=tmp_path / "missing.safetensors")


def test_state_dict_round_trip_continues_exactly():
    def run(autoloss, model, steps, offset):
        for i in range(steps):
            torch.manual_seed(1000 + offset + i)  # the Gumbel noise of each step
            train_step(model, autoloss, batch(16, 2, offset + i), batch(16, 2, 500 + offset + i))

    torch.manual_seed(0)
    model, autoloss = TinyNet(), make(controller_every=2)
    run(autoloss, model, 5, 0)
    model_state = {k: v.clone() for k, v in model.state_dict().items()}
    state = copy.deepcopy(autoloss.state_dict())  # controller, its optimiser and the counters
    run(autoloss, model, 5, 5)

    resumed_model, resumed = TinyNet(), make(controller_every=2)
    resumed_model.load_state_dict(model_state)
    resumed.load_state_dict(state)
    assert resumed.calls == 5 and resumed.updates == 5 and resumed.controller_steps == 3
    assert resumed.optimizer.state_dict()["state"][0]["step"] == 3
    run(resumed, resumed_model, 5, 5)
    assert same(autoloss.controller.parameters(), resumed.controller.parameters())
    assert resumed.controller_steps == autoloss.controller_steps == 5


def test_epoch_diagnostics_and_weights():
    torch.manual_seed(0)
    model, autoloss = TinyNet(), make(trace_every=2)
    for i in range(5):
        train_step(model, autoloss, batch(16, 2, i), batch(16, 2, 50 + i))
    d = autoloss.on_epoch_end()
    assert sum(d["selection"].values()) == pytest.approx(1.0)
    assert set(d["selection_by_label"]) == {"0", "1"}
    assert d["trace"]["step"] == [0, 2, 4]
    assert len(d["trace"]["alpha"]["ce"]) == 3
    assert d["controller_steps"] == 1 and d["val_objective"] > 0
    assert d["tau"] == pytest.approx(autoloss.tau(4))
    assert autoloss.weights() == d["selection"]
    empty = autoloss.on_epoch_end()
    assert empty["selection"] is None and empty["trace"]["step"] == []
    assert empty["val_objective"] is None


def test_first_order_ablation_updates_the_controller():
    torch.manual_seed(0)
    model, autoloss = TinyNet(), make(hypergrad="first_order", controller_lr=0.05)
    before = [p.clone() for p in autoloss.controller.parameters()]
    assert train_step(model, autoloss, batch(16, 2, 1), batch(16, 2, 2))
    assert not same(before, autoloss.controller.parameters())


def test_update_misuse_raises():
    model, autoloss = TinyNet(), make()
    x, y = batch(8, 2, 1)
    with pytest.raises(RecLossError, match="call loss"):
        autoloss.update(model, (x, y), batch(8, 2, 2), 0.1)
    autoloss.loss(model(x), y)
    with pytest.raises(RecLossError, match="back-propagate"):
        autoloss.update(model, (x, y), batch(8, 2, 2), 0.1)


def test_invalid_options_name_the_parameter():
    with pytest.raises(ConfigError, match="controller_every"):
        make(controller_every=0)
    with pytest.raises(ConfigError, match="hypergrad: unknown 'exact'"):
        make(hypergrad="exact")
    with pytest.raises(ConfigError, match="activation"):
        make(activation="swish")
    with pytest.raises(ConfigError, match="num_classes"):
        AutoLoss("multiclass")


def test_autoloss_is_the_strategy_with_trainer_seams(tmp_path):
    schema = Schema("binary", 2, ("a", "b", "c"), (CARD,) * 3)
    strategy = build_strategy(LossConfig(name="autoloss", params={"controller_every": 1}), schema)
    assert isinstance(strategy, AutoLoss)
    assert STRATEGIES.get("autoloss") is AutoLoss
    torch.manual_seed(0)
    model = TinyNet()
    (x, y), (xv, yv) = batch(16, 2, 1), batch(16, 2, 2)
    train, val = Batch(x, None, y), Batch(xv, None, yv)
    strategy.loss(model(train), y, step=0).backward()
    before = [p.clone() for p in strategy.parameters()]
    strategy.after_backward(StepContext(model, train, 0, 0.1, lambda: val))
    assert not same(before, strategy.parameters())
    assert strategy.state_dict()["_extra_state"]["controller_steps"] == 1
    assert strategy.artifact.file == "controller.safetensors"
    strategy.save_artifact(tmp_path / strategy.artifact.file)
    assert load_controller(tmp_path / "controller.safetensors").spec.task == "binary"
    with pytest.raises(ConfigError, match=r"loss\.params\.tau_min"):
        build_strategy(LossConfig(name="autoloss", params={"tau_min": 0.0}), schema)
    with pytest.raises(OptionError, match=r"^tau_min: "):
        AutoLoss("binary", tau_min=0.0)


def trainer_config(tmp_path, **loss_params):
    from recloss.config import config_from_dict

    return config_from_dict(
        {
            "data": {
                "dataset": "synthetic",
                "cache_dir": str(tmp_path / "cache"),
                "synthetic": {"rows": 3000, "fields": 5, "cardinality": 30, "seed": 3},
            },
            "model": {"name": "deepfm", "embed_dim": 4, "params": {"hidden_dims": [16]}},
            "loss": {"name": "autoloss", "params": {"controller_every": 2, **loss_params}},
            "train": {"epochs": 2, "batch_size": 128, "progress": False, "seed": 7},
        }
    )


def test_trainer_run_resumes_exactly_and_its_controller_transfers(tmp_path):
    from recloss.report import write_run_report
    from recloss.runs import resume, train

    full = train(trainer_config(tmp_path), run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(trainer_config(tmp_path), run_dir=tmp_path / "cut", callbacks=[InterruptAfter(1)])
    resumed = resume(tmp_path / "cut")
    assert resumed.test == full.test
    assert resumed.weights == full.weights
    assert set(full.weights) == {"focal", "kl", "hinge", "ce"}
    assert full.history[-1].strategy["controller_steps"] > 0

    controller = str(tmp_path / "full" / "controller.safetensors")
    frozen = train(
        trainer_config(tmp_path, controller=controller, freeze_controller=True),
        run_dir=tmp_path / "frozen",
    )
    assert frozen.history[-1].strategy["controller_steps"] == 0
    assert torch.equal(
        load_controller(controller).mlp[0].weight,
        load_controller(tmp_path / "frozen" / "controller.safetensors").mlp[0].weight,
    )
    written = {p.name for p in write_run_report(tmp_path / "full")}
    assert written == {"selection.png", "valid_auc.png", "controller.png"}


@pytest.mark.parametrize(
    ("task", "shape", "expected"),
    [
        ("binary", (8, 3), r"binary logits must be \[B\] or \[B, 1\], got \[8, 3\]"),
        ("multiclass", (8,), r"5-class logits must be \[B, 5\], got \[8\]"),
        ("multiclass", (8, 4), r"5-class logits must be \[B, 5\], got \[8, 4\]"),
    ],
)
def test_loss_refuses_logits_of_the_wrong_shape(task, shape, expected):
    autoloss = make(task)
    y = torch.zeros(8, dtype=torch.long)
    with pytest.raises(RecLossError, match=r"^AutoLoss\.loss: " + expected + "$"):
        autoloss.loss(torch.zeros(shape), y)
    assert autoloss.calls == 0 and autoloss._last is None


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_loss_refuses_labels_of_another_length(task):
    autoloss = make(task)
    logits = torch.zeros(8) if task == "binary" else torch.zeros(8, 5)
    with pytest.raises(RecLossError, match=r"labels must be \[B\] = \[8\] .*, got \[6\]$"):
        autoloss.loss(logits, torch.zeros(6, dtype=torch.long))
    with pytest.raises(RecLossError, match=r"got \[8, 1\]$"):
        autoloss.loss(logits, torch.zeros(8, 1, dtype=torch.long))
    assert autoloss.loss(logits[:, None] if task == "binary" else logits, torch.ones(8).long())


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_loss_refuses_labels_that_are_not_class_indices(task):
    autoloss = make(task)
    logits = torch.zeros(4) if task == "binary" else torch.zeros(4, 5)
    with pytest.raises(RecLossError, match=r"class indices .*got torch.float32; pass y.long\(\)$"):
        autoloss.loss(logits, torch.tensor([0.0, 1.0, 1.0, 0.0]))
    top = 1 if task == "binary" else 4
    with pytest.raises(RecLossError, match=rf"labels must be 0 \.\. {top}, got 0 \.\. {top + 1}$"):
        autoloss.loss(logits, torch.tensor([0, 1, top + 1, 0]))
    with pytest.raises(RecLossError, match=rf"got -1 \.\. {top}$"):
        autoloss.loss(logits, torch.tensor([-1, 0, top, 0]))
    assert autoloss.calls == 0


def test_a_task_that_is_neither_binary_nor_multiclass_is_refused():
    with pytest.raises(RecLossError, match="^task: 'bianry' is not binary or multiclass$"):
        AutoLoss(task="bianry", candidates=["ce"])


def test_update_refuses_a_validation_pair_of_mismatched_shapes():
    torch.manual_seed(0)
    model, autoloss = TinyNet(), make(controller_every=1)
    (x, y), (val_x, val_y) = batch(16, 2, 1), batch(32, 2, 2)
    autoloss.loss(model(x), y).backward()
    before = [p.detach().clone() for p in autoloss.controller.parameters()]
    pair = r"^AutoLoss\.update \(validation pair\): "
    with pytest.raises(RecLossError, match=pair + r"labels must be \[B\] = \[32\] .*\[20\]$"):
        autoloss.update(model, (x, y), (val_x, val_y[:20]), lr=0.1)
    wide = TinyNet(outputs=3)  # a forward whose validation logits have three columns

    def forward(inputs):
        return wide(inputs) if inputs is val_x else model(inputs)

    with pytest.raises(RecLossError, match=pair + r"binary logits .*, got \[32, 3\]$"):
        autoloss.update(model, (x, y), (val_x, val_y), lr=0.1, forward=forward)
    with pytest.raises(RecLossError, match=r"val must be an \(inputs, labels\) pair, .*Tensor$"):
        autoloss.update(model, (x, y), val_x, lr=0.1)
    with pytest.raises(RecLossError, match="lr must be the model's learning rate, got 0$"):
        autoloss.update(model, (x, y), (val_x, val_y), lr=0)
    assert same(before, autoloss.controller.parameters())
    assert autoloss.controller_steps == 0
    assert autoloss.update(model, (x, y), (val_x, val_y), lr=0.1)


def test_controller_and_its_noise_leave_the_global_random_stream_alone():
    logits, y = torch.randn(16), torch.randint(0, 2, (16,))
    torch.manual_seed(4)
    seeded = torch.get_rng_state()
    autoloss = make()
    autoloss.loss(logits, y)
    assert torch.equal(torch.get_rng_state(), seeded)  # dropout masks stay a CE run's
    torch.manual_seed(4)
    again = make()
    again.loss(logits, y)
    assert torch.equal(again._last.noise, autoloss._last.noise)  # the seed decides the noise


def test_gumbel_noise_stream_resumes_from_the_state_dict():
    torch.manual_seed(4)
    autoloss, batch_ = make(), (torch.randn(16), torch.randint(0, 2, (16,)))
    autoloss.loss(*batch_)
    resumed = make()
    resumed.load_state_dict(autoloss.state_dict())
    autoloss.loss(*batch_)
    resumed.loss(*batch_)
    assert torch.equal(resumed._last.noise, autoloss._last.noise)


def test_update_draws_validation_pairs_from_an_iterator_such_as_a_cycled_loader():
    torch.manual_seed(0)
    model, autoloss = TinyNet(), make(controller_every=1)
    (x, y), first, second = batch(16, 2, 1), batch(32, 2, 2), batch(32, 2, 3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*first), batch_size=32)
    drawn = []

    def pairs():
        for pair in (first, second):
            drawn.append(pair)
            yield pair

    stream = pairs()
    for _ in range(2):
        autoloss.loss(model(x), y).backward()
        assert autoloss.update(model, (x, y), stream, lr=0.1)
    assert drawn == [first, second]
    autoloss.loss(model(x), y).backward()
    with pytest.raises(RecLossError, match=r"exhausted; .*cycle\(val_loader\)$"):
        autoloss.update(model, (x, y), stream, lr=0.1)
    with pytest.raises(RecLossError, match=r"an iterator of them .*; got DataLoader$"):
        autoloss.update(model, (x, y), loader, lr=0.1)
    assert autoloss.updates == 2  # the two calls that failed did not count
    assert autoloss.update(model, (x, y), itertools.cycle(loader), lr=0.1)
    assert autoloss.controller_steps == 3 and autoloss.updates == 3
