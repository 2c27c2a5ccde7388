"""libFM values: parsed, 1 required; lines of another width are bad lines naming the layout."""

from __future__ import annotations

import pytest
from datafiles import data_config

from recloss.data import prepare_dataset
from recloss.errors import DataError


def write(tmp_path, *lines: str):
    path = tmp_path / "f.libfm"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def prepare(tmp_path, path, **settings):
    return prepare_dataset(data_config(tmp_path, "libfm", path, **settings), progress=False)


def test_values_written_as_one_in_any_form_are_read(tmp_path):
    path = write(tmp_path, "1 3:1 7:1", "-1 4:1.0 7:1e0", "0 3:1.00 8:1")
    ds = prepare(tmp_path, path)
    assert ds.split("train").y.tolist() == [1, 0, 0]
    assert ds.schema.cat_fields == ("f1", "f2")


def test_a_non_numeric_value_names_its_file_and_line(tmp_path):
    path = write(tmp_path, "1 3:1 7:1", "1 3:1 7:1", "-1 4:1 7:yes")
    with pytest.raises(DataError, match=r"f\.libfm:3: feature 2 value: 'yes' is not a number"):
        prepare(tmp_path, path)


def test_a_non_numeric_value_is_a_bad_line_to_skip(tmp_path):
    path = write(tmp_path, "1 3:1 7:1", "-1 4:1 7:yes", "-1 4:1 8:1")
    ds = prepare(tmp_path, path, on_bad_line="skip")
    assert ds.meta["bad_lines"] == 1 and ds.meta["total_rows"] == 2


@pytest.mark.parametrize("on_bad_line", ["error", "skip"])
def test_a_value_other_than_one_is_refused(tmp_path, on_bad_line):
    path = write(tmp_path, "1 3:1 7:1", "-1 4:0.25 7:1")
    with pytest.raises(DataError, match=r"f\.libfm:2: feature 1 '4:0\.25' has value 0\.25; "):
        prepare(tmp_path, path, on_bad_line=on_bad_line)


def test_a_line_of_another_width_says_which_layout_is_expected(tmp_path):
    path = write(tmp_path, "1 3:1 7:1 9:1", "-1 4:1 9:1")
    with pytest.raises(DataError, match=r"f\.libfm:2: expected 4 tokens, found 3: "):
        prepare(tmp_path, path)
    with pytest.raises(DataError, match=r"one feature per field in field order"):
        prepare(tmp_path, path)


def test_lines_of_another_width_can_be_skipped(tmp_path):
    path = write(tmp_path, "1 3:1 7:1", "-1 4:1 7:1 9:1", "-1 4:1 8:1")
    ds = prepare(tmp_path, path, on_bad_line="skip")
    assert ds.meta["bad_lines"] == 1 and ds.split("train").y.tolist() == [1, 0]
