"""The README's promises: its Python example runs, its quick start names the real commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def test_autoloss_example_runs(tmp_path):
    text = README.read_text()
    example = re.search(r"own training loop.*?```python\n(.*?)```", text, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    weights = eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 - the example's own print
    assert set(weights) == {"focal", "kl", "hinge", "ce"}
    assert sum(weights.values()) == pytest.approx(1.0)


def test_python_api_example_runs(tmp_path):
    example = re.search(r"## Python API.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    script = tmp_path / "api.py"
    script.write_text(example + "assert probs.shape == (3000,) and record.test['auc'] > 0.9\n")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "RECLOSS_HOME": str(tmp_path / "home")},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs").is_dir()  # the run folder went under the default `out`


def test_quick_start_is_two_commands_matching_ci():
    text = README.read_text()
    block = re.search(r"## Quick start\n\n```bash\n(.*?)```", text, re.S).group(1)
    commands = block.strip().splitlines()
    assert len(commands) == 2
    assert commands[0].endswith("recloss train")
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci
