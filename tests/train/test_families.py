"""Every model family trains through the one Trainer: the loss falls, checkpoints are
written, and a resumed run continues bit for bit like an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.models import SequenceClassifier, SequenceRegressor
from rnnlab.train import CheckpointError, ExampleBatches, Examples, TrainConfig, Trainer
from rnnlab.train.checkpoint import read_checkpoint
from rnnlab.train.metrics import read_metrics
from tests.train.conftest import params_of


def config(**kw):
    args = {"epochs": 4, "batch_size": 8, "optimizer": "adam", "lr": 0.02, "clip_norm": 1.0,
            "log_every": 2, "checkpoint_every": 5, "snapshot_every": 3, "progress": False,
            "seed": 0, **kw}
    return TrainConfig(**args)


def regression_data():
    rng = np.random.default_rng(0)
    t = np.arange(400)
    x = np.sin(2 * np.pi * t / 20) + 0.05 * rng.standard_normal(400)
    starts = np.arange(0, 380, 3)
    xs = np.stack([x[s:s + 12] for s in starts])[:, :, None]
    ys = x[starts + 12][:, None]
    return {"train": Examples(xs[:100], ys[:100]), "valid": Examples(xs[100:], ys[100:])}


def classification_data():
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((96, 7, 2))
    lengths = rng.integers(3, 8, size=96)
    mask = np.arange(7)[None, :] < lengths[:, None]
    labels = ((xs[:, :, 0] * mask).sum(axis=1) > 0).astype(np.int64)
    return {"train": Examples(xs[:64], labels[:64], lengths[:64]),
            "valid": Examples(xs[64:80], labels[64:80], lengths[64:80]),
            "test": Examples(xs[80:], labels[80:], lengths[80:])}


FAMILIES = {
    "regressor": (lambda seed: SequenceRegressor(1, 8, num_layers=2, dropout=0.2, rng=seed),
                  regression_data),
    "classifier": (lambda seed: SequenceClassifier(2, 8, 2, num_layers=2, dropout=0.2,
                                                   pooling="mean", rng=seed),
                   classification_data),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_trains_and_resumes_bit_for_bit(tmp_path, family):
    build, data_of = FAMILIES[family]
    data = data_of()
    straight = build(0)
    summary = Trainer(straight, data, config(), tmp_path / "s", echo=lambda m: None).fit()
    records = read_metrics(tmp_path / "s" / "metrics.jsonl")
    train = [r["loss"] for r in records if r["event"] == "train"]
    assert len(train) >= 4 and np.mean(train[-2:]) < np.mean(train[:2])
    valid = [r["loss"] for r in records if r["event"] == "valid"]
    assert valid[-1] < valid[0] and summary["steps"] == 4 * -(-len(data["train"]) // 8)
    _, meta = read_checkpoint(tmp_path / "s" / "best.safetensors")
    assert meta["kind"] == family and "ppl" not in records[-1]
    if family == "classifier":
        assert 0 <= summary["test_accuracy"] <= 1
        assert any("accuracy" in r for r in records if r["event"] == "valid")

    part = build(0)
    Trainer(part, data, config(max_steps=11), tmp_path / "r", echo=lambda m: None).fit()
    resumed = build(5)  # other weights and dropout stream: everything comes from the file
    trainer = Trainer(resumed, data, config(), tmp_path / "r", echo=lambda m: None)
    trainer.restore(tmp_path / "r" / "last.safetensors")
    assert trainer.progress.step == 11
    trainer.fit()
    for name, value in params_of(straight).items():
        np.testing.assert_array_equal(params_of(resumed)[name], value, err_msg=name)


def test_a_checkpoint_of_another_family_or_data_is_refused(tmp_path):
    Trainer(FAMILIES["regressor"][0](0), regression_data(), config(max_steps=2),
            tmp_path / "r", echo=lambda m: None).fit()
    clf = Trainer(FAMILIES["classifier"][0](0), classification_data(), config(),
                  tmp_path / "c", echo=lambda m: None)
    with pytest.raises(CheckpointError, match="holds a 'regressor' model, expected 'classifier'"):
        clf.restore(tmp_path / "r" / "last.safetensors")
    other = regression_data()
    other["train"].inputs[0, 0, 0] += 1.0
    again = Trainer(FAMILIES["regressor"][0](0), other, config(), tmp_path / "x",
                    echo=lambda m: None)
    with pytest.raises(CheckpointError, match="the corpus differs"):
        again.restore(tmp_path / "r" / "last.safetensors")


def test_bad_inputs_name_the_argument(tmp_path):
    model = FAMILIES["classifier"][0](0)
    data = classification_data()
    with pytest.raises(ValueError, match="expected a 'valid' split"):
        Trainer(model, {"train": data["train"]}, config(), tmp_path / "a")
    with pytest.raises(TypeError, match="model expected an RNNLM, a SequenceRegressor"):
        Trainer(object(), data, config(), tmp_path / "b")
    with pytest.raises(TypeError, match="train expected Examples or a tuple"):
        Trainer(model, {"train": [1], "valid": data["valid"]}, config(), tmp_path / "c")
    bad = {**data, "valid": Examples(data["valid"].inputs, data["valid"].targets + 5)}
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\)"):
        Trainer(model, bad, config(), tmp_path / "d")
    with pytest.raises(ValueError, match=r"targets expected 3 >= 1 rows"):
        Examples(np.zeros((3, 2, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="batch_size expected an int >= 1, got 0"):
        ExampleBatches(4, 0, lambda i: (i,))
