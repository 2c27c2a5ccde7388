"""Golden metrics: 11 (model, strategy) runs of 2 epochs give the recorded numbers.

The values in `golden/two_epochs.json` were re-recorded when recloss's own `Dropout` replaced
`nn.Dropout` (other masks), DeepFM + AutoLoss's when CE's share of the prior became 0.97,
DeepFM's and FM's when the FM term became one Function in every mode (squared norms), and DeepFM +
AutoLoss's when validation passes began to look up distinct rows (both: last bits);
they were first recorded on commit 1ee4e4a's code, before the package's restructuring into
runs/, training/, bench/ and report/, by `golden/record.py` through the old API
`recloss.train.train`; the run API `recloss.train` reproduced the file byte for
byte. A refactoring is meant to be bit-identical on one CPU, but float32 kernels round differently
between CPU models (an Intel Xeon with AVX-512 and AMX gives every training loss within 4e-8
relative of the values recorded on an AMD EPYC, and one AUC 1.6e-5 off: a reordered pair of
the 400 test rows; numpy's float64 `log` also has a kernel per instruction set). So the
per-epoch training losses and the loglosses are compared to a relative 1e-6 and the AUCs to
1e-4: 25 and 6 times those differences, and far below what a change of the computation moves
(DeepFM + CE with another seed, dropout rate or loss: training losses 1.7e-3 to 0.3 relative,
test AUC 1.5e-3 to 1.3e-2). The
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
LOSS_REL = 1e-6  # training losses and loglosses, relative: other CPUs round float32 otherwise
AUC_ABS = 1e-4  # a few reordered pairs of the test rows


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
    assert [e.train_loss for e in record.history] == pytest.approx(
        expected["train_loss"], rel=LOSS_REL, abs=0
    )
    for found, recorded in (
        (record.best_valid, expected["best_valid"]),
        (record.test, expected["test"]),
    ):
        assert found.keys() == recorded.keys()
        assert found["auc"] == pytest.approx(recorded["auc"], rel=0, abs=AUC_ABS)
        assert found["logloss"] == pytest.approx(recorded["logloss"], rel=LOSS_REL, abs=0)
