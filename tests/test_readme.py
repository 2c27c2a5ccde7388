"""The README's promises: its Python examples run, its quick start names the real commands, its
transcripts show what the commands print."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from recloss.cli import main

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


def transcripts() -> list[tuple[str, str]]:
    """Each `$ recloss ...` line of the README's plain code blocks, with the lines after it."""
    found = []
    for language, block in re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), re.S | re.M):
        if language:
            continue
        for command, output in re.findall(r"^\$ (recloss .*)\n((?:(?!\$ ).*\n)*)", block, re.M):
            found.append((command, output.strip()))
    return found


def test_readme_has_transcripts():
    assert len(transcripts()) >= 2


@pytest.mark.parametrize(("command", "output"), transcripts())
def test_transcript_shows_what_the_command_prints(command, output, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        status = main(shlex.split(command)[1:])
    except SystemExit as stop:  # argparse's own refusals
        status = stop.code
    printed = capsys.readouterr()
    assert status != 0
    assert (printed.out + printed.err).strip() == output
