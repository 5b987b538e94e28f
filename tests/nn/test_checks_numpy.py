"""The shared argument checks take NumPy integers wherever they take Python ints (issue 26,
item 11), and still refuse bools."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.checks import check_positive_int, check_probability


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_positive_int_takes_numpy_integers(value):
    result = check_positive_int(value, "Layer", "size")
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [0, np.int64(0), 0.5, np.float32(0.5)])
def test_probability_takes_numpy_integers_and_floats(value):
    result = check_probability(value, "Dropout", "p")
    assert result == float(value) and type(result) is float


@pytest.mark.parametrize("check", [check_positive_int, check_probability])
@pytest.mark.parametrize("value", [True, np.bool_(False)])
def test_bools_are_refused(check, value):
    with pytest.raises(TypeError, match="Layer: arg expected"):
        check(value, "Layer", "arg")
