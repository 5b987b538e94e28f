"""``rnnlab train --task forecast``: a forecaster of a CSV column through the Trainer."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from rnnlab.cli import main

HAS_MPL = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture
def sine_csv(tmp_path):
    t = np.arange(240)
    noise = 0.03 * np.random.default_rng(0).standard_normal(len(t))
    y = np.sin(2 * np.pi * t / 24) + noise
    path = tmp_path / "sine.csv"
    path.write_text("t,value\n" + "".join(f"{i},{v:.6f}\n" for i, v in zip(t, y, strict=True)),
                    encoding="utf-8")
    return path


def run_cli(argv):
    """The exit status of ``rnnlab ARGV`` (usage errors exit through argparse)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def train(args, capsys):
    status = main(["train", "--task", "forecast", "--no-progress", *args])
    out = capsys.readouterr().out
    return status, json.loads(out[out.index("{"):])


def test_forecast_end_to_end(tmp_path, sine_csv, capsys):
    run = tmp_path / "run"
    status, summary = train(["--csv", str(sine_csv), "--column", "value", "--window", "12",
                             "--epochs", "3", "--hidden-size", "12", "--out", str(run)],
                            capsys)
    assert status == 0 and summary["epochs"] == 3
    losses = [json.loads(line)["loss"] for line in
              (run / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "valid"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert {"best.safetensors", "last.safetensors"} <= {p.name for p in run.iterdir()}
    if HAS_MPL:
        assert summary["plot"] == str(run / "forecast.png")
        assert (run / "forecast.png").stat().st_size > 0
    # the run folder's guard, then resume for more epochs
    assert main(["train", "--task", "forecast", "--csv", str(sine_csv), "--column", "value",
                 "--out", str(run), "--no-progress"]) == 1
    assert "already holds a run" in capsys.readouterr().err
    status, summary = train(["--resume", str(run), "--epochs", "4", "--plot", ""], capsys)
    assert status == 0 and summary["epochs"] == 4 and summary["plot"] is None


def test_forecast_without_matplotlib_skips_the_plot(tmp_path, sine_csv, capsys, monkeypatch):
    import rnnlab.families.forecast as run_module

    def no_mpl(*args, **kwargs):
        raise ImportError("plotting needs matplotlib, which is not installed")

    monkeypatch.setattr(run_module, "save_forecast", no_mpl)
    status = main(["train", "--task", "forecast", "--csv", str(sine_csv), "--column", "value",
                   "--window", "12", "--epochs", "1", "--hidden-size", "4", "--out",
                   str(tmp_path / "run"), "--no-progress"])
    captured = capsys.readouterr()
    assert status == 0
    assert "plot skipped: plotting needs matplotlib" in captured.out + captured.err
    assert not (tmp_path / "run" / "forecast.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--column", "price"], "has no column 'price'; its columns are 't', 'value'"),
    (["--column", "value", "--window", "230"], "too few rows (240) for window 230"),
    (["--corpus", "ptb", "--column", "value"], "--task forecast does not take --corpus"),
    (["--column", "value", "--cell", "mingru"], "--task forecast expected lstm, gru or rnn"),
])
def test_forecast_errors(tmp_path, sine_csv, capsys, args, message):
    status = run_cli(["train", "--task", "forecast", "--csv", str(sine_csv), "--out",
                   str(tmp_path / "run"), *args])
    assert status in (1, 2)
    assert message in capsys.readouterr().err


def test_forecast_options_need_the_task(capsys):
    assert run_cli(["train", "--csv", "x.csv"]) == 2
    assert "--csv is an option of --task forecast" in capsys.readouterr().err
    assert run_cli(["train", "--task", "forecast", "--column", "v"]) == 2
    assert "expected --csv" in capsys.readouterr().err


def test_forecast_csv_error_names_row(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("t,value\n0,1\n1,x\n", encoding="utf-8")
    assert main(["train", "--task", "forecast", "--csv", str(path), "--column", "value",
                 "--out", str(tmp_path / "run")]) == 1
    assert "row 2 (line 3), column 'value': expected a number, got 'x'" in \
        capsys.readouterr().err
