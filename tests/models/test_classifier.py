"""SequenceClassifier: shapes, gradients by finite differences in float64, errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.gradcheck import check_gradients
from rnnlab.models import SequenceClassifier


@pytest.mark.parametrize("cell,pooling,bidirectional", [
    ("lstm", "last", False), ("gru", "mean", True), ("rnn", "last", True),
    ("lstm", "mean", False)])
def test_gradients_match_finite_differences(cell, pooling, bidirectional):
    rng = np.random.default_rng(0)
    model = SequenceClassifier(3, 4, 3, num_layers=2, cell=cell, pooling=pooling,
                               bidirectional=bidirectional, rng=0, dtype=np.float64)
    xs = rng.standard_normal((3, 5, 3))
    labels = np.array([0, 2, 1])
    lengths = np.array([5, 2, 4])

    def loss() -> float:
        return model.forward_loss(xs, labels, lengths=lengths)

    model.zero_grad()
    loss()
    dxs = model.backward()
    checks = {name: (param, grad) for name, param, grad in model.named_parameters_and_grads()}
    checks["xs"] = (xs, dxs)
    report = check_gradients(loss, checks)
    assert report.passed, str(report)
    # steps past a sequence's length get no gradient
    assert not dxs[1, 2:].any()


def test_predict_and_errors():
    model = SequenceClassifier(2, 4, 3, rng=0)
    xs = np.zeros((2, 3, 2), dtype=np.float32)
    assert model.forward(xs).shape == (2, 3) and model.predict(xs).shape == (2,)
    assert "pooling=last, num_classes=3" in repr(model)
    with pytest.raises(ValueError, match="pooling expected one of"):
        SequenceClassifier(2, 4, 3, pooling="max")
    with pytest.raises(ValueError, match="num_classes expected an int >= 2, got 1"):
        SequenceClassifier(2, 4, 1)
    with pytest.raises(ValueError, match=r"labels expected ids in \[0, 3\), got values in"):
        model.forward_loss(xs, np.array([0, 3]))
    with pytest.raises(TypeError, match="labels expected integer class ids"):
        model.forward_loss(xs, np.array([0.0, 1.0]))
