"""``plot curves`` on metrics that hold NaN, infinities, numbers too large to draw, steps
that are not numbers, or bytes that are not UTF-8 (issue 26, item 11): what is finite is
drawn and what was left out is said; a log with nothing to draw, or one that cannot be
read, is a one-line error naming the file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.viz.curves import load_run

METRICS = """\
{"event": "train", "step": 10, "loss": 3.0, "ppl": 20.0, "lr": 0.01}
{"event": "train", "step": 20, "loss": NaN, "ppl": NaN, "lr": 0.01}
{"event": "train", "step": 30, "loss": Infinity, "ppl": Infinity, "lr": 0.01}
{"event": "train", "step": 40, "loss": 1.7e308, "ppl": -Infinity, "lr": 1.7e308}
{"event": "train", "step": Infinity, "loss": 2.0, "ppl": 7.0, "lr": 0.01}
{"event": "train", "step": NaN, "loss": 2.0, "ppl": 7.0, "lr": 0.01}
{"event": "train", "step": -1.7e308, "loss": 2.0, "ppl": 7.0, "lr": 0.01}
{"event": "train", "step": 50, "loss": 2.2, "ppl": 9.0, "lr": 0.01}
{"event": "valid", "step": 50, "loss": 2.5, "ppl": 12.0, "lr": 0.01}
{"event": "divergence", "step": NaN}
{"event": "divergence", "step": 30}
{"event": "test", "step": NaN, "loss": 2.4, "ppl": 11.0}
"""


def test_load_run_skips_steps_that_are_not_numbers(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    path.write_text(METRICS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    c = load_run("metrics.jsonl")
    assert c.name == tmp_path.name  # the folder's name, also for a relative path
    steps, loss = c.train["loss"]
    assert steps.tolist() == [10, 20, 30, 40, 50]
    assert loss[0] == 3.0 and math.isnan(loss[1]) and loss[2] == math.inf
    assert c.divergences == [30]
    assert c.skipped == 4  # three train records and one divergence without a usable step
    assert "step" not in c.test and c.test["loss"] == 2.4


def test_curves_with_nan_and_infinity_draw_what_is_finite(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the viz extra is not installed")
    from rnnlab.viz.curves import plot_training_curves

    path = tmp_path / "metrics.jsonl"
    path.write_text(METRICS, encoding="utf-8")
    fig = plot_training_curves(path, dpi=40)  # not saved: the command line below saves one
    ax_loss, ax_ppl, ax_lr = fig.axes[:3]
    for ax in (ax_loss, ax_ppl, ax_lr):
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float)
            assert np.all(np.isfinite(y)) and np.all(np.abs(y) < 1e300)
    train = next(line for line in ax_loss.get_lines() if line.get_label().endswith("train"))
    assert list(train.get_xdata()) == [10, 50]
    note = " ".join(t.get_text() for t in fig.texts)
    assert "left out" in note and "NaN" in note and "4 records without a usable step" in note

    assert main(["plot", "curves", str(path), "--out", str(tmp_path / "d.png")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'd.png'}"


def test_curves_with_nothing_finite_say_so(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the viz extra is not installed")
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"event": "train", "step": 10, "loss": NaN, "ppl": NaN, "lr": NaN}\n'
                    '{"event": "valid", "step": 10, "loss": Infinity, "ppl": Infinity}\n',
                    encoding="utf-8")
    assert main(["plot", "curves", str(path), "--out", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert "no finite loss, perplexity or learning rate" in err
    assert not (tmp_path / "c.png").exists()


def test_metrics_that_are_not_utf8_name_the_file(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"event": "train", "step": 1, "loss": 2.0}\n\xff\xfe\x00 binary\n')
    assert main(["plot", "curves", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err and "not UTF-8" in err and "byte 43" in err


def test_curves_whose_steps_are_all_unusable_say_so(tmp_path):
    pytest.importorskip("matplotlib", reason="the viz extra is not installed")
    from rnnlab.viz.curves import plot_training_curves

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"event": "train", "step": NaN, "loss": 2.0, "ppl": 7.0}\n'
                    '{"event": "train", "step": 1.5, "loss": 2.0, "ppl": 7.0}\n',
                    encoding="utf-8")
    with pytest.raises(ValueError, match=r"no train or valid records with a usable step "
                                         r"\(2 records have a step that is not a whole"):
        plot_training_curves(path)
