"""The paper's baseline strategies (DARTS, BOHB, meta, SLF) and the extras (uncertainty, GradNorm,
DWA): they learn, behave as specified, run through the trainer in one or two stages, and resume."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from conftest import InterruptAfter
from torch import nn
from torch.func import functional_call

from recloss.config import LossConfig, config_from_dict
from recloss.data.schema import Batch, Schema
from recloss.errors import ConfigError, TrainingDiverged
from recloss.losses import loss_matrix
from recloss.rundir import RunDir
from recloss.runs import SEARCHES, check_method, resume, train, twostage
from recloss.runs.bohb import budget_steps
from recloss.runs.twostage import OnlineSearch
from recloss.search import STRATEGIES, StepContext, build_strategy
from recloss.search.gradnorm import logit_grad_norms
from recloss.search.objectives import task_loss
from recloss.training import Callback
from recloss.training.flip_channel import noisy_logit

CANDIDATES = ["focal", "kl", "hinge", "ce"]
ONLINE = ["slf", "uncertainty", "gradnorm", "dwa"]
TWO_STAGE = ["darts", "meta", "bohb", "race"]
QUICK_PARAMS = {  # small searches; the defaults are sized for real data sets
    "darts": {"lr": 0.05, "update_every": 1},
    "meta": {"lr": 0.05},
    "bohb": {"trials": 4, "min_budget": 0.25, "max_budget": 0.75},
    "race": {"budget": 0.5},
}
STEPS_PER_EPOCH = 19  # 4800 training rows in batches of 256


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: thread hand-offs cost far more than they save on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def config(cache, tmp_path):
    """A run config on small planted synthetic data (shared cache) for loss `name`."""

    def make(name, candidates=CANDIDATES, params=None, epochs=3, **train):
        return config_from_dict({
            "data": {
                "dataset": "synthetic",
                "cache_dir": str(cache),
                "synthetic": {"rows": 6000, "fields": 6, "cardinality": 50, "seed": 3},
            },
            "model": {"name": "deepfm", "embed_dim": 8, "params": {"hidden_dims": [32, 32]}},
            "loss": {"name": name, "candidates": candidates, "params": params or {}},
            "train": {"epochs": epochs, "batch_size": 256, "lr": 0.01, "progress": False,
                      "patience": 5, "seed": 7, **train},
            "out": str(tmp_path / "runs"),
        })  # fmt: skip

    return make


# -- through the trainer ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", TWO_STAGE + ONLINE)
def test_every_strategy_learns_planted_data(config, name):
    record = train(config(name, params=QUICK_PARAMS.get(name)))
    assert record.test["auc"] > 0.62  # plain CE reaches about 0.65 here
    assert set(record.weights) == set(CANDIDATES)
    assert all(math.isfinite(w) and w >= 0 for w in record.weights.values())
    saved = json.loads((record.run_dir / RunDir.RECORD).read_text())
    if name in TWO_STAGE:
        search = saved["search"]
        assert search["method"] == name and search["seconds"] > 0
        assert saved["retrain_seconds"] == record.wall_seconds > 0
        assert sum(search["weights"].values()) == pytest.approx(1.0)
        assert record.weights == pytest.approx(search["weights"])
        assert json.loads((record.run_dir / RunDir.SEARCH).read_text()) == search
    else:
        assert saved["search"] is None and record.search is None
        assert all(entry.strategy for entry in record.history)


@pytest.mark.parametrize("name", ["darts", "meta"])
def test_bilevel_search_moves_weight_off_a_harmful_candidate(config, name):
    params = {**QUICK_PARAMS[name], "search_epochs": 2}
    cfg = config(name, candidates=["ce", "flipped"], params=params, epochs=1)
    weights = train(cfg).search.weights
    assert weights["flipped"] < 0.2 < 0.8 < weights["ce"]


@pytest.mark.parametrize("name", ["darts", "bohb", "race"])
def test_retrain_starts_from_scratch_like_a_weighted_run(config, name):
    two_stage = train(config(name, params=QUICK_PARAMS[name], epochs=2))
    weights = [two_stage.search.weights[c] for c in CANDIDATES]
    plain = train(config("weighted", params={"weights": weights}, epochs=2))
    assert two_stage.history[0].valid == plain.history[0].valid
    assert two_stage.test == plain.test


def test_retrain_autoloss_starts_the_controller_at_the_searched_mixture(config):
    cfg = config("darts", params={**QUICK_PARAMS["darts"], "retrain": "autoloss"}, epochs=2)
    record = train(cfg)
    searched = record.search.weights
    controller = record.run_dir / "controller.safetensors"  # the retrain is an AutoLoss run
    assert controller.is_file() and record.weights != pytest.approx(searched)
    retrain = twostage.mixture_config(cfg, searched, "autoloss")
    assert retrain.loss.name == "autoloss"
    strategy = build_strategy(retrain.loss, Schema("binary", 2, ("a",), (10,)))
    expected = torch.tensor([searched[c] for c in CANDIDATES]).clamp(min=1e-3)
    torch.testing.assert_close(strategy._prior, expected / expected.sum())
    with pytest.raises(ConfigError, match=r"loss\.params\.retrain: unknown 'frozen'"):
        train(config("darts", params={"retrain": "frozen"}))


def test_race_retrains_with_the_candidate_of_the_best_validation_auc(config):
    search = train(config("race", candidates=["flipped", "ce"], epochs=1)).search
    aucs = search.details["valid_auc"]
    assert search.details == {"winner": "ce", "valid_auc": aucs, "steps": STEPS_PER_EPOCH}
    assert aucs["ce"] > 0.6 > aucs["flipped"]
    assert search.weights == {"flipped": 0.0, "ce": 1.0}


def test_race_budget_counts_steps_and_its_trials_match_a_fixed_run(config):
    search = train(config("race", params={"budget": 0.5}, epochs=1)).search
    assert search.details["steps"] == 10  # half of 19 steps, rounded
    alone = train(config("focal", epochs=1, max_steps_per_epoch=10))
    assert search.details["valid_auc"]["focal"] == pytest.approx(alone.history[0].valid["auc"])


def test_bohb_respects_trials_and_budgets(config):
    params = {"trials": 5, "min_budget": 0.2, "max_budget": 0.6, "eta": 3}
    search = train(config("bohb", params=params, epochs=1)).search
    trials = search.details["trials"]
    steps = [t["steps"] for t in trials]
    assert len(trials) == 5
    assert search.details["budgets"] == [4, 11]  # 0.2 and 0.6 of 19 steps
    assert max(steps) == 11 and set(steps) <= {4, 11}
    assert all(t["pruned"] == (t["steps"] < 11) for t in trials)
    best = trials[search.details["best_trial"]]
    assert best["state"] == "complete" and best["weights"] == search.weights
    assert best["value"] == max(t["value"] for t in trials if t["state"] == "complete")
    assert all(sum(t["weights"].values()) == pytest.approx(1.0) for t in trials)
    again = train(config("bohb", params=params, epochs=1)).search
    assert [t["weights"] for t in again.details["trials"]] == [t["weights"] for t in trials]


def test_a_diverged_bohb_trial_is_pruned_and_the_search_goes_on(config, monkeypatch):
    from recloss.runs import bohb

    def diverge_second(trainer, trial, budgets, per_epoch):
        if trial.number == 1:
            raise TrainingDiverged("training diverged")
        return train_to_budgets(trainer, trial, budgets, per_epoch)

    train_to_budgets = bohb.train_to_budgets
    monkeypatch.setattr(bohb, "train_to_budgets", diverge_second)
    params = {"trials": 3, "min_budget": 0.2, "max_budget": 0.6, "eta": 3}
    trials = train(config("bohb", params=params, epochs=1)).search.details["trials"]
    assert [(t["diverged"], t["pruned"]) for t in trials][1] == (True, True)
    assert not trials[0]["diverged"] and not trials[2]["diverged"]


def test_a_candidate_that_diverges_drops_out_of_the_race(config, monkeypatch):
    from recloss.runs import race

    def diverge_on_focal(cfg, dataset, candidate, budget):
        trainer = trial(cfg, dataset, candidate, budget)
        if candidate == "focal":
            next(trainer.model.parameters()).data.fill_(float("nan"))
        return trainer

    trial = race.trial
    monkeypatch.setattr(race, "trial", diverge_on_focal)
    search = train(config("race", candidates=["focal", "ce"], epochs=1)).search
    assert math.isnan(search.details["valid_auc"]["focal"]) and search.details["winner"] == "ce"


def test_budget_steps_follow_hyperband_rungs():
    assert budget_steps(0.1, 1.0, 3, 100) == [10, 30, 90, 100]
    assert budget_steps(0.5, 0.5, 3, 10) == [5]
    assert budget_steps(0.001, 2.0, 2, 10) == [1, 2, 4, 8, 16, 20]


def test_bohb_without_optuna_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    schema = Schema("binary", 2, ("a",), (10,))
    with pytest.raises(ConfigError, match=r"pip install 'recloss\[tune\]'"):
        check_method(LossConfig(name="bohb"), schema)


@pytest.mark.parametrize("name", ONLINE)
def test_online_strategy_resumes_exactly(config, tmp_path, name):
    full = train(config(name), run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(config(name), run_dir=tmp_path / "cut", callbacks=[InterruptAfter(1)])
    resumed = resume(tmp_path / "cut")
    assert resumed.test == full.test
    assert resumed.weights == full.weights
    assert [h.valid for h in resumed.history] == [h.valid for h in full.history]


def test_two_stage_run_resumes_inside_the_retrain(config, tmp_path, monkeypatch):
    cfg = config("darts", params=QUICK_PARAMS["darts"])
    full = train(cfg, run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):  # the callback joins the retrain only
        train(cfg, run_dir=tmp_path / "cut", callbacks=[InterruptAfter(1)])
    assert (tmp_path / "cut" / RunDir.SEARCH).is_file()

    def no_second_search(*args, **kwargs):
        raise AssertionError("a finished search must not run again")

    monkeypatch.setattr(OnlineSearch, "search", no_second_search)
    resumed = resume(tmp_path / "cut")
    assert resumed.test == full.test
    assert [h.valid for h in resumed.history] == [h.valid for h in full.history]
    assert resumed.search.weights == full.search.weights


def test_interrupted_search_continues_from_its_checkpoint(config, tmp_path, monkeypatch):
    cfg = config("darts", params={**QUICK_PARAMS["darts"], "search_epochs": 2}, epochs=1)
    full = train(cfg, run_dir=tmp_path / "full")
    run_online = twostage.run_online  # the search stage's run; the retrain does not use it
    starts = []

    class RecordStart(Callback):
        def on_fit_start(self, trainer):
            starts.append(trainer.state.epoch)

    def search_stage_with(callback):
        def run(cfg, dataset, run_dir, **kwargs):
            assert run_dir.path == tmp_path / "cut" / RunDir.SEARCH_STAGE
            return run_online(cfg, dataset, run_dir, **kwargs, callbacks=[callback])

        return run

    monkeypatch.setattr(twostage, "run_online", search_stage_with(InterruptAfter(1)))
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut")
    assert not (tmp_path / "cut" / RunDir.SEARCH).exists()
    assert RunDir(tmp_path / "cut").search_stage().checkpoint.is_file()
    monkeypatch.setattr(twostage, "run_online", search_stage_with(RecordStart()))
    resumed = resume(tmp_path / "cut")
    assert starts == [1]  # the search went on from its checkpoint after epoch 1
    assert resumed.search.weights == full.search.weights
    assert resumed.search.details["trace"] == full.search.details["trace"]
    assert resumed.test == full.test


def test_strategy_options_are_checked_with_the_key_named(config):
    schema = Schema("binary", 2, ("a",), (10,))
    bad = [
        ("darts", {"update_every": 0}, "update_every"),
        ("meta", {"inner_lr": -1.0}, "inner_lr"),
        ("darts", {"hypergrad": "first_order"}, "hypergrad"),
        ("bohb", {"max_budget": 0.05}, "max_budget"),
        ("bohb", {"eta": 1}, "eta"),
        ("race", {"budget": 0}, "budget"),
        ("slf", {"tau_min": 2.0}, "tau_min"),
        ("slf", {"hidden": [0]}, "hidden"),
        ("dwa", {"temperature": 0}, "temperature"),
        ("gradnorm", {"alpha": -1}, "alpha"),
        ("uncertainty", {"learning_rate": 0.1}, "learning_rate"),
    ]
    for name, params, key in bad:
        loss = LossConfig(name=name, params=params)
        with pytest.raises(ConfigError, match=rf"loss\.params\.{key}"):
            check_method(loss, schema)  # a run's method, checked before any training
        if name in STRATEGIES:  # the online strategy of that name
            with pytest.raises(ConfigError, match=rf"loss\.params\.{key}"):
                build_strategy(loss, schema)


# -- the strategies on their own ------------------------------------------------------------------
CARD, FIELDS = 30, 3


class TinyNet(nn.Module):
    """Embedding + MLP over a batch's categorical fields; `outputs` logits."""

    def __init__(self, outputs: int = 1) -> None:
        super().__init__()
        self.embedding = nn.Embedding(CARD, 4)
        self.mlp = nn.Sequential(nn.Linear(FIELDS * 4, 8), nn.ReLU(), nn.Linear(8, outputs))

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.mlp(self.embedding(batch.x_cat).flatten(1)).squeeze(-1)


