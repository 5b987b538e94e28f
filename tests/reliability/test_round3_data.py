"""Issue 30 (reliability, third round), data that changed results silently or was
reported unclearly: CSV values too large to standardise, duplicate CSV columns, a latin-1
CSV, a horizon longer than the series, a byte-order mark and overlong lines in a seq2seq
file, a one-pair file, and seeds that did not name their argument.

Every test here failed before the fix (item numbers are the issue's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnlab.data import DataError, series
from rnnlab.seq2seq import data as s2s_data


def _write(tmp_path: Path, text: str | bytes, name: str = "s.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _series_csv(tmp_path: Path, values: list[str]) -> Path:
    return _write(tmp_path, "t,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))


def _windows(path: Path) -> series.ForecastWindows:
    values = series.read_csv_column(path, "y")
    return series.forecast_windows(values, 4, 1, valid_fraction=0.2, where=str(path))


# ------------------------------------------------------------ item 12: huge values
def test_item12_a_value_too_large_for_the_model_in_the_validation_part(tmp_path):
    values = [f"{np.sin(i / 3):.4f}" for i in range(60)]
    values[55] = "1e308"
    path = _series_csv(tmp_path, values)
    with pytest.raises(DataError, match=r"s\.csv, row 56 \(in the validation part\): the "
                                        r"value 1e\+308 .* more than float32 can hold"):
        _windows(path)


def test_item12_a_value_whose_square_overflows_in_the_training_part(tmp_path):
    values = [f"{np.cos(i / 5):.4f}" for i in range(60)]
    values[10] = "1e200"
    path = _series_csv(tmp_path, values)
    with pytest.raises(DataError, match=r"row 11: the value 1e\+200 is too large to "
                                        r"standardise .* standard deviation overflows"):
        _windows(path)


def test_item12_large_values_that_standardise_well_are_kept(tmp_path):
    path = _series_csv(tmp_path, [f"{1e30 * (1 + np.sin(i)):.6g}" for i in range(60)])
    windows = _windows(path)
    assert np.isfinite(windows.train[0]).all() and windows.train[0].dtype == np.float32
    assert series.forecast_windows(np.arange(60.0), 4, dtype=np.float64).train[0].dtype \
        == np.float64


# --------------------------------------------------------- item 13: duplicate columns
def test_item13_a_duplicated_column_name_is_refused_naming_the_columns(tmp_path):
    path = _write(tmp_path, "t, y ,x,y\n0,1,2,3\n1,4,5,6\n")
    with pytest.raises(DataError, match=r"the header names 2 columns 'y' \(columns 2, 4 of "
                                        r"4\); rename them"):
        series.read_csv_column(path, "y")
    assert series.read_csv_column(path, "x").tolist() == [2.0, 5.0]  # unambiguous


# ---------------------------------------------------- item 18: CSV and horizon messages
def test_item18_a_latin1_csv_is_reported_at_its_line_and_byte(tmp_path):
    path = _write(tmp_path, "t,y\n0,1\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"s\.csv, line 3: not valid UTF-8 at byte offset "
                                        r"13 \(bytes e9") as caught:
        series.read_csv_column(path, "y")
    assert "line 0" not in str(caught.value)


def test_item18_a_horizon_longer_than_the_series_is_explained(tmp_path):
    with pytest.raises(DataError) as caught:
        series.forecast_windows(np.arange(120.0), 24, 500, valid_fraction=0.2, where="s.csv")
    message = str(caught.value)
    assert "-380" not in message and "(-" not in message
    assert "leaves nothing to train on: the validation part alone takes 500 rows" in message
    with pytest.raises(DataError, match=r"leaves the training part 19 rows, and it needs at "
                                        r"least 25"):
        series.forecast_windows(np.arange(24.0), 24, 1, valid_fraction=0.2, where="s.csv")


def test_item18_a_byte_order_mark_is_still_dropped_from_a_csv(tmp_path):
    path = _write(tmp_path, "\ufeffy\n1\n2\n")
    assert series.read_csv_column(path, "y").tolist() == [1.0, 2.0]


# --------------------------------------------------------- items 10, 19: seq2seq files
def test_item10_a_byte_order_mark_does_not_change_the_seq2seq_data(tmp_path):
    lines = "16+75  _91  \n3+4    _7   \n100+1  _101 \n"
    plain = s2s_data.read_pairs(_write(tmp_path, lines, "plain.txt"))
    marked = s2s_data.read_pairs(_write(tmp_path, "\ufeff" + lines, "bom.txt"))
    assert marked.questions == plain.questions and marked.questions[0] == "16+75  "
    codec = s2s_data.Codec.build(marked)
    assert codec.source_width == 7 and "\ufeff" not in codec.vocab.stoi


def test_item19_an_overlong_question_is_refused_naming_the_line(tmp_path):
    path = _write(tmp_path, "1+1_2\n" + "9" * 20_000 + "_1\n", "long.txt")
    with pytest.raises(DataError, match=r"line 2 has a question of 20,000 characters, more "
                                        r"than the 1,000 allowed \(max_length\)"):
        s2s_data.read_pairs(path)
    assert len(s2s_data.read_pairs(path, max_length=20_000)) == 2
    with pytest.raises(DataError, match="line 1 has an answer of 3 characters"):
        s2s_data.read_pairs(_write(tmp_path, "1_123\n", "a.txt"), max_length=2)
    with pytest.raises(ValueError, match="max_length expected an int >= 1"):
        s2s_data.read_pairs(path, max_length=0)
    assert s2s_data.MAX_SEQUENCE_LENGTH >= 64


def test_item19_a_seq2seq_file_that_is_a_device_is_refused():
    with pytest.raises(DataError, match="is a character device, not a regular file"):
        s2s_data.read_pairs("/dev/zero")


# ------------------------------------------------- item 18: one pair, negative seeds
def test_item18_a_one_pair_file_says_what_is_missing(tmp_path):
    pairs = s2s_data.read_pairs(_write(tmp_path, "1+1_2\n", "one.txt"))
    with pytest.raises(DataError, match=r"the data holds 1 pair; a train/test split needs "
                                        r"at least 2") as caught:
        s2s_data.split_pairs(pairs)
    assert "split_indices" not in str(caught.value)


def test_item18_a_negative_split_seed_names_its_argument(tmp_path):
    pairs = s2s_data.read_pairs(_write(tmp_path, "1+1_2\n2+2_4\n3+3_6\n", "p.txt"))
    with pytest.raises(ValueError, match=r"seed \(the split seed\) expected an int >= 0, "
                                         r"got -1"):
        s2s_data.split_pairs(pairs, -1)
