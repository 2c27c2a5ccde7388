"""Shipped configs (`recloss.presets`): they load, resolve by name, and the wheel carries them."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import recloss
from recloss import bench, presets
from recloss.cli import TRAIN_FLAGS, build_parser, config_from_args, main
from recloss.config import load_config
from recloss.errors import ConfigError

REPO = Path(__file__).parents[1]
GRIDS = {"demo", "paper/criteo", "paper/ml20m", "paper/avazu"}
RUNS = {"criteo", "avazu", "frappe", "movielens-100k", "movielens-20m", "csv-example"}
ALL = presets.list_presets()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_shipped_configs_by_name_and_kind():
    assert {p.name for p in presets.list_presets("grid")} == GRIDS
    assert {p.name for p in presets.list_presets("run")} == RUNS
    assert [p.name for p in ALL] == sorted(GRIDS | RUNS)
    root = Path(recloss.__file__).parent / "configs"  # inside the package, not the checkout's top
    assert presets.configs_dir() == root
    for p in ALL:
        assert p.path == root / f"{p.name}.yaml" and p.path.is_file()
        assert p.description and "\n" not in p.description and len(p.description) <= 100


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_every_shipped_grid_loads_and_validates(name):
    path = presets.resolve(name, "grid")
    grid = bench.load_grid(path)
    assert bench.expand(grid, Path("/bench")) and grid.compared() == "autoloss"
    assert {"datasets", "methods"} <= set(yaml.safe_load(path.read_text()))  # the kind's rule
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(path)  # and it is no run configuration


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_shipped_run_config_loads(name):
    path = presets.resolve(name, "run")
    load_config(path)
    with pytest.raises(ConfigError):
        bench.load_grid(path)  # and it is no grid


def test_kind_is_told_by_content_not_folder():
    assert presets.kind_of("name: g\ndatasets:\n  a: {}\nmethods: [ce]\n") == "grid"
    assert presets.kind_of("# datasets: in a comment\ndata:\n  dataset: criteo\n") == "run"
    assert presets.kind_of("model:\n  methods: nested, not top level\n") == "run"


def test_the_demo_has_the_cells_the_docs_count():
    cells = len(bench.expand(bench.load_grid(presets.resolve("demo", "grid")), Path("/b")))
    assert cells == 201 and f"`demo`, {cells} cells" in (REPO / "docs" / "bench.md").read_text()


def test_names_resolve_with_or_without_yaml(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no file of these names here
    root = presets.configs_dir()
    assert presets.resolve("demo", "grid") == root / "demo.yaml"
    assert presets.resolve("paper/criteo", "grid") == root / "paper" / "criteo.yaml"
    assert presets.resolve("paper/criteo.yaml", "grid") == root / "paper" / "criteo.yaml"
    assert presets.resolve("criteo", "run") == root / "criteo.yaml"
    with pytest.raises(ValueError):
        presets.resolve("demo", "bench")


def test_an_existing_file_wins_over_a_name_and_is_returned_as_given(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    Path("demo").write_text("name: mine\ndatasets: {a: {dataset: synthetic}}\nmethods: [ce]\n")
    Path("paper").mkdir()
    Path("paper/criteo.yaml").write_text("name: mine\n")
    assert presets.resolve("demo", "grid") == Path("demo")
    assert presets.resolve("paper/criteo.yaml", "grid") == Path("paper/criteo.yaml")
    assert presets.resolve("paper/criteo", "grid") == presets.configs_dir() / "paper/criteo.yaml"
    monkeypatch.chdir(Path("paper"))
    Path("demo").mkdir()  # a folder is not a file: the name stays the shipped one
    assert presets.resolve("demo", "grid") == presets.configs_dir() / "demo.yaml"
    Path("mine").mkdir()  # a folder of no shipped name is not "not found"
    with pytest.raises(ConfigError, match="^mine: a folder, not a config file$"):
        presets.resolve("mine", "run")


def test_an_unknown_name_is_one_line_listing_the_names_of_its_kind(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        presets.resolve("nope", "grid")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("nope: grid file not found")
    assert "not a shipped grid" in msg and msg.endswith(", ".join(sorted(GRIDS)))
    assert not any(f" {n}," in msg or msg.endswith(n) for n in RUNS - GRIDS)
    with pytest.raises(ConfigError, match=r"^criteo: .*criteo is a shipped run config"):
        presets.resolve("criteo", "grid")
    with pytest.raises(ConfigError, match=r"^x\.yaml: config file not found.*csv-example"):
        presets.resolve("x.yaml", "run")
    with pytest.raises(ConfigError, match=r"^dmeo: .*not a shipped grid \(did you mean demo\?\);"):
        presets.resolve("dmeo", "grid")


def test_presets_is_ground_floor():
    tree = ast.parse((Path(presets.__file__)).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    ours = {m for m in imported if m.split(".")[0] == "recloss"}
    assert ours <= {"recloss.errors", "recloss.names"}
    assert all(m.split(".")[0] in sys.stdlib_module_names for m in imported - ours)


def test_cli_lists_configs(capsys):
    code, out, _ = run(capsys, "list", "configs")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert code == 0 and set(rows) == GRIDS | RUNS
    for p in ALL:
        assert rows[p.name][0] == p.kind and " ".join(rows[p.name][1:]) == p.description


def test_cli_bench_takes_a_grid_name(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "bench", "demo", "--out", str(tmp_path), "--list")
    assert code == 0 and len(out.splitlines()) == 201
    assert out.splitlines()[0].startswith("pending  ml100k/deepfm/focal/seed1")
    code, out, _ = run(capsys, "bench", "paper/criteo.yaml", "--out", str(tmp_path), "--list")
    assert code == 0 and "criteo/ipnn/autoloss/seed5" in out
    code, _, err = run(capsys, "bench", "criteo", "--list")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "paper/criteo" in err


def test_cli_errors_name_a_file_as_before(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n")
    said = f"recloss: error: {bad} line 2: not valid YAML (expected the node content, but found "
    said += "'<stream end>')\n"  # PyYAML's words for what it found
    code, _, err = run(capsys, "bench", str(bad), "--list")
    assert code == 2 and err == said
    code, _, err = run(capsys, "data", "info", "--config", str(bad))
    assert code == 2 and err == said
    twice = tmp_path / "twice.yaml"  # YAML would keep the second, dropping train.lr unsaid
    twice.write_text("train:\n  lr: 0.1\ntrain:\n  epochs: 2\n")
    code, _, err = run(capsys, "train", "--config", str(twice))
    assert code == 2 and err == f"recloss: error: {twice} line 3: duplicate key 'train'\n"
    missing = tmp_path / "missing.yaml"
    code, _, err = run(capsys, "train", "--config", str(missing))
    assert code == 2 and err.startswith(f"recloss: error: {missing}: config file not found")
    assert len(err.strip().splitlines()) == 1


def test_every_config_flag_takes_a_run_config_name():
    for argv in (["train"], ["data", "info"], ["data", "prepare"]):
        args = build_parser().parse_args([*argv, "--config", "criteo", "--set", "train.epochs=1"])
        cfg = config_from_args(args, TRAIN_FLAGS)
        assert (cfg.data.dataset, cfg.data.min_count, cfg.train.epochs) == ("criteo", 10, 1)


def test_the_docs_name_shipped_configs_that_exist():
    """Every `recloss bench X` / `--config X` in README and docs names a shipped config."""
    text = "\n".join((REPO / f).read_text() for f in ("README.md", "docs/bench.md"))
    assert "configs/demo" not in text and "configs/paper" not in text
    grids = set(re.findall(r"recloss bench ([\w/.-]+)", text)) - {"GRID", "GRID.yaml", "NAME"}
    runs = set(re.findall(r"--config ([\w/.-]+)", text)) - {"FILE", "NAME"}
    assert grids >= {"demo", "paper/criteo"} and "criteo" in runs
    for name in grids:
        assert presets.resolve(name, "grid").is_relative_to(presets.configs_dir())
    for name in runs:
        assert presets.resolve(name, "run").is_relative_to(presets.configs_dir())


def test_a_built_wheel_contains_the_shipped_configs(tmp_path):
    src = tmp_path / "src"  # build from a copy: no build/ or egg-info in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", src / "src", ignore=ignore)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("recloss-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "recloss/presets.py" in names
    assert {f"recloss/configs/{p.name}.yaml" for p in ALL} <= names


def test_yaml_anchors_and_merge_keys_still_read(tmp_path):
    from recloss.yamlfile import read_yaml_mapping

    path = tmp_path / "anchors.yaml"  # a merged key may be given again: that is no duplicate
    path.write_text("a: &x {b: 1, d: 0}\nc:\n  <<: *x\n  d: 2\n")
    assert read_yaml_mapping(path) == {"a": {"b": 1, "d": 0}, "c": {"b": 1, "d": 2}}
