"""The README's promises: its Python example runs, its quick start names the real commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
    assert "weight_ce" in done.stdout


def test_quick_start_is_two_commands_matching_ci():
    text = README.read_text()
    block = re.search(r"## Quick start\n\n```bash\n(.*?)```", text, re.S).group(1)
    commands = block.strip().splitlines()
    assert len(commands) == 2
    assert commands[0].endswith("recloss train")
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci
