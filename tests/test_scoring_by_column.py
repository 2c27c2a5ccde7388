"""Scoring by a file's own columns: its ids beside their predictions (`recloss predict --keep`,
row for row, bad and blank lines skipped alike) and the AUC within groups (`eval --group`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from datafiles import write_csv
from sklearn.metrics import roc_auc_score
from test_predict_unlabeled import TABLE, cli, spoil, strip_field, train_tiny

import recloss
from recloss.config import config_from_dict
from recloss.errors import ConfigError
from recloss.report.rows import run_row
from recloss.runs import predict_to_file
from recloss.runs.scoring import BestModel


@pytest.fixture(scope="module")
def avazu_run(tmp_path_factory):
    """An Avazu run that skips bad lines, and its rows without `click` (ids 10000 ...)."""
    folder = tmp_path_factory.mktemp("avazu")
    run, data = train_tiny(folder, "avazu", on_bad_line="skip")
    return run, strip_field(data, folder / "test.csv", 1, ",")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A run on CSV columns (label, color, shape, size, weight) and its training file."""
    return train_tiny(tmp_path_factory.mktemp("table"), "csv")


def test_ids_are_written_beside_their_predictions_past_bad_and_blank_lines(avazu_run, capsys):
    run, unlabeled = avazu_run
    bad = spoil(unlabeled, 6, 1, "x", ",")  # line 6 (id 10004): its hour is no time
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join([*lines[:10], "", *lines[10:]]) + "\n")  # a blank line: no row
    out = bad.with_name("preds.csv")
    code, said, err = cli(capsys, "predict", run, "--data", bad, "--output", out, "--keep", "id")
    assert code == 0, err
    assert said.startswith("wrote 199 predictions")
    lines = out.read_text().splitlines()
    assert lines[0] == "id,probability" and lines[1].startswith("10000,")  # no quotes
    written = pa_csv.read_csv(out)
    expected_ids = [10_000 + i for i in range(200) if i != 4]
    assert written.column("id").to_pylist() == expected_ids
    expected = recloss.predict(run, bad)
    np.testing.assert_allclose(written.column("probability").to_numpy(), expected, atol=1e-7)


def test_a_parquet_files_columns_keep_their_types(table_run, tmp_path):
    run, data = table_run
    rows = pa_csv.read_csv(data)
    rows = rows.append_column("uid", pa.array(np.arange(100, 300), pa.int64()))
    pq.write_table(rows, tmp_path / "new.parquet")
    written = predict_to_file(run, tmp_path / "new.parquet", tmp_path / "p.parquet", keep=["uid"])
    table = pq.read_table(written.path)
    assert table.column_names == ["uid", "probability"]
    assert table.schema.field("uid").type == pa.int64()
    assert table.column("uid").to_pylist() == list(range(100, 300))


def test_in_memory_rows_keep_their_columns(table_run, tmp_path):
    run, data = table_run
    frame = pa_csv.read_csv(data).to_pandas()
    frame["name"] = [f"row {i}, of 200" for i in range(200)]  # needs quotes in CSV
    written = predict_to_file(run, frame, tmp_path / "p.csv", keep=["name"])
    back = pa_csv.read_csv(written.path)
    assert back.column("name").to_pylist() == frame["name"].tolist()
    frame["p_0"] = range(200)  # a class column's name only where the run's output has classes
    assert predict_to_file(run, frame, tmp_path / "q.csv", keep=["p_0"]).rows == 200
    np.testing.assert_allclose(
        back.column("probability").to_numpy(), recloss.predict(run, frame), atol=1e-7
    )


@pytest.mark.parametrize(
    ("keep", "message"),
    [("idx", r"--keep idx: no such column in .*test\.csv \(columns: id, hour, C1,.*\); "
             r"did you mean id\?$"),
     ("probability", "--keep probability: the name of a predictions column; rename it")],
)  # fmt: skip
def test_a_column_that_cannot_be_kept_is_refused_before_any_row_is_scored(
    avazu_run, monkeypatch, keep, message
):
    run, unlabeled = avazu_run
    monkeypatch.setattr(BestModel, "scores", lambda *a: pytest.fail("scored"))
    with pytest.raises(ConfigError, match=message):
        predict_to_file(run, unlabeled, unlabeled.with_name("p.csv"), keep=[keep])
    assert not unlabeled.with_name("p.csv").exists()


def test_a_file_of_unnamed_columns_has_none_to_keep(tmp_path):
    run, data = train_tiny(tmp_path, "criteo")
    with pytest.raises(ConfigError, match=r"^--keep: .*train\.txt has no named columns to keep$"):
        predict_to_file(run, data, tmp_path / "p.csv", keep=["0"])


def test_eval_by_group_averages_the_auc_within_each_known_value(table_run, capsys):
    run, data = table_run
    frame = pa_csv.read_csv(data).to_pandas()
    metrics = recloss.evaluate(run, frame, group="color")
    probs = recloss.predict(run, frame)
    expected = sum(
        roc_auc_score(frame.label[rows], probs[rows]) * rows.sum() / len(frame)
        for rows in (frame.color == c for c in ("red", "green", "blue"))
    )
    assert metrics["gauc"] == pytest.approx(expected, abs=1e-6)
    assert (metrics["gauc_groups"], metrics["gauc_rows"]) == (3, 1.0)
    assert all(type(value) in (float, int) for value in metrics.values())  # prints as numbers
    frame.loc[:9, "color"] = "purple"  # unknown to the model: in no group
    assert recloss.evaluate(run, frame, group="color")["gauc_rows"] == pytest.approx(0.95)
    code, out, _ = cli(capsys, "eval", run, "--data", data, "--group", "color")
    assert code == 0
    assert out.splitlines()[-1].startswith("gauc by color  0.")
    assert out.endswith("(3 groups of both classes, 100.0% of the rows)\n")


def test_eval_by_a_group_that_is_no_categorical_field_is_refused(table_run):
    message = r"^--group user: not a categorical field of the run \(color, shape, size, weight\)$"
    with pytest.raises(ConfigError, match=message):
        recloss.evaluate(table_run[0], group="user")
    with pytest.raises(ConfigError, match=r"weight\); did you mean shape\?$"):
        recloss.evaluate(table_run[0], group="shap")


def grouped_run(tmp_path, **train) -> dict:
    """The config of a small CE run on the table's CSV, with `train` settings (gauc_by, ...)."""
    return {
        "data": {"dataset": "csv", "path": str(write_csv(tmp_path / "t.csv", rows=400)),
                 "cache_dir": str(tmp_path / "cache"), "table": TABLE},
        "model": {"embed_dim": 4},
        "loss": {"name": "ce"},
        "train": {"epochs": 2, "batch_size": 64, "progress": False, **train},
    }  # fmt: skip


def test_a_run_grouped_by_a_field_records_its_validation_and_test_gauc(tmp_path, capsys):
    cfg = grouped_run(tmp_path, gauc_by="color")
    record = recloss.train(cfg, run_dir=tmp_path / "run")
    test = recloss.evaluate(record.run_dir, group="color")
    assert record.test["gauc"] == pytest.approx(test["gauc"], abs=1e-9)
    assert [sorted(entry.valid) for entry in record.history] == [["auc", "gauc", "logloss"]] * 2
    assert record.best_valid["gauc"] == record.history[record.best_epoch - 1].valid["gauc"]
    assert run_row(record)["test_gauc"] == record.test["gauc"]  # a bench's results column
    assert recloss.evaluate(record.run_dir) == test  # grouped as the run was
    code, out, _ = cli(capsys, "eval", record.run_dir)
    assert code == 0 and out.splitlines()[-1].startswith("gauc by color  0.")
    cfg["train"]["gauc_by"] = "user"
    message = r"^train\.gauc_by: not a categorical field of the run \(color, shape, size, weight\)$"
    with pytest.raises(ConfigError, match=message):
        recloss.train(cfg, run_dir=tmp_path / "other")


def test_a_run_monitoring_gauc_keeps_the_epoch_of_the_best_validation_gauc(tmp_path):
    cfg = grouped_run(tmp_path, epochs=3, monitor="gauc", gauc_by="shape")
    record = recloss.train(cfg, run_dir=tmp_path / "run")
    by_gauc = [entry.valid["gauc"] for entry in record.history]
    assert record.best_epoch == 1 + int(np.argmax(by_gauc))
    assert record.best_valid["gauc"] == max(by_gauc)
    del cfg["train"]["gauc_by"]
    with pytest.raises(ConfigError, match=r"train\.monitor: gauc needs train\.gauc_by"):
        config_from_dict(cfg)


def test_predictions_go_to_a_text_only_standard_output_as_a_notebooks(monkeypatch):
    import io

    from recloss.runs import save_predictions

    shown = io.StringIO()  # like Jupyter's stream: text, no `buffer`
    monkeypatch.setattr("sys.stdout", shown)
    save_predictions(np.array([0.25, 0.5]), "-")
    assert shown.getvalue() == "probability\n0.25\n0.5\n"


def test_a_file_with_a_header_alone_gets_a_header_alone(table_run, tmp_path, capsys):
    run, data = table_run
    empty = tmp_path / "empty.csv"
    empty.write_text(data.read_text().splitlines()[0] + "\n")  # a batch with no row yet
    assert recloss.predict(run, empty).shape == (0,)
    out = tmp_path / "p.csv"
    code, said, err = cli(
        capsys, "predict", run, "--data", empty, "--output", out, "--keep", "color"
    )
    assert code == 0, err
    assert said.startswith("wrote 0 predictions") and out.read_text() == "color,probability\n"
    code, _, err = cli(capsys, "eval", run, "--data", empty)
    assert code == 2 and err.endswith("empty.csv: no data rows\n")  # no metric of no rows