def tiny_batch(n: int, classes: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, CARD, (n, FIELDS), generator=g)
    return Batch(x, None, torch.randint(0, classes, (n,), generator=g))


def build(name: str, task: str, **params):
    classes = 2 if task == "binary" else 5
    schema = Schema(task, classes, tuple("abc"), (CARD,) * FIELDS)
    return build_strategy(LossConfig(name=name, candidates=CANDIDATES, params=params), schema)


def test_bohb_is_a_search_not_an_online_strategy():
    assert "bohb" not in STRATEGIES and "bohb" in SEARCHES


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("name", ["darts", "meta", *ONLINE])
def test_strategy_steps_on_both_tasks(name, task):
    torch.manual_seed(0)
    classes = 2 if task == "binary" else 5
    model = TinyNet(1 if task == "binary" else classes)
    strategy = build(name, task)
    assert STRATEGIES.get(name) is type(strategy)
    before = [p.detach().clone() for p in strategy.parameters()]
    for step in range(3):
        batch = tiny_batch(32, classes, step)
        model.zero_grad()
        loss = strategy.loss(model(batch), batch.y, step)
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        ctx = StepContext(model, batch, step, 0.05, lambda: tiny_batch(32, classes, 9))
        strategy.after_backward(ctx)
    json.dumps(strategy.on_epoch_end())
    assert set(strategy.weights()) == set(CANDIDATES)
    assert all(math.isfinite(w) for w in strategy.weights().values())
    after = list(strategy.parameters())
    assert (len(after) > 0) == (name != "dwa")  # dwa learns no parameters
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=True))


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_slf_gates_lie_in_unit_interval(task):
    torch.manual_seed(0)
    classes = 2 if task == "binary" else 5
    slf = build("slf", task, tau_min=0.01, tau0=0.01)
    shape = (64,) if task == "binary" else (64, classes)
    logits = torch.randn(shape) * 1e4
    y = torch.randint(0, classes, (64,))
    gates = slf.gates(logits, y, tau=0.01)
    assert gates.shape == (64, 4) and gates.min() >= 0 and gates.max() <= 1
    assert ((gates < 0.01) | (gates > 0.99)).float().mean() > 0.9  # nearly binary when cold
    slf.loss(logits.requires_grad_(), y, step=0).backward()
    assert all(p.grad is not None for p in slf.net.parameters())
    gates = slf.on_epoch_end()["gates"]
    assert all(0 <= g <= 1 for g in gates.values())


