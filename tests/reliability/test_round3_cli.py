"""Issue 30 (reliability, third round): the library's fixes as the command line uses them.

Figures written atomically and never through a planted link (item 1), ``--config`` read
as a bounded regular file (4), ``export --overwrite`` (8), the forecaster's windows in the
model's dtype (12), ``plot activations`` refusing a bad ``--unit``/``--underline`` (14),
the checkpoint's size checked before the first step (16), ``gradcheck --samples`` (17),
the old-checkpoint notice printed as one line (11), and the launchers' new paths: a
seq2seq run whose pairs file moved (2), a mistyped ``--resume`` folder (7).

Every test here failed before the fix (item numbers are the issue's)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rnnlab.cli import main
from rnnlab.train import checkpoint
from tests.ckptdoc import rewrite_document
from tests.reliability.test_round3_launchers import (
    SERIES,
    _forecast_run,
    _said,
    _seq2seq_run,
    rnnlab,
)


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    return victim


# ------------------------------------------------------ item 1: figures, links, atomicity
def test_item1_the_forecast_figure_replaces_a_planted_link_not_its_target(tmp_path):
    pytest.importorskip("matplotlib")
    victim = _victim(tmp_path)
    folder = tmp_path / "runs" / "f"
    folder.mkdir(parents=True)
    os.symlink("../../victim.txt", folder / "forecast.png")
    csv = tmp_path / "s.csv"
    csv.write_text(SERIES, encoding="utf-8")
    done = rnnlab(tmp_path, "train", "--task", "forecast", "--csv", str(csv), "--column", "y",
                  "--window", "4", "--hidden-size", "6", "--epochs", "1", "--batch-size",
                  "8", "--out", str(folder), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    figure = folder / "forecast.png"
    assert not figure.is_symlink() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name]


def test_item1_save_figure_is_atomic_adds_png_and_never_writes_through_a_link(tmp_path):
    pytest.importorskip("matplotlib")
    from rnnlab.viz._mpl import new_figure, save_figure

    victim = _victim(tmp_path)
    fig = new_figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    os.symlink(victim, tmp_path / "plot.png")
    assert save_figure(fig, tmp_path / "plot.png") == tmp_path / "plot.png"
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert not (tmp_path / "plot.png").is_symlink()
    assert save_figure(fig, tmp_path / "bare") == tmp_path / "bare.png"
    assert (tmp_path / "bare.png").read_bytes()[:4] == b"\x89PNG"
    assert save_figure(fig, tmp_path / "vector.svg").read_text(encoding="utf-8") \
        .lstrip().startswith("<?xml")


def test_item1_the_attention_map_replaces_a_planted_link(tmp_path):
    pytest.importorskip("matplotlib")
    _, out = _seq2seq_run(tmp_path, "--decoder", "attention")
    victim = _victim(tmp_path)
    os.symlink(victim, tmp_path / "att.png")
    done = rnnlab(tmp_path, "seq2seq", "translate", str(out), "1+2", "--plot",
                  str(tmp_path / "att.png"))
    assert done.returncode == 0, done.stderr
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert (tmp_path / "att.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- item 4: --config
def test_item4_config_that_is_a_device_is_refused_at_once(tmp_path, capsys):
    assert main(["train", "--config", "/dev/zero", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "--config /dev/zero: is a character device" in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_item4_config_that_is_a_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "c.json"
    os.mkfifo(fifo)
    done = rnnlab(tmp_path, "train", "--config", str(fifo), timeout=60)
    assert done.returncode == 1 and "named pipe (FIFO)" in done.stderr, done.stderr


# ---------------------------------------------------------------- item 8: export
def test_item8_export_refuses_an_existing_file_without_overwrite(run, tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "model.pt"
    out.write_bytes(b"an earlier file")
    args = ["export", str(run / "last.safetensors"), "--format", "torch", "--out", str(out)]
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"an earlier file"
    assert main([*args, "--overwrite"]) == 0
    assert out.read_bytes() != b"an earlier file"


def test_item8_export_never_replaces_a_checkpoint_even_with_overwrite(run, capsys):
    pytest.importorskip("torch")
    best = run / "best.safetensors"
    before = best.read_bytes()
    assert main(["export", str(run / "last.safetensors"), "--format", "torch", "--out",
                 str(best), "--overwrite"]) == 2
    assert "is an rnnlab checkpoint" in capsys.readouterr().err
    assert best.read_bytes() == before


# ------------------------------------------------------ item 12: the model's dtype
def _huge_valid_csv(tmp_path: Path) -> Path:
    rows = [f"{i},{(i * 37) % 11 / 10:.2f}" for i in range(80)]
    rows[75] = "75,1e39"  # in the validation part: beyond float32 after standardising
    csv = tmp_path / "h.csv"
    csv.write_text("t,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return csv


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_item12_the_forecaster_checks_the_values_against_the_models_dtype(tmp_path, dtype):
    csv = _huge_valid_csv(tmp_path)
    done = rnnlab(tmp_path, "train", "--task", "forecast", "--csv", str(csv), "--column", "y",
                  "--window", "4", "--hidden-size", "6", "--epochs", "1", "--batch-size",
                  "8", "--out", str(tmp_path / "f"), "--no-progress", "--plot", "",
                  "--dtype", dtype)
    refused = "float32" in done.stderr and "row" in done.stderr
    if dtype == "float32":
        assert done.returncode == 1 and refused, done.stderr
        assert not (tmp_path / "f" / "last.safetensors").exists()
    else:  # float64 holds it: not refused at load (the run may still diverge)
        assert not refused, done.stderr
        assert (tmp_path / "f" / "metrics.jsonl").exists(), done.stderr


# ------------------------------------------------ item 14: the activation page's selection
@pytest.mark.parametrize("option, value, said", [
    ("--unit", "99999", "unit expected a unit of the layer, 0 to 11"),
    ("--underline", "no such property", "underline expected one of the page's properties"),
])
def test_item14_plot_activations_refuses_a_bad_selection(run, tmp_path, text_file, capsys,
                                                         option, value, said):
    page = tmp_path / "page.html"
    code = main(["plot", "activations", str(run / "best.safetensors"), "--text",
                 str(text_file), "--out", str(page), option, value])
    err = capsys.readouterr().err
    assert code == 2 and said in err, err
    assert not page.exists()


# ---------------------------------------------- item 16: the header checked before training
def test_item16_a_run_whose_checkpoint_would_be_too_large_stops_before_training(
        tmp_path, text_file, capsys, monkeypatch):
    monkeypatch.setattr(checkpoint, "MAX_HEADER_BYTES", 2_000)
    out = tmp_path / "r"
    code = main(["train", "--corpus", str(text_file), "--hidden-size", "8", "--embedding-dim",
                 "4", "--bptt", "8", "--max-steps", "3", "--out", str(out), "--no-progress",
                 "--sample-length", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "check_document_size: the checkpoint's header would take" in err
    assert "limit it with max_size" in err, err
    assert not (out / "last.safetensors").exists()
    metrics = out / "metrics.jsonl"
    assert not metrics.exists() or '"step"' not in metrics.read_text(encoding="utf-8")


# ------------------------------------------------------------ item 17: gradcheck --samples
def test_item17_gradcheck_samples_entries_of_large_arrays(capsys):
    assert main(["gradcheck", "--cell", "gru", "--hidden-size", "6", "--input-size", "5",
                 "--samples", "7"]) == 0
    out = capsys.readouterr().out
    assert "7 random entries (seed 0) checked of each array larger" in out, out


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_item17_gradcheck_refuses_a_bad_sample_count(capsys, value):
    with pytest.raises(SystemExit) as stop:
        main(["gradcheck", "--samples", value])
    assert stop.value.code == 2
    assert "argument --samples: expected auto, all or a number" in capsys.readouterr().err


def test_item17_gradcheck_all_checks_every_entry(capsys):
    assert main(["gradcheck", "--cell", "rnn", "--samples", "all"]) == 0
    assert "random entries" not in capsys.readouterr().out


# ------------------------------------------------------ item 11: the notice, one line
def test_item11_an_old_checkpoint_is_announced_in_one_line(run, text_file):
    rewrite_document(run / "last.safetensors", lambda doc: None, checksum=False)
    done = rnnlab(run.parent, "eval", str(run / "last.safetensors"), "--text",
                  str(text_file))
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(notices) == 1 and notices[0].startswith("rnnlab: notice: checkpoint "), notices
    assert "written before rnnlab covered" in notices[0]


# ------------------------------------------------- items 2, 7: where the data is, typos
def test_item2_a_seq2seq_run_whose_pairs_file_moved_asks_for_it(tmp_path):
    data, out = _seq2seq_run(tmp_path)
    moved = tmp_path / "moved.txt"
    shutil.move(data, moved)
    resume = ("seq2seq", "train", "--resume", str(out.with_suffix("")), "--epochs", "2",
              "--quiet")
    done = rnnlab(tmp_path, *resume)
    assert done.returncode != 0 and "--task FILE" in done.stderr, done.stderr
    assert rnnlab(tmp_path, *resume, "--task", str(moved)).returncode == 0
    other = tmp_path / "other.txt"
    other.write_text("1+1_2\n2+2_4\n3+3_6\n", encoding="utf-8")
    done = rnnlab(tmp_path, *resume[:4], "--epochs", "3", "--quiet", "--task", str(other))
    assert done.returncode != 0 and "does not hold the data" in done.stderr, done.stderr
    done = rnnlab(tmp_path, "seq2seq", "eval", str(out))
    assert done.returncode != 0 and "--data FILE" in done.stderr, done.stderr


def test_item3_a_forecast_resume_reads_its_own_csv_when_it_is_unchanged(tmp_path):
    csv, out = _forecast_run(tmp_path)
    done = rnnlab(tmp_path, "train", "--task", "forecast", "--resume",
                  str(out / "last.safetensors"), "--epochs", "2", "--no-progress",
                  "--plot", "")
    assert done.returncode == 0, done.stderr
    csv.write_text(SERIES.replace("\n5,", "\n5,9"), encoding="utf-8")  # edited since
    done = rnnlab(tmp_path, "train", "--task", "forecast", "--resume",
                  str(out / "last.safetensors"), "--epochs", "3", "--no-progress")
    assert done.returncode != 0 and "--csv FILE" in _said(done), _said(done)


def test_item7_resume_of_a_folder_without_a_checkpoint_leaves_it_as_it_was(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = rnnlab(tmp_path, "train", "--resume", str(empty), "--no-progress")
    assert done.returncode == 1 and "no such file" in done.stderr, done.stderr
    assert list(empty.iterdir()) == []


def test_item1_plot_reports_the_file_it_wrote_for_a_name_without_a_suffix(run, tmp_path,
                                                                          capsys):
    pytest.importorskip("matplotlib")
    assert main(["plot", "curves", str(run), "--out", str(tmp_path / "curves")]) == 0
    assert f"wrote {tmp_path / 'curves.png'}" in capsys.readouterr().out
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
