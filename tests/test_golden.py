"""Golden metrics: 11 (model, strategy) runs of 2 epochs give exactly the recorded numbers.

The values in `golden/two_epochs.json` were re-recorded when recloss's own `Dropout` replaced
`nn.Dropout` (other masks), DeepFM + AutoLoss's when CE's share of the prior became 0.97,
DeepFM's and FM's when the FM term became one Function in every mode (squared norms), and DeepFM +
AutoLoss's when validation passes began to look up distinct rows (both: last bits);
they were first recorded on commit 1ee4e4a's code, before the package's restructuring into
runs/, training/, bench/ and report/, by `golden/record.py` through the old API
`recloss.train.train`; the run API `recloss.train` reproduced the file byte for
byte. A refactoring is meant to be bit-identical on the CPU, so the per-epoch training losses
and the test and best validation AUC are compared with `==`, not approximately; the loglosses to
a relative 1e-8, because numpy's float64 `log` differs in its last bits between CPUs with and
without AVX-512 (up to 9e-10 relative, with every training loss and AUC equal). The
configurations (synthetic data of 4000 rows, 6 fields, cardinality 40, data seed 5; embed_dim
8; 2 epochs of batch 256, patience 5, seed 11; CPU) live in `golden/record.py` and are shared
with this test.

A change that is meant to change the numbers re-records them, and says so in its commit:

    python tests/golden/record.py tests/golden/two_epochs.json
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from recloss import train

GOLDEN = Path(__file__).parent / "golden"


def _load_recorder():
    spec = importlib.util.spec_from_file_location("golden_record", GOLDEN / "record.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recorder = _load_recorder()
EXPECTED = json.loads((GOLDEN / "two_epochs.json").read_text())


def test_the_golden_file_covers_every_pair():
    assert sorted(EXPECTED) == sorted(f"{m}/{loss}" for m, loss, _ in recorder.PAIRS)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One data cache for every pair: the synthetic data set is prepared once."""
    return tmp_path_factory.mktemp("golden-cache")


@pytest.mark.parametrize(
    "model,loss,params", recorder.PAIRS, ids=[f"{m}-{loss}" for m, loss, _ in recorder.PAIRS]
)
def test_metrics_equal_the_recorded_ones(tmp_path, cache_dir, model, loss, params):
    cfg = recorder.config(cache_dir, tmp_path / "runs", model, loss, params)
    record = train(cfg, run_dir=tmp_path / f"{model}-{loss}")
    expected = EXPECTED[f"{model}/{loss}"]
    assert [e.train_loss for e in record.history] == expected["train_loss"]
    for found, recorded in (
        (record.best_valid, expected["best_valid"]),
        (record.test, expected["test"]),
    ):
        assert found.keys() == recorded.keys()
        assert found["auc"] == recorded["auc"]
        # numpy's float64 `log` has a kernel per instruction set (AVX-512 or AVX2), whose last
        # bits differ; the model's outputs are the same bits, as the losses and AUC show
        assert found["logloss"] == pytest.approx(recorded["logloss"], rel=1e-8, abs=0)