def test_slf_loss_normalises_by_open_gates():
    slf = build("slf", "binary")
    logits, y = torch.randn(8), torch.randint(0, 2, (8,))
    losses = loss_matrix(CANDIDATES, logits, y)
    for gates in (torch.full((8, 4), 0.9), torch.full((8, 4), 0.1)):
        slf.gates = lambda *args, g=gates: g
        expected = ((gates * losses).sum(1) / gates.sum(1).clamp(min=1)).mean()
        assert torch.allclose(slf.loss(logits, y, step=0), expected)


@pytest.mark.parametrize("channel", [False, True])
@pytest.mark.parametrize("hypergrad", ["jvp", "finite_diff"])
def test_darts_gradient_is_the_exact_unrolled_hypergradient(hypergrad, channel):
    """beta's gradient equals d L_val(W - xi * grad_W L_train(W; softmax(beta))) / d beta, the
    training loss through a label-noise channel where there is one."""
    torch.manual_seed(0)
    model, xi = TinyNet(), 0.1
    train_batch, val_batch = tiny_batch(32, 2, 1), tiny_batch(32, 2, 2)
    darts = build("darts", "binary", update_every=1, hypergrad=hypergrad)
    with torch.no_grad():
        darts.beta.copy_(torch.tensor([0.3, -0.2, 0.1, 0.0]))
    params = {k: p.detach() for k, p in model.named_parameters()}
    rates = torch.linspace(0.0, 0.4, 32)

    def as_trained(z):
        return noisy_logit(z, rates) if channel else z

    def val_loss(beta):
        def train_loss(ps):
            z = as_trained(functional_call(model, ps, (train_batch,)))
            return (loss_matrix(CANDIDATES, z, train_batch.y) @ torch.softmax(beta, 0)).mean()

        grads = torch.func.grad(train_loss)(params)
        stepped = {k: p - xi * grads[k] for k, p in params.items()}
        return task_loss(functional_call(model, stepped, (val_batch,)), val_batch.y)

    expected = torch.func.grad(val_loss)(darts.beta.detach().clone())
    darts.loss(as_trained(model(train_batch)), train_batch.y, step=0).backward()
    through = (lambda b: as_trained(model(b))) if channel else None
    darts.after_backward(
        StepContext(model, train_batch, 0, xi, lambda: val_batch, train_forward=through)
    )
    assert expected.abs().sum() > 0
    assert torch.allclose(darts.beta.grad, expected, rtol=1e-3, atol=1e-6)


