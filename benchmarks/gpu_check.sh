#!/usr/bin/env bash
# The CUDA path on one GPU against the CPU: DeepFM and IPNN, CE and AutoLoss, on a generated
# Criteo-shaped set (39 fields, 10M rows by default), one epoch each.
#
#     bash benchmarks/gpu_check.sh [ROWS] [CPU_STEPS]
#
# Prints, per (model, loss): samples/s and test AUC / logloss on the GPU (fp32, bf16 autocast,
# fp32 with train.compile), peak GPU memory, and the same run on the CPU. The CPU run trains CPU_STEPS steps
# (default 300) of the same global batch; for a like-for-like AUC the GPU runs again with the
# same cap. Figures go to benchmarks/results/gpu_check.json. Needs a CUDA device; a few minutes
# on one recent GPU (data preparation included, which runs once and is cached).
set -euo pipefail
ROWS="${1:-10000000}"
CPU_STEPS="${2:-300}"
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
uptime
python - "$ROWS" "$CPU_STEPS" <<'EOF'
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from _machine import report
from recloss import train

rows, cpu_steps = int(sys.argv[1]), int(sys.argv[2])
if not torch.cuda.is_available():
    raise SystemExit("gpu_check: no CUDA device")
root = Path(tempfile.mkdtemp(prefix="gpu-check-"))


def config(model: str, loss: str, device: str, precision: str, steps: int | None,
           compiled: bool) -> dict:
    return {
        "data": {"dataset": "synthetic", "cache_dir": str(root / "cache"),
                 "synthetic": {"rows": rows, "fields": 39, "cardinality": 10_000, "seed": 1}},
        "model": {"name": model, "embed_dim": 16},
        "loss": {"name": loss},
        "train": {"epochs": 1, "batch_size": 4096, "eval_batch_size": 65536, "device": device,
                  "precision": precision, "compile": compiled, "max_steps_per_epoch": steps,
                  "progress": False,
                  "checkpoint_every_minutes": None, "seed": 7},
    }  # fmt: skip


def one(model: str, loss: str, device: str, precision: str = "fp32", steps=None,
        compiled: bool = False) -> dict:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    record = train(config(model, loss, device, precision, steps, compiled),
                   run_dir=root / f"{model}-{loss}-{device}-{precision}-{steps}-{compiled}")
    out = {"samples_per_second": record.samples_per_second, "auc": record.test["auc"],
           "logloss": record.test["logloss"], "steps": record.steps,
           "wall_seconds": time.perf_counter() - started}
    if device == "cuda":
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


figures = {"rows": rows, "cpu_steps": cpu_steps, "runs": {}}
for model in ("deepfm", "ipnn"):
    for loss in ("ce", "autoloss"):
        key = f"{model}/{loss}"
        found = {
            "gpu_fp32": one(model, loss, "cuda"),
            "gpu_bf16": one(model, loss, "cuda", "bf16"),
            "gpu_fp32_compiled": one(model, loss, "cuda", compiled=True),
            "gpu_fp32_capped": one(model, loss, "cuda", steps=cpu_steps),
            "cpu_fp32_capped": one(model, loss, "cpu", steps=cpu_steps),
        }
        figures["runs"][key] = found
        for name, f in found.items():
            peak = f" peak {f['peak_gpu_gib']:.2f} GiB" if "peak_gpu_gib" in f else ""
            print(f"{key:<16} {name:<16} {f['samples_per_second']:>12,.0f} samples/s  "
                  f"AUC {f['auc']:.4f}  logloss {f['logloss']:.4f}  {f['steps']} steps{peak}",
                  flush=True)
report("gpu_check", figures)
print(json.dumps(figures["runs"], indent=1)[:2000])
EOF
uptime
