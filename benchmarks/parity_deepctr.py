"""DeepFM (or xDeepFM) with cross-entropy: recloss with its defaults against DeepCTR-Torch 0.3.0,
same splits.

For each data set recloss prepares the data once (vocabularies fitted on the training split,
the data set's default split); the encoded train/valid/test rows are exported and both
libraries train on exactly those rows, seeds 0-4 (the seed sets the initial weights and the
shuffling; the split stays the same). DeepCTR-Torch gets recloss's architecture (embedding size,
DNN widths, dropout; for xDeepFM the CIN's widths, with no activation and no split of its maps,
as in the paper), batch size, epoch budget and best-epoch selection on validation AUC, and
keeps its own optimiser settings and regularisation (its defaults: Adam at 1e-3, L2 1e-5 on the
embeddings and the linear weights). It runs in a virtual environment of its own (created once
under --envs with `deepctr-torch==0.3.0`, `requests` which it imports, and this machine's torch
version); recloss never depends on it.

Prints, per data set, the mean test AUC and logloss of each library and the paired per-seed
differences (recloss minus peer) with a paired t-test, and writes them to
benchmarks/results/parity_deepctr_DATASET.json (xDeepFM: parity_deepctr_xdeepfm_DATASET.json).

    python benchmarks/parity_deepctr.py [--datasets movielens-100k adult synthetic] [--seeds 5]
        [--model deepfm|xdeepfm]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import report
from scipy.stats import ttest_rel

from recloss import train
from recloss.config import config_from_dict
from recloss.data import prepare_dataset
from recloss.models import default_params

HERE = Path(__file__).parent
PEER = "deepctr-torch==0.3.0"
PEER_SCRIPT = HERE / "parity_peer_deepctr.py"
DATASETS: dict[str, dict[str, Any]] = {
    "movielens-100k": {"dataset": "movielens-100k", "task": "binary"},
    "adult": {"dataset": "adult"},
    "synthetic": {"dataset": "synthetic", "synthetic": {"rows": 100_000, "fields": 20}},
}


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def peer_python(envs: Path) -> Path:
    """The peer's interpreter, in a virtual environment created on first use."""
    env = envs / "deepctr-torch-0.3.0"
    python = env / "bin" / "python"
    if not python.is_file():
        venv.create(env, with_pip=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, f"torch=={torch.__version__.split('+')[0]}"], check=True)
        subprocess.run([*pip, PEER, "requests", "scikit-learn", "pandas"], check=True)
    return python


def base_config(name: str, model: str, out: str) -> dict[str, Any]:
    """recloss's defaults for the model with CE on one data set (binary task)."""
    return {"data": DATASETS[name], "model": {"name": model}, "loss": {"name": "ce"},
            "train": {"progress": False}, "out": out}  # fmt: skip


def export_splits(cfg: dict[str, Any], path: Path) -> None:
    """The prepared splits' encoded rows, as the peer reads them."""
    dataset = prepare_dataset(config_from_dict(cfg).data, progress=False)
    arrays: dict[str, np.ndarray] = {"cardinalities": np.asarray(dataset.schema.cardinalities)}
    for split in ("train", "valid", "test"):
        rows = dataset.split(split)
        if rows.x_num is not None:
            raise SystemExit(f"{cfg['data']['dataset']}: continuous features are not exported")
        arrays[f"{split}_x"] = np.asarray(rows.x_cat)
        arrays[f"{split}_y"] = np.asarray(rows.y)
    np.savez(path, **arrays)


def run_peer(python: Path, data: Path, resolved: Any, seed: int) -> dict[str, float]:
    t, model = resolved.train, resolved.model
    params = {**default_params(model.name), **model.params}  # the architecture recloss trains
    hidden = ",".join(str(h) for h in params["hidden_dims"])
    cmd = [str(python), str(PEER_SCRIPT), str(data), "--seed", str(seed),
           "--epochs", str(t.epochs), "--patience", str(t.patience),
           "--batch-size", str(t.batch_size), "--embed-dim", str(model.embed_dim),
           "--hidden", hidden, "--dropout", str(params["dropout"]),
           "--model", model.name]  # fmt: skip
    if model.name == "xdeepfm":
        cmd += ["--cin", ",".join(str(h) for h in params["cin_sizes"])]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def paired(ours: list[float], theirs: list[float]) -> dict[str, Any]:
    diff = [a - b for a, b in zip(ours, theirs, strict=True)]
    return {"recloss": ours, "peer": theirs, "mean_diff": statistics.mean(diff),
            "paired_p": float(ttest_rel(ours, theirs).pvalue)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--envs", type=Path, default=HERE / ".envs")
    parser.add_argument("--model", default="deepfm", choices=["deepfm", "xdeepfm"])
    args = parser.parse_args()
    python = peer_python(args.envs)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            before = load()
            cfg = base_config(name, args.model, tmp)
            data = Path(tmp) / f"{name}.npz"
            export_splits(cfg, data)
            resolved = config_from_dict(cfg)
            ours, theirs = [], []
            for seed in range(args.seeds):  # interleaved, so that load changes hit both alike
                seeded = {**cfg, "train": {**cfg["train"], "seed": seed}}
                ours.append(train(seeded).test)
                theirs.append(run_peer(python, data, resolved, seed))
            cell = {m: paired([o[m] for o in ours], [p[m] for p in theirs])
                    for m in ("auc", "logloss")}  # fmt: skip
            print(f"{name}: load before {before}; after {load()}")
            for m, c in cell.items():
                print(f"{name:>15} {m:>7}: recloss {statistics.mean(c['recloss']):.4f}  "
                      f"deepctr-torch {statistics.mean(c['peer']):.4f}  "
                      f"diff {c['mean_diff']:+.4f}  paired p {c['paired_p']:.3f}")  # fmt: skip
            sys.stdout.flush()
            prefix = "parity_deepctr" + ("" if args.model == "deepfm" else f"_{args.model}")
            report(f"{prefix}_{name}", {"seeds": args.seeds, "peer": PEER, "model": args.model,
                                              "load_before": before, "load_after": load(),
                                              **cell})  # fmt: skip


if __name__ == "__main__":
    main()
