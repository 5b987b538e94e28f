"""rnnlab.data.series: CSV columns, windows, the split in time (no leakage)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rnnlab.data import DataError
from rnnlab.data.series import forecast_windows, make_windows, read_csv_column


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_make_windows_shapes_and_values():
    x = np.arange(10.0)
    inputs, targets = make_windows(x, 4)
    assert inputs.shape == (6, 4, 1) and targets.shape == (6, 1)
    assert inputs.dtype == np.float32
    np.testing.assert_array_equal(inputs[2, :, 0], [2, 3, 4, 5])
    np.testing.assert_array_equal(targets[:, 0], np.arange(4, 10))
    inputs, targets = make_windows(x, 4, horizon=3)
    assert inputs.shape == (4, 4, 1) and targets.shape == (4, 3)
    np.testing.assert_array_equal(targets[-1], [7, 8, 9])
    inputs, targets = make_windows(x, 4, many_to_many=True, stride=2)
    assert inputs.shape == (3, 4, 1) and targets.shape == (3, 4, 1)
    np.testing.assert_array_equal(targets[1, :, 0], [3, 4, 5, 6])


def test_make_windows_errors():
    with pytest.raises(ValueError, match="window expected an int >= 1, got 0"):
        make_windows(np.arange(5.0), 0)
    with pytest.raises(ValueError, match="at least window \\+ horizon = 6 values, got 5"):
        make_windows(np.arange(5.0), 4, 2)
    with pytest.raises(ValueError, match="1-D series, got shape \\(2, 3\\)"):
        make_windows(np.zeros((2, 3)), 1)


@pytest.mark.parametrize("horizon", [1, 3])
def test_forecast_windows_no_leakage(horizon):
    n, window = 100, 8
    fw = forecast_windows(np.arange(float(n)), window, horizon, valid_fraction=0.25)
    assert fw.split == 75
    to_t = lambda v: np.rint(fw.to_series(v)).astype(int)  # noqa: E731
    train_in, train_out = fw.train
    valid_in, valid_out = fw.valid
    assert train_in.shape[1:] == (window, 1) and train_out.shape[1:] == (horizon,)
    # every training value, input or target, comes before the split
    assert to_t(train_in).max() < fw.split and to_t(train_out).max() < fw.split
    # every validation target comes at or after it, the last value of the series included
    assert to_t(valid_out).min() == fw.split and to_t(valid_out).max() == n - 1
    # a validation window reads the values just before its targets
    np.testing.assert_array_equal(to_t(valid_in[:, -1, 0]) + 1, to_t(valid_out[:, 0]))
    np.testing.assert_array_equal(to_t(valid_out[:, 0]), fw.valid_times)
    # standardised by the training part only
    assert fw.mean == pytest.approx(np.arange(75.0).mean())
    assert fw.std == pytest.approx(np.arange(75.0).std())


def test_forecast_windows_too_few_rows():
    with pytest.raises(DataError, match=r"data\.csv, column 'v': too few rows \(14\) for "
                                        r"window 10 and horizon 2.*give at least 15 rows"):
        forecast_windows(np.arange(14.0), 10, 2, where="data.csv, column 'v'")
    forecast_windows(np.arange(15.0), 10, 2)
    with pytest.raises(ValueError, match=re.escape("valid_fraction expected a number in "
                                                   "(0, 1), got 1.5")):
        forecast_windows(np.arange(50.0), 4, valid_fraction=1.5)


def test_read_csv_column(tmp_path):
    path = write(tmp_path, "t,value\n0,1.5\n1,-2\n\n2, 3e1 \n")
    np.testing.assert_array_equal(read_csv_column(path, "value"), [1.5, -2.0, 30.0])


def test_read_csv_missing_column(tmp_path):
    path = write(tmp_path, "t,value\n0,1\n")
    with pytest.raises(DataError, match=f"{path}: has no column 'price'; its columns are "
                                        f"'t', 'value'"):
        read_csv_column(path, "price")


def test_read_csv_not_a_number(tmp_path):
    path = write(tmp_path, "t,value\n0,1\n1,2\n2,abc\n")
    with pytest.raises(DataError, match=f"{path}, row 3 \\(line 4\\), column 'value': "
                                        f"expected a number, got 'abc'"):
        read_csv_column(path, "value")
    path = write(tmp_path, "t,value\n0,1\n1,nan\n")
    with pytest.raises(DataError, match="row 2 \\(line 3\\), column 'value': expected a "
                                        "finite number, got 'nan'"):
        read_csv_column(path, "value")
    path = write(tmp_path, "t,value\n0,1\n1\n")
    with pytest.raises(DataError, match="row 2 \\(line 3\\), column 'value': the row has 1 "
                                        "cell"):
        read_csv_column(path, "value")


def test_read_csv_no_rows_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="column 'value' has no rows"):
        read_csv_column(write(tmp_path, "t,value\n"), "value")
    with pytest.raises(DataError, match="is empty"):
        read_csv_column(write(tmp_path, ""), "value")
    with pytest.raises(DataError, match=r"missing\.csv: no such file"):
        read_csv_column(tmp_path / "missing.csv", "value")
