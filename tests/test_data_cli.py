"""`recloss data info | ls | clean`, and what a MovieLens fetch says, through the command line."""

from __future__ import annotations

import hashlib
import json
import logging
import signal
from pathlib import Path

import pytest
from datafiles import grouplens_zip, write_criteo, write_ml100k_grouplens
from test_data_tempfolders import Child

from recloss.cli import main
from recloss.data import fetch

SYNTHETIC = "data.synthetic={rows: 3000, fields: 5, cardinality: 40}"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """$RECLOSS_HOME of the test: the default cache root is its `cache/`."""
    monkeypatch.setenv("RECLOSS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_info_prints_a_summary_and_json_the_record(capsys, tmp_path, home):
    flags = ["--dataset", "criteo", "--data", str(write_criteo(tmp_path / "train.txt", rows=300))]
    code, out, _ = run(capsys, "data", "info", *flags)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["data", "set", "criteo"] and len(lines) < 45
    assert lines[1].split()[:3] == ["task", "binary", "(2"]
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["split", "rows"])
    assert lines[header].split() == ["split", "rows", "positive", "rate"]
    assert [line.split()[0] for line in lines[header + 1 : header + 5]] == [
        "train",
        "valid",
        "test",
        "total",
    ]
    assert lines[header + 4].split()[1] == "300"
    positive = float(lines[header + 4].split()[2])
    assert 0.3 < positive < 0.7
    assert any(line.startswith("fields") and "39 categorical" in line for line in lines)
    assert any(line.startswith("numeric") and "I1, I2" in line for line in lines)
    assert any(line.startswith("cache") and str(home / "cache") in line for line in lines)
    assert "C26" in out and "I13" in out  # the vocabulary table names every field
    code, out, _ = run(capsys, "data", "info", *flags, "--json")
    assert code == 0 and json.loads(out)["total_rows"] == 300


def test_info_of_a_multiclass_data_set_counts_classes(capsys, tmp_path, home):
    folder = write_ml100k_grouplens(tmp_path / "ml", rows=200)
    code, out, _ = run(capsys, "data", "info", "--dataset", "movielens-100k", "--data", str(folder))
    assert code == 0
    header = next(line for line in out.splitlines() if line.split()[:2] == ["split", "rows"])
    assert header.split() == ["split", "rows", *(w for k in range(5) for w in ("class", str(k)))]


@pytest.mark.parametrize(
    ("task", "labels", "classes", "header"),
    [("multiclass", "35135", "[1, 3, 5]", "class 1  class 3  class 5"),
     ("binary", "nyyny", "[n, y]", "positive rate (y)")],
)  # fmt: skip
def test_info_names_the_classes_by_their_labels(
    capsys, tmp_path, home, task, labels, classes, header
):
    rows = "".join(f"{y},{k % 3}\n" for k, y in enumerate(labels))
    (tmp_path / "r.csv").write_text("y,u\n" + rows)
    table = f"data.table={{label: y, categorical: [u], classes: {classes}}}"
    flags = ["--dataset", "csv", "--data", str(tmp_path / "r.csv"), "--set", table]
    code, out, _ = run(capsys, "data", "info", *flags, "--set", f"data.task={task}")
    assert code == 0
    assert next(line for line in out.splitlines() if line.startswith("split ")).endswith(header)