def test_darts_updates_every_k_steps():
    torch.manual_seed(0)
    model, darts = TinyNet(), build("darts", "binary", update_every=3)
    val_reads = []
    for step in range(7):
        batch = tiny_batch(16, 2, step)
        model.zero_grad()
        darts.loss(model(batch), batch.y, step).backward()
        val = tiny_batch(16, 2, 99)
        ctx = StepContext(model, batch, step, 0.1, lambda v=val: val_reads.append(1) or v)
        darts.after_backward(ctx)
    assert darts.on_epoch_end()["updates"] == 3 == len(val_reads)  # steps 0, 3 and 6


def test_uncertainty_weights_settle_at_inverse_losses():
    strategy = build("uncertainty", "binary", lr=0.05)
    logits, y = torch.randn(256), torch.randint(0, 2, (256,))
    means = loss_matrix(CANDIDATES, logits, y).mean(0)
    expected = (torch.exp(-strategy.log_vars) * means + strategy.log_vars).sum()
    assert torch.allclose(strategy.loss(logits, y, 0), expected)
    for step in range(600):
        strategy.loss(logits, y, step).backward()
        strategy.after_backward(None)
    weights = torch.tensor(list(strategy.on_epoch_end()["weights"].values()))
    assert torch.allclose(weights, 1 / means, rtol=0.05)


