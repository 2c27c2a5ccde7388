"""Record the golden metrics of `tests/test_golden.py`: 11 (model, strategy) runs of 2 epochs.

    python tests/golden/record.py tests/golden/two_epochs.json

Trains every pair of `PAIRS` with `config()` on the CPU and writes, per `"model/loss"`, the test
metrics, the best validation metrics and the per-epoch training losses as JSON. Re-record only
when a change of the numbers is intended (and say so in the commit): the golden test exists to
show that a refactoring changes none of them.

The committed `two_epochs.json` was re-recorded when dropout masks changed to recloss's own
`Dropout` (16 random bits per element). It was first recorded on commit 1ee4e4a's code, before
the package's restructuring, through the old API
`recloss.train.train(config_from_dict(cfg), run_dir=...)`
(its `RunResult.metrics` dict); this script now calls the run API `recloss.train`, which
returns a `RunRecord`, and rewrote that file byte for byte after the restructuring. The values
were reproduced exactly with 1 and 2 CPU threads (torch 2.13.0+cpu).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

# (model, strategy, loss params)
PAIRS: list[tuple[str, str, dict[str, Any]]] = [
    ("deepfm", "autoloss", {}),
    ("deepfm", "ce", {}),
    ("ipnn", "focal", {}),
    ("nfm", "darts", {}),
    ("deepfm", "meta", {"hypergrad": "jvp"}),
    ("fm", "slf", {}),
    ("autoint", "uncertainty", {}),
    ("widedeep", "gradnorm", {}),
    ("dcnv2", "dwa", {}),
    ("lr", "bohb", {"trials": 3, "min_budget": 0.5, "max_budget": 1.0}),
    ("deepfm", "weighted", {"weights": [0.1, 0.2, 0.3, 0.4]}),
]


def config(
    cache_dir: str | Path, out: str | Path, model: str, loss: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The run configuration of one pair, as a plain dict (defaults for everything else)."""
    return {
        "data": {
            "dataset": "synthetic",
            "cache_dir": str(cache_dir),
            "synthetic": {"rows": 4000, "fields": 6, "cardinality": 40, "seed": 5},
        },
        "model": {"name": model, "embed_dim": 8},
        "loss": {"name": loss, "params": dict(params)},
        "train": {
            "epochs": 2,
            "batch_size": 256,
            "progress": False,
            "patience": 5,
            "seed": 11,
            "device": "cpu",  # the recording machine had no GPU: "auto" was the CPU
        },
        "out": str(out),
    }


def record(root: Path) -> dict[str, dict[str, Any]]:
    from recloss import train

    out = {}
    for model, loss, params in PAIRS:
        cfg = config(root / "cache", root / "runs", model, loss, params)
        result = train(cfg, run_dir=root / f"{model}-{loss}")
        out[f"{model}/{loss}"] = {
            "test": result.test,
            "best_valid": result.best_valid,
            "train_loss": [epoch.train_loss for epoch in result.history],
        }
        print(model, loss, result.test, file=sys.stderr)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/golden/record.py OUTPUT.json", file=sys.stderr)
        return 2
    import recloss

    print("recloss from", recloss.__file__, file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        values = record(Path(tmp))
    Path(argv[0]).write_text(json.dumps(values, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