def test_ls_and_clean_under_recloss_home(capsys, tmp_path, home):
    code, out, _ = run(capsys, "data", "ls")
    assert code == 0 and out == f"no caches in {home / 'cache'}\n"
    criteo = ["--dataset", "criteo", "--data", str(write_criteo(tmp_path / "t.txt", rows=100))]
    assert run(capsys, "data", "prepare", *criteo)[0] == 0
    assert run(capsys, "data", "prepare", "--dataset", "synthetic", "--set", SYNTHETIC)[0] == 0
    code, out, _ = run(capsys, "data", "ls")
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"cache root: {home / 'cache'}"
    assert [line.split()[0] for line in lines[2:4]] == ["criteo", "synthetic"]
    assert "ready" in lines[2] and "100" in lines[2] and str(tmp_path / "t.txt") in lines[2]
    assert lines[4].startswith("2 caches: ")
    code, out, _ = run(capsys, "data", "clean", "--dataset", "criteo")
    assert code == 0 and out.splitlines()[0].startswith("removed criteo-")
    assert out.splitlines()[-1].startswith("freed ") and "(1 removed)" in out
    config = tmp_path / "run.yaml"  # a config file's data set narrows `clean` as --dataset does
    config.write_text("data:\n  dataset: criteo\n")
    assert "nothing removed" in run(capsys, "data", "clean", "--config", str(config))[1]
    code, out, _ = run(capsys, "data", "ls", "--set", "data.dataset=criteo")
    assert code == 0 and out == f"no criteo caches in {home / 'cache'}\n"
    code, out, _ = run(capsys, "data", "clean")  # lists everything, then removes it
    assert code == 0 and out.startswith(f"cache root: {home / 'cache'}\n")
    assert "removed synthetic-" in out and "(1 removed)" in out
    assert run(capsys, "data", "clean")[1] == f"nothing removed from {home / 'cache'}\n"


def test_cache_dir_setting_and_stale_only(capsys, tmp_path, home):
    root = tmp_path / "elsewhere"
    flags = ["--set", f"data.cache_dir={root}"]
    assert (
        run(capsys, "data", "prepare", "--dataset", "synthetic", "--set", SYNTHETIC, *flags)[0] == 0
    )
    assert Child(root / "criteo-0123456789abcdef", "kill").wait() == -signal.SIGKILL
    code, out, _ = run(capsys, "data", "ls", *flags)
    assert (
        code == 0 and "stale temporary" in out and "is gone" in out and "1 stale temporary" in out
    )
    code, out, _ = run(capsys, "data", "clean", "--stale-only", *flags)
    assert code == 0 and out.startswith("removed .criteo-0123456789abcdef.tmp-")
    assert "(stale temporary, " in out and "synthetic" not in out
    code, out, _ = run(capsys, "data", "ls", *flags)
    assert "synthetic" in out and "stale" not in out
    assert not (home / "cache").exists()  # the setting chose the root


@pytest.fixture
def local_grouplens(tmp_path, monkeypatch) -> Path:
    """The default MovieLens sources replaced by a local GroupLens zip."""
    archive = grouplens_zip(tmp_path / "ml-100k.zip", write_ml100k_grouplens(tmp_path / "s", 80))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    source = fetch.GroupLensZip(str(archive), md5=md5, ratings=80)
    monkeypatch.setattr(fetch.fetch_ml100k, "__defaults__", ((source,), 5.0))
    return archive


def test_fetch_says_where_from_and_where_to_on_stderr(capsys, home, local_grouplens, monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as on the command line
    code, out, err = run(capsys, "data", "prepare")  # the default data set: movielens-100k
    target = home / "datasets" / "ml-100k"
    assert code == 0 and "prepared movielens-100k" in out
    said = [line for line in err.splitlines() if line.startswith("recloss: ")]
    assert said == [
        f"recloss: fetching MovieLens-100K from GroupLens ({local_grouplens}) into {target}"
    ]
    code, out, err = run(capsys, "data", "info")
    assert code == 0 and "fetching" not in err  # already there: nothing said


def test_fetch_fallback_says_why_in_a_second_line(capsys, home, tmp_path, monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    gone = fetch.GroupLensZip(str(tmp_path / "missing.zip"))
    archive = grouplens_zip(tmp_path / "ml-100k.zip", write_ml100k_grouplens(tmp_path / "s", 60))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    works = fetch.GroupLensZip(str(archive), md5=md5, ratings=60, name="mirror")
    fetch.fetch_ml100k(home, [gone, works])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "from GroupLens" in lines[0]
    assert lines[1].startswith("recloss: GroupLens: ") and "fetching from mirror" in lines[1]


def test_fetch_message_goes_to_logging_where_it_is_set_up(home, local_grouplens, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="recloss.data"):
        fetch.fetch_ml100k(home)
    assert any("fetching MovieLens-100K from GroupLens" in r.getMessage() for r in caplog.records)
    assert capsys.readouterr().err == ""