def test_gradnorm_measures_logit_gradients_and_balances_them():
    torch.manual_seed(0)
    logits, y = torch.randn(64, requires_grad=True), torch.randint(0, 2, (64,))
    norms = logit_grad_norms(CANDIDATES, logits, y)
    for i, c in enumerate(CANDIDATES):
        (grad,) = torch.autograd.grad(loss_matrix([c], logits, y).mean(), logits)
        assert norms[i] == pytest.approx(float(grad.norm()), rel=1e-5)
    strategy = build("gradnorm", "binary")
    strategy.loss(logits, y, 0)
    # first step: every rate is 1, so the norms are pulled to their mean
    strategy.after_backward(None)
    weights = strategy.loss_weights.detach()
    assert weights.sum() == pytest.approx(4.0)
    assert weights[norms.argmax()] < 1 < weights[norms.argmin()]


def test_dwa_weights_come_from_the_last_two_epoch_averages():
    dwa = build("dwa", "binary")
    g = torch.Generator().manual_seed(0)
    averages = []
    for epoch in range(3):
        for step in range(4):
            logits = torch.randn(32, generator=g) * (1 + epoch)  # sharper logits each epoch
            dwa.loss(logits, torch.randint(0, 2, (32,), generator=g), step)
        diagnostics = dwa.on_epoch_end()
        if epoch < 2:
            assert diagnostics["weights"] == dict.fromkeys(CANDIDATES, 1.0)
        averages.append(torch.tensor(list(diagnostics["averages"].values())))
    expected = 4 * torch.softmax(averages[1] / averages[0] / 2.0, dim=0)
    assert torch.allclose(torch.tensor(list(diagnostics["weights"].values())), expected)
    ratio = averages[2] / averages[1]
    assert torch.allclose(dwa.loss_weights, 4 * torch.softmax(ratio / 2.0, dim=0))


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("autoloss", {"controller_lr": "fast"}, r"loss\.params\.controller_lr: .*valid number"),
        ("autoloss", {"controller_every": 2.5}, r"loss\.params\.controller_every: .*integer"),
        ("bohb", {"trials": "many"}, r"loss\.params\.trials: .*integer"),
        ("weighted", {"weights": "even"}, r"loss\.params\.weights: .*list"),
    ],
)
def test_ill_typed_strategy_params_are_one_line_errors_like_model_params(name, params, match):
    """Types come from the constructor's hints, checked the way `model.params` are."""
    from recloss.runs import check_method

    with pytest.raises(ConfigError, match=match):
        check_method(LossConfig(name=name, params=params), Schema("binary", 2, ("a",), (4,)))
