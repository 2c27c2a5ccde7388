"""What a benchmark ran on, printed with every figure and stored in its JSON."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    info = {
        "cpu": _cpu_model(),
        # AVX2 or AVX512: the matmuls' speed, and whether bf16 has hardware support, hang on it
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(name: str, figures: dict[str, Any]) -> Path:
    """Print the machine and write `{machine, figures}` to benchmarks/results/NAME.json."""
    info = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": info, "figures": figures}, indent=2, default=str))
    print(f"wrote {path}")
    return path
