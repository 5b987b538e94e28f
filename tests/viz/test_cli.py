"""``rnnlab plot ...`` end to end, and the message when the viz extra is missing."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest

from rnnlab.cli import main

from .conftest import assert_real_png


def installed(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


needs_mpl = pytest.mark.skipif(
    not installed("matplotlib"),
    reason="the viz extra is not installed (pip install 'rnnlab[viz]'): matplotlib")


def checkpoint(trained):
    return str(trained.run / "last.safetensors")


@needs_mpl
def test_plot_curves_predictions_hidden(trained, trained_gru, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["plot", "curves", str(trained.run), str(trained_gru.run), "--out",
                 str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert_real_png(out)
    full = out.read_bytes()
    assert full[25] in (2, 6)  # IHDR colour type: RGB(A)
    assert main(["plot", "curves", str(trained.run), "--out", str(out), "--compact"]) == 0
    assert out.read_bytes()[25] == 3  # a palette PNG
    assert_real_png(out, min_bytes=2_000)
    assert main(["plot", "curves", str(trained.run), "--x", "time", "--out", str(out)]) == 0
    assert_real_png(out)

    text = tmp_path / "sample.py"
    text.write_text(trained.text, encoding="utf-8")
    out = tmp_path / "pred.png"
    assert main(["plot", "predictions", checkpoint(trained), "--text", str(text),
                 "--length", "30", "--top-k", "6", "--out", str(out)]) == 0
    assert_real_png(out)
    out = tmp_path / "rank.png"
    assert main(["plot", "predictions", checkpoint(trained), "--string", "def f(x):\n",
                 "--mode", "rank", "--out", str(out)]) == 0
    assert_real_png(out)

    out = tmp_path / "hidden.png"
    # no text given: the checkpoint's own validation split
    assert main(["plot", "hidden", checkpoint(trained), "--method", "pca", "--max-tokens",
                 "100", "--color-by", "position", "--out", str(out)]) == 0
    assert_real_png(out)


@needs_mpl
def test_plot_gradients_from_checkpoints_and_a_text(trained, trained_gru, tmp_path):
    out = tmp_path / "g.png"
    assert main(["plot", "gradients", checkpoint(trained), checkpoint(trained_gru),
                 "--max-lag", "12", "--windows", "4", "--out", str(out)]) == 0
    assert_real_png(out)
    text = tmp_path / "t.txt"
    text.write_text(trained.text * 3, encoding="utf-8")
    out = tmp_path / "g2.png"
    assert main(["plot", "gradients", "--text", str(text), "--variants", "rnn-tanh", "gru",
                 "--steps", "2", "--hidden-size", "6", "--batch-size", "2", "--bptt", "8",
                 "--max-lag", "8", "--windows", "3", "--no-scale", "--out", str(out)]) == 0
    assert_real_png(out)


def test_plot_activations_needs_no_plotting_extra(trained, tmp_path, monkeypatch, capsys):
    for name in ("matplotlib", "sklearn"):
        monkeypatch.setitem(sys.modules, name, None)  # "import matplotlib" now fails
    out = tmp_path / "page.html"
    assert main(["plot", "activations", checkpoint(trained), "--string", trained.text,
                 "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert capsys.readouterr().out.strip() == f"wrote {out}"


@pytest.mark.parametrize("command", [
    ["curves", "RUN"],
    ["hidden", "CKPT", "--method", "pca"],
    ["predictions", "CKPT"],
    ["gradients", "--steps", "0"],
])
def test_missing_extra_is_one_line_naming_it(trained, command, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = [str(trained.run) if a == "RUN" else checkpoint(trained) if a == "CKPT" else a
            for a in command]
    assert main(["plot", *argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert 'pip install "rnnlab[viz]"' in err and "matplotlib" in err


@needs_mpl
def test_missing_scikit_learn_is_named_for_tsne(trained, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    assert main(["plot", "hidden", checkpoint(trained), "--method", "tsne"]) == 1
    err = capsys.readouterr().err
    assert "scikit-learn" in err and 'pip install "rnnlab[viz]"' in err


def test_plot_without_a_subcommand_prints_help(capsys):
    assert main(["plot"]) == 2
    out = capsys.readouterr().out
    for what in ("curves", "hidden", "predictions", "gradients", "activations"):
        assert what in out


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["plot", "curves", str(tmp_path / "missing")]) == 1
    assert "no metrics log" in capsys.readouterr().err


def test_cli_module_imports_without_matplotlib():
    """In a fresh interpreter where matplotlib and scikit-learn cannot be imported, the
    command line still builds (with the plot command) and reports the extra."""
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("matplotlib", "sklearn"):
                    raise ModuleNotFoundError("blocked: " + name, name=name)
        sys.meta_path.insert(0, Block())
        import rnnlab.viz, rnnlab.cli.plot
        from rnnlab.cli import build_parser, main
        parser = build_parser()
        assert "matplotlib" not in sys.modules and "sklearn" not in sys.modules
        sys.exit(main(["plot", "gradients", "--steps", "0"]))
    """)
    env = {**os.environ, "RNNLAB_DEBUG": ""}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        'rnnlab plot: error: rnnlab plot gradients needs matplotlib, which is not installed; '
        'install the plotting extra with: pip install "rnnlab[viz]"']


def test_plot_activations_with_symbols_outside_the_vocabulary(trained, tmp_path, capsys):
    """A character the model never saw becomes ``<unk>``; the page is still written
    (issue 26, item 7: it was an IndexError in the feature scan)."""
    assert "\u2603" not in trained.vocab.stoi
    out = tmp_path / "page.html"
    assert main(["plot", "activations", checkpoint(trained), "--string", "\u2603 = 1",
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
