"""Predicting on files without a label column: Criteo's test.txt, an Avazu test.csv, a table."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from datafiles import write_avazu, write_criteo, write_csv, write_libfm

import recloss
from recloss.cli import main
from recloss.data import prepare_dataset
from recloss.errors import DataError, RecLossError
from recloss.rundir import RunDir
from recloss.runs import predict_to_file

TABLE = {"label": "label", "categorical": ["color", "shape"], "numeric": ["size", "weight"]}
WRITERS = {
    "criteo": (write_criteo, "train.txt", 0),  # the label's field index in each line
    "avazu": (write_avazu, "train.csv", 1),  # id, click, hour, ...
    "csv": (write_csv, "train.csv", 0),  # label, color, shape, size, weight
}
SEPARATORS = {"criteo": "\t", "avazu": ",", "csv": ","}


def strip_field(source: Path, target: Path, index: int, sep: str) -> Path:
    """A copy of a text file without the field at `index` in each line (header included)."""
    kept = [line.split(sep) for line in source.read_text().splitlines()]
    target.write_text("".join(sep.join(f[:index] + f[index + 1 :]) + "\n" for f in kept))
    return target


def spoil(path: Path, line: int, field: int, value: str, sep: str) -> Path:
    """Put `value` into one field of one (1-based) line: a bad line."""
    lines = path.read_text().splitlines()
    fields = lines[line - 1].split(sep)
    fields[field] = value
    lines[line - 1] = sep.join(fields)
    path.write_text("".join(f"{x}\n" for x in lines))
    return path


def train_tiny(folder: Path, dataset: str, on_bad_line: str = "error") -> tuple[Path, Path]:
    """A one-epoch run with a tiny model on a small labeled file: (run folder, that file)."""
    write, name, _ = WRITERS[dataset]
    data = write(folder / name, rows=200)
    cfg = {
        "data": {"dataset": dataset, "path": str(data), "cache_dir": str(folder / "cache"),
                 "on_bad_line": on_bad_line, "min_count": 1},
        "model": {"embed_dim": 4},
        "loss": {"name": "ce"},
        "train": {"epochs": 1, "batch_size": 64, "progress": False},
    }  # fmt: skip
    if dataset == "csv":
        cfg["data"]["table"] = TABLE
    record = recloss.train(cfg, run_dir=folder / "run")
    return Path(record.run_dir), data


@pytest.fixture(scope="module", params=sorted(WRITERS))
def tiny_run(request, tmp_path_factory):
    """(dataset, run folder, labeled file, the same rows without the label column)."""
    dataset = request.param
    folder = tmp_path_factory.mktemp(dataset)
    run, data = train_tiny(folder, dataset)
    label_at, sep = WRITERS[dataset][2], SEPARATORS[dataset]
    unlabeled = strip_field(data, folder / f"test{data.suffix}", label_at, sep)
    return dataset, run, data, unlabeled


@pytest.fixture(scope="module")
def skipping_run(tmp_path_factory):
    """A Criteo run whose `data.on_bad_line` is skip."""
    folder = tmp_path_factory.mktemp("skip")
    run, data = train_tiny(folder, "criteo", on_bad_line="skip")
    return run, data, strip_field(data, folder / "test.txt", 0, "\t")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_unlabeled_rows_predict_as_the_labeled_ones(tiny_run, tmp_path, capsys):
    dataset, run, data, unlabeled = tiny_run
    expected = recloss.predict(run, data)
    got = recloss.predict(run, unlabeled)
    assert got.shape == expected.shape == (200,)
    np.testing.assert_array_equal(got, expected)  # row by row, the same encoding and model

    out_path = tmp_path / "preds.csv"
    code, out, err = cli(capsys, "predict", run, "--data", unlabeled, "--output", out_path)
    assert code == 0, err
    assert out == f"wrote 200 predictions (one row per input row, in order) to {out_path}\n"
    assert out_path.read_text().startswith("probability\n")
    written = pa_csv.read_csv(out_path).column("probability").to_numpy()
    assert abs(written - expected).max() < 1e-6


def test_encode_file_detects_forces_or_requires_the_label(tiny_run):
    dataset, run, data, unlabeled = tiny_run
    ds = prepare_dataset(RunDir(run).read_config().data)
    split = ds.encode_file(unlabeled)
    assert not split.labeled and len(split) == 200 and split.bad_lines == 0
    assert ds.encode_file(data).labeled
    if dataset == "criteo":  # header-less: a labeled line has a field too many
        with pytest.raises(DataError, match=rf"^{re.escape(str(data))}:1: expected 39 fields"):
            ds.encode_file(data, labeled=False)
    else:  # with a header, the label column is left out
        forced = ds.encode_file(data, labeled=False)
        assert not forced.labeled
        np.testing.assert_array_equal(forced.x_cat, split.x_cat)
    with pytest.raises(RecLossError):
        ds.encode_file(unlabeled, labeled=True)  # the label is required, as in training


def test_eval_on_an_unlabeled_file_is_one_line(tiny_run, capsys):
    _, run, _, unlabeled = tiny_run
    code, out, err = cli(capsys, "eval", run, "--data", unlabeled)
    assert code == 2 and out == ""
    assert err == f"recloss: error: {unlabeled} has no label column: use recloss predict\n"
    with pytest.raises(DataError, match="has no label column: use recloss predict"):
        recloss.evaluate(run, unlabeled)


def test_skipped_bad_lines_are_counted_and_the_rest_keep_their_order(skipping_run, capsys):
    run, data, unlabeled = skipping_run
    bad = spoil(unlabeled, 7, 2, "abc", "\t")  # I3 of line 7 is not an integer
    # 199 rows in a batch, not 200: the forward pass may differ in the last float bit
    expected = np.delete(recloss.predict(run, data), 6)
    np.testing.assert_allclose(recloss.predict(run, bad), expected, rtol=0, atol=1e-6)
    written = predict_to_file(run, bad, bad.with_name("preds.csv"))
    assert (written.rows, written.skipped_lines) == (len(expected), 1)

    out_path = bad.with_name("preds.parquet")
    code, out, err = cli(capsys, "predict", run, "--data", bad, "--output", out_path)
    assert code == 0, err
    assert out.strip() == (
        "wrote 199 predictions (one row per input row, in order; 1 skipped bad line got no row) "
        f"to {out_path}"
    )
    np.testing.assert_allclose(
        pq.read_table(out_path).column("probability").to_numpy(), expected, rtol=0, atol=1e-6
    )


BAD_FIELD = {  # a field of an unlabeled line, and what is wrong when it holds "x"
    "criteo": (0, "I1: 'x' is not an integer"),
    "avazu": (1, "hour 'x' is not a YYMMDDHH time"),  # id, hour, C1, ...
    "csv": (2, "size: 'x' is not a number"),  # color, shape, size, weight
}


def test_with_on_bad_line_error_predict_names_file_and_line(tiny_run, tmp_path, capsys):
    dataset, run, _, unlabeled = tiny_run
    bad = tmp_path / unlabeled.name
    bad.write_bytes(unlabeled.read_bytes())
    field, problem = BAD_FIELD[dataset]
    spoil(bad, 5, field, "x", SEPARATORS[dataset])
    code, out, err = cli(capsys, "predict", run, "--data", bad, "--output", tmp_path / "p.csv")
    assert code == 2 and out == ""
    assert err == f"recloss: error: {bad}:5: {problem}\n"
    assert not (tmp_path / "p.csv").exists()


def test_a_frame_or_parquet_without_the_label_predicts(tmp_path):
    run, data = train_tiny(tmp_path, "csv")
    table = pa_csv.read_csv(data)
    expected = recloss.predict(run, table)
    np.testing.assert_array_equal(recloss.predict(run, table.drop_columns(["label"])), expected)
    with pytest.raises(DataError, match="^frame has no label column: use recloss predict$"):
        recloss.evaluate(run, table.drop_columns(["label"]))

    pq.write_table(table, tmp_path / "train.parquet")
    cfg = {
        "data": {"dataset": "parquet", "path": str(tmp_path / "train.parquet"), "table": TABLE,
                 "cache_dir": str(tmp_path / "cache")},
        "model": {"embed_dim": 4},
        "train": {"epochs": 1, "batch_size": 64, "progress": False},
    }  # fmt: skip
    run = recloss.train(cfg, run_dir=tmp_path / "parquet-run").run_dir
    pq.write_table(table.drop_columns(["label"]), tmp_path / "test.parquet")
    np.testing.assert_array_equal(
        recloss.predict(run, tmp_path / "test.parquet"),
        recloss.predict(run, tmp_path / "train.parquet"),
    )


def test_header_less_csv_leaves_the_label_position_out(tmp_path):
    write_csv(tmp_path / "train.csv", rows=200, header=False)
    table = {"label": "0", "categorical": ["1", "2"], "numeric": ["3", "4"], "header": False}
    cfg = {
        "data": {"dataset": "csv", "path": str(tmp_path / "train.csv"), "table": table,
                 "cache_dir": str(tmp_path / "cache")},
        "model": {"embed_dim": 4},
        "train": {"epochs": 1, "batch_size": 64, "progress": False},
    }  # fmt: skip
    run = recloss.train(cfg, run_dir=tmp_path / "run").run_dir
    unlabeled = strip_field(tmp_path / "train.csv", tmp_path / "test.csv", 0, ",")
    np.testing.assert_array_equal(
        recloss.predict(run, unlabeled), recloss.predict(run, tmp_path / "train.csv")
    )


def test_libfm_keeps_requiring_the_target(tmp_path):
    from recloss.data.formats import LibFMReader

    path = write_libfm(tmp_path / "a.libfm", rows=5)
    with pytest.raises(DataError, match=r"a\.libfm:1: libFM lines start with their target"):
        LibFMReader([path], labeled=False)
    no_target = strip_field(path, tmp_path / "b.libfm", 0, " ")
    with pytest.raises(DataError, match=r"b\.libfm:1: libFM lines start with their target"):
        LibFMReader([no_target], labeled=None)
    assert LibFMReader([path], labeled=None).labeled  # a placeholder target reads as labeled


@pytest.mark.parametrize("name", ["p.csv", "p.parquet"])
def test_predictions_that_cannot_be_written_name_the_file_and_leave_the_old_one(
    tmp_path, monkeypatch, name
):
    from recloss.runs import save_predictions

    path = save_predictions(np.array([0.25, 0.75]), tmp_path / name)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pa_csv, "write_csv", disk_full)
    monkeypatch.setattr(pq, "write_table", disk_full)
    with pytest.raises(OSError, match=rf"^{re.escape(str(path))}: could not be written, with "):
        save_predictions(np.array([0.5, 0.5]), path)
    assert [p.name for p in tmp_path.iterdir()] == [name] and path.read_bytes() == before


def test_training_on_criteos_unlabeled_layout_says_what_it_is(tmp_path):
    data = strip_field(write_criteo(tmp_path / "t.txt", rows=50), tmp_path / "test.txt", 0, "\t")
    cfg = {"data": {"dataset": "criteo", "path": str(data), "cache_dir": str(tmp_path / "c")}}
    with pytest.raises(DataError) as err:
        recloss.train(cfg, out=str(tmp_path / "runs"))
    assert str(err.value) == (
        f"{data}: lines of 39 fields, without the label, as in Kaggle's test.txt; this needs "
        "labeled lines (recloss predict scores such a file)"
    )
    lines = write_criteo(tmp_path / "train.txt", rows=50).read_text().splitlines()
    lines[0] = lines[0].split("\t", 1)[1]  # one short line is a bad line, skipped as such
    (tmp_path / "train.txt").write_text("".join(f"{line}\n" for line in lines))
    cfg["data"] |= {"path": str(tmp_path / "train.txt"), "on_bad_line": "skip"}
    dataset = prepare_dataset(recloss.runs.resolve_config(cfg).data)
    assert sum(dataset.meta["rows"].values()) == 49 and dataset.meta["bad_lines"] == 1


def test_eval_on_rows_of_one_class_says_auc_is_undefined(tmp_path, capsys):
    run, data = train_tiny(tmp_path, "csv")
    header, *lines = data.read_text().splitlines()
    positives = tmp_path / "positives.csv"
    positives.write_text("".join(f"{x}\n" for x in [header, *(s for s in lines if s[0] == "1")]))
    code, out, _ = cli(capsys, "eval", run, "--data", positives)
    assert code == 0 and out.splitlines()[0] == "auc      undefined: the rows hold one class"
    assert re.fullmatch(r"logloss  \d\.\d{4}", out.splitlines()[1])
