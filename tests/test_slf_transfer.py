"""SLF's decision network: saved after training, loaded and frozen in another run (SLF*)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from recloss.cli import main
from recloss.config import LossConfig
from recloss.data.schema import Schema
from recloss.errors import CompatibilityError, ConfigError
from recloss.search import build_strategy
from recloss.search.base import OptionError, StepContext
from recloss.search.controller import load_controller
from recloss.search.slf import NETWORK_FILE, SlfStrategy

CANDIDATES = ["ce", "focal", "hinge"]


def batch(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n), torch.randint(0, 2, (n,))


def trained(tmp_path, steps: int = 3, **params) -> tuple[SlfStrategy, object]:
    """An SLF strategy after a few updates, and the path of its saved network."""
    slf = SlfStrategy("binary", 2, CANDIDATES, lr=0.05, hidden=[8], **params)
    for step in range(steps):
        logits, y = batch()
        slf.loss(logits.requires_grad_(), y, step).backward()
        slf.after_backward(None)  # type: ignore[arg-type]  (SLF ignores the step context)
    assert slf.artifact.file == NETWORK_FILE
    slf.save_artifact(tmp_path / NETWORK_FILE)
    return slf, tmp_path / NETWORK_FILE


def test_saved_network_gives_the_same_gates(tmp_path):
    torch.manual_seed(0)
    source, path = trained(tmp_path)
    loaded = SlfStrategy("binary", 2, CANDIDATES, network=path)
    assert loaded.net.spec == source.net.spec and loaded.net.spec.hidden == (8,)
    logits, y = batch(64)
    torch.manual_seed(1)
    expected = source.gates(logits, y, tau=0.5)
    torch.manual_seed(1)
    assert torch.equal(loaded.gates(logits, y, tau=0.5), expected)


def test_frozen_network_does_not_change_while_the_model_trains(tmp_path):
    torch.manual_seed(0)
    _, path = trained(tmp_path)
    frozen = SlfStrategy("binary", 2, CANDIDATES, network=path, freeze_network=True)
    before = [p.detach().clone() for p in frozen.net.parameters()]
    model = torch.nn.Linear(3, 1)
    for step in range(3):
        x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
        frozen.loss(model(x).squeeze(1), y, step).backward()
        ctx = StepContext(model, None, step, 0.1, lambda: None)  # type: ignore[arg-type]
        frozen.after_backward(ctx)
    assert model.weight.grad is not None and frozen.optimizer is None
    after = list(frozen.net.parameters())
    assert all(torch.equal(b, a) and a.grad is None for b, a in zip(before, after, strict=True))
    state = copy.deepcopy(frozen.state_dict())  # checkpoints without optimiser
    assert state["_extra_state"]["optimizer"] is None
    loaded = frozen.load_state_dict(state)
    assert not loaded.missing_keys and not loaded.unexpected_keys


def test_unfrozen_network_keeps_learning_from_the_saved_weights(tmp_path):
    torch.manual_seed(0)
    _, path = trained(tmp_path)
    slf = SlfStrategy("binary", 2, CANDIDATES, lr=0.05, network=path)
    before = [p.detach().clone() for p in slf.net.parameters()]
    logits, y = batch()
    slf.loss(logits.requires_grad_(), y, 0).backward()
    slf.after_backward(None)  # type: ignore[arg-type]
    assert any(not torch.equal(b, a) for b, a in zip(before, slf.net.parameters(), strict=True))


@pytest.mark.parametrize(
    "task,classes,candidates,match",
    [
        ("multiclass", 5, CANDIDATES, "binary task, this run is 5-class"),
        ("binary", 2, ["ce", "focal"], r"uses \[ce, focal\]; set loss.candidates"),
    ],
)
def test_mismatched_network_raises_compatibility_error(tmp_path, task, classes, candidates, match):
    torch.manual_seed(0)
    _, path = trained(tmp_path, steps=0)
    with pytest.raises(CompatibilityError, match=match):
        SlfStrategy(task, classes, candidates, network=path)


def test_network_option_errors(tmp_path):
    torch.manual_seed(0)
    _, path = trained(tmp_path, steps=0)
    with pytest.raises(OptionError, match="^freeze_network: needs `network`"):
        SlfStrategy("binary", 2, CANDIDATES, freeze_network=True)
    schema = Schema("binary", 2, ("a",), (10,))
    loss = LossConfig(name="slf", candidates=CANDIDATES, params={"freeze_network": True})
    with pytest.raises(ConfigError, match="loss.params.freeze_network: needs `network`"):
        build_strategy(loss, schema)
    with pytest.raises(ConfigError, match="differs from the network file"):
        SlfStrategy("binary", 2, CANDIDATES, hidden=[16], network=path)
    with pytest.raises(ConfigError, match="not found"):
        SlfStrategy("binary", 2, CANDIDATES, network=tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(CompatibilityError, match="bad.safetensors"):
        SlfStrategy("binary", 2, CANDIDATES, network=tmp_path / "bad.safetensors")


def test_bench_transfers_slf_frozen(tmp_path, capsys):
    """A real tiny grid: SLF on DeepFM, then SLF* on NFM with DeepFM's network frozen."""
    grid = {
        "name": "tiny",
        "seeds": [1],
        "base": {
            "model": {"embed_dim": 4},
            "train": {"epochs": 1, "batch_size": 256},
            "data": {"cache_dir": str(tmp_path / "cache")},
        },
        "datasets": {
            "syn": {
                "dataset": "synthetic",
                "synthetic": {"rows": 2000, "fields": 4, "cardinality": 30},
            }
        },
        "models": {"deepfm": {"params": {"hidden_dims": [8]}}},
        "methods": ["ce", "slf"],
        "transfer": {
            "methods": ["ce", "slf"],
            "models": {"source": "deepfm", "targets": {"nfm": {"params": {"hidden_dims": [8]}}}},
        },
    }
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps(grid))
    out, docs = tmp_path / "runs", tmp_path / "docs"
    code = main(["bench", str(path), "--out", str(out), "--report-dir", str(docs)])
    assert code == 0, capsys.readouterr().err
    cells = out / "tiny/cells/syn"
    source = cells / "deepfm/slf/seed1" / NETWORK_FILE
    assert source.is_file()
    target = cells / "nfm/slf-from-deepfm/seed1"
    record = json.loads((target / "metrics.json").read_text())
    assert 0 <= record["test"]["auc"] <= 1  # NaN fails too
    assert record["epochs"] == len(record["history"]) == 1
    # the target trained NFM with the source cell's network file, frozen; the source learned its own
    import os

    import yaml

    saved = yaml.safe_load((target / "config.yaml").read_text())
    loss = saved["loss"]
    assert saved["model"]["name"] == "nfm"
    assert loss["name"] == "slf" and loss["params"]["freeze_network"] is True
    assert os.path.samefile(loss["params"]["network"], source)
    source_loss = yaml.safe_load((source.parent / "config.yaml").read_text())["loss"]
    assert not source_loss["params"].get("freeze_network", False)
    # each epoch of the target reports the frozen network's mean gate per candidate
    for epoch in record["history"]:
        gates = epoch["strategy"]["gates"]
        assert set(gates) == set(loss["candidates"]) == {"focal", "kl", "hinge", "ce"}
        assert all(0 <= g <= 1 for g in gates.values())
        assert epoch["strategy"]["open"] == pytest.approx(sum(gates.values()))
    # the frozen network is handed on unchanged
    saved, handed_on = load_controller(source), load_controller(target / NETWORK_FILE)
    assert saved.spec == handed_on.spec
    for key, value in saved.state_dict().items():
        assert torch.equal(handed_on.state_dict()[key], value), key
    report = (docs / "report.md").read_text()
    assert "SLF\\*" in report and "No SLF" not in report
