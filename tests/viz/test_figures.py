"""Every figure, drawn from the small trained model: files are real PNGs with content,
and the figures carry the expected axes, labels and series."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the viz extra is not installed (pip install "
                    "'rnnlab[viz]'): matplotlib is needed for figures")

from rnnlab.viz.curves import load_run, plot_training_curves
from rnnlab.viz.gradients import gradient_flow_study, plot_gradient_flow
from rnnlab.viz.predictions import plot_predictions, top_tokens
from rnnlab.viz.probe import collect_states
from rnnlab.viz.projection import pca_2d, plot_hidden_states
from rnnlab.viz.tokens import display_token

from .conftest import assert_real_png

DPI = 60


def line_labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def legend_texts(ax):
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


# ------------------------------------------------------------------- curves
def write_metrics(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n",
                    encoding="utf-8")


def test_load_run_keeps_the_surviving_trajectory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_metrics(run / "metrics.jsonl", [
        {"event": "train", "step": 10, "loss": 4.0, "ppl": 54.6, "lr": 0.1},
        {"event": "train", "step": 20, "loss": 3.0, "ppl": 20.1, "lr": 0.1},
        {"event": "divergence", "step": 25, "reason": "loss nan", "rolled_back_to": 10},
        {"event": "train", "step": 20, "loss": 2.9, "ppl": 18.2, "lr": 0.05},
        {"event": "train", "step": 30, "loss": "inf", "ppl": "inf", "lr": 0.05},
        {"event": "valid", "step": 30, "loss": 2.5, "ppl": 12.2, "lr": 0.05, "best": True},
        {"event": "test", "step": 30, "loss": 2.6, "ppl": 13.5},
    ])
    c = load_run(run)
    assert c.name == "run"
    steps, loss = c.train["loss"]
    assert steps.tolist() == [10, 20, 30]
    assert loss[1] == 2.9 and np.isinf(loss[2])
    assert c.train["lr"][1].tolist() == [0.1, 0.05, 0.05]
    assert c.valid["ppl"][1].tolist() == [12.2]
    assert c.test == {"loss": 2.6, "ppl": 13.5, "step": 30.0}
    assert c.divergences == [25]
    with pytest.raises(FileNotFoundError, match="metrics"):
        load_run(tmp_path / "nothing")


def test_training_curves_overlay_two_real_runs(trained, trained_gru, tmp_path):
    out = tmp_path / "curves.png"
    fig = plot_training_curves([trained.run, trained_gru.run], out, names=["lstm", "gru"],
                               dpi=DPI)
    assert_real_png(out)
    ax_loss, ax_ppl, ax_lr = fig.axes[:3]
    assert ax_loss.get_ylabel() == "loss (nats per token)"
    assert ax_ppl.get_ylabel() == "perplexity" and ax_ppl.get_yscale() == "log"
    assert ax_lr.get_ylabel() == "learning rate"
    assert all(ax.get_xlabel() == "step" for ax in (ax_loss, ax_ppl, ax_lr))
    labels = line_labels(ax_loss)
    for name in ("lstm", "gru"):
        assert f"{name} train" in labels and f"{name} valid" in labels
    assert legend_texts(ax_lr) == ["lstm", "gru"]
    train_line = ax_loss.get_lines()[labels.index("lstm train")]
    x, y = train_line.get_data()
    assert list(x) == sorted(x) and y[-1] < y[0]  # the loss fell
    assert max(x) == 250


def test_training_curves_mark_rollbacks_and_refuse_empty_logs(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    write_metrics(run / "metrics.jsonl", [
        {"event": "train", "step": s, "loss": 3 - s / 100, "ppl": 20.0, "lr": 0.01}
        for s in range(10, 110, 10)] + [{"event": "divergence", "step": 55}])
    fig = plot_training_curves(run, tmp_path / "c.svg", smooth=3, dpi=DPI)
    assert (tmp_path / "c.svg").read_text().startswith("<?xml")
    assert "divergence rollback" in legend_texts(fig.axes[0])
    assert any(line.get_xdata()[0] == 55 and line.get_color() == "red"
               for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 2)
    empty = tmp_path / "e"
    empty.mkdir()
    write_metrics(empty / "metrics.jsonl", [{"event": "checkpoint", "step": 1}])
    with pytest.raises(ValueError, match="no train or valid"):
        plot_training_curves(empty)


def test_wall_minutes_add_up_resumed_parts_and_fall_back_to_time():
    from rnnlab.viz.curves import wall_minutes

    resumed = [{"event": "train", "step": 1, "wall_s": 60.0},
               {"event": "valid", "step": 2, "wall_s": 120.0},
               {"event": "train", "step": 3, "wall_s": 30.0},  # a resumed process
               {"event": "train", "step": 4, "wall_s": 90.0},
               {"event": "checkpoint"}]
    assert wall_minutes(resumed) == [1.0, 2.0, 2.5, 3.5, None]
    old = [{"event": "train", "step": 1, "time": 1000.0},
           {"event": "train", "step": 2, "time": 1090.0}]
    assert wall_minutes(old) == [0.0, 1.5]


def test_training_curves_against_wall_time(trained, trained_gru, tmp_path):
    from rnnlab.train.metrics import read_metrics

    records = read_metrics(trained.run / "metrics.jsonl")
    walls = [r["wall_s"] for r in records]  # every record carries its wall time
    assert walls == sorted(walls) and walls[0] >= 0
    fig = plot_training_curves([trained.run, trained_gru.run], tmp_path / "t.png",
                               names=["lstm", "gru"], dpi=DPI, x="time")
    assert_real_png(tmp_path / "t.png")
    ax_loss = fig.axes[0]
    assert ax_loss.get_xlabel() == "training wall time (minutes)"
    labels = line_labels(ax_loss)
    for name in ("lstm train", "gru valid"):
        x, _ = ax_loss.get_lines()[labels.index(name)].get_data()
        assert np.isfinite(x).all() and list(x) == sorted(x) and 0 <= x[0] < x[-1] < 60
    with pytest.raises(ValueError, match="x expected"):
        plot_training_curves(trained.run, x="epoch")


# ------------------------------------------------------------ hidden states
def test_pca_is_exact_and_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 5)) * np.array([5.0, 2.0, 0.5, 0.1, 0.01])
    coords, ratio = pca_2d(x)
    assert coords.shape == (50, 2) and ratio[0] > ratio[1] > 0
    centred = x - x.mean(axis=0)
    total = (centred ** 2).sum()
    assert (coords ** 2).sum() / total == pytest.approx(ratio.sum())
    again, _ = pca_2d(x[::-1])
    np.testing.assert_allclose(np.abs(again[::-1]), np.abs(coords), atol=1e-9)


def test_hidden_states_pca_and_tsne(trained, tmp_path):
    pytest.importorskip("sklearn", reason="the viz extra is not installed (pip install "
                        "'rnnlab[viz]'): scikit-learn is needed for t-SNE")
    states = collect_states(trained.model, trained.text[:160], vocab=trained.vocab)
    out = tmp_path / "hidden.png"
    fig = plot_hidden_states(states, out, labels=12, seed=1, tsne_iter=250, dpi=DPI)
    assert_real_png(out)
    ax_pca, ax_tsne = fig.axes[:2]
    assert ax_pca.get_xlabel().startswith("PC1 (") and "% of variance" in ax_pca.get_ylabel()
    assert ax_tsne.get_xlabel() == "t-SNE 1" and ax_tsne.get_ylabel() == "t-SNE 2"
    legend = " ".join(legend_texts(ax_tsne))
    for cls in ("lowercase", "space", "newline", "quote", "bracket", "punctuation"):
        assert cls in legend
    counts = sum(int(t.split("(")[-1].rstrip(")")) for t in legend_texts(ax_tsne))
    assert counts == 160
    labels = [t.get_text() for t in ax_pca.texts]
    assert len(labels) == 12 and all(0 < len(t) <= 4 for t in labels)
    # every class of points is drawn at the PCA coordinates of its states
    coords, _ = pca_2d(states.states())
    drawn = np.concatenate([c.get_offsets() for c in ax_pca.collections])
    assert drawn.shape == (160, 2)
    assert np.allclose(np.sort(drawn[:, 0]), np.sort(coords[:, 0]))
    assert "160 tokens" in fig._suptitle.get_text()


def test_hidden_states_coloured_by_position(trained, tmp_path):
    states = collect_states(trained.model, trained.text[:120], vocab=trained.vocab)
    out = tmp_path / "hidden-c.png"
    fig = plot_hidden_states(states, out, methods="pca", color_by="column", kind="c",
                             skip=5, labels=0, dpi=DPI)
    assert_real_png(out)
    assert fig.axes[-1].get_ylabel() == "column in line"  # the colour bar
    assert "cell state c" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="methods"):
        plot_hidden_states(states, methods="umap")
    with pytest.raises(ValueError, match="color_by"):
        plot_hidden_states(states, methods="pca", color_by="mood")


# -------------------------------------------------------------- predictions
def test_prediction_heat_map(trained, tmp_path):
    states = collect_states(trained.model, trained.text[:60], vocab=trained.vocab)
    out = tmp_path / "pred.png"
    fig = plot_predictions(states, out, top_k=8, start=5, length=40, dpi=DPI)
    assert_real_png(out)
    ax = fig.axes[0]
    xt = [t.get_text() for t in ax.get_xticklabels()]
    assert xt == [display_token(t) for t in trained.text[5:45]]
    assert "␣" in xt and "⏎" in xt
    rows = top_tokens(states.probs()[5:45], 8)
    yt = [t.get_text() for t in ax.get_yticklabels()]
    assert yt == [display_token(trained.vocab.itos[i]) for i in rows]
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(image, states.probs()[5:45][:, rows].T)
    assert ax.get_xlabel().startswith("input token")
    assert fig.axes[1].get_ylabel() == "p(next token)"
    assert len(ax.patches) >= 10  # the outlined true next tokens among the top rows
    assert "top-1 right" in fig._suptitle.get_text()


def test_prediction_heat_map_by_rank(trained, tmp_path):
    states = collect_states(trained.model, trained.text[:30], vocab=trained.vocab)
    out = tmp_path / "rank.png"
    fig = plot_predictions(states, out, top_k=4, mode="rank", dpi=DPI)
    assert_real_png(out)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["#1", "#2", "#3", "#4"]
    assert len(ax.texts) == 4 * 30  # every guess written in its cell
    best = states.probs().argmax(axis=1)
    assert [t.get_text() for t in ax.texts[:30]] == \
        [display_token(trained.vocab.itos[i]) for i in best]
    with pytest.raises(ValueError, match="mode"):
        plot_predictions(states, mode="sideways")
    with pytest.raises(ValueError, match="start"):
        plot_predictions(states, start=30)


# ------------------------------------------------------------ gradient flow
def test_gradient_flow_figure(trained, tmp_path):
    flow = gradient_flow_study(trained.corpus.train, len(trained.vocab), steps=10,
                               variants=("rnn-tanh", "rnn-relu", "lstm", "gru"),
                               hidden_size=12, embedding_dim=6, max_lag=20, windows=6,
                               batch_size=4, bptt=12, seed=0)
    out = tmp_path / "gradients.png"
    fig = plot_gradient_flow(flow, out, dpi=DPI)
    assert_real_png(out)
    axes = fig.axes
    assert len(axes) == 3
    assert [ax.get_title() for ax in axes] == [
        "at initialisation", "at initialisation, recurrent weights ×3",
        "after training (10 steps)"]
    assert axes[0].get_ylabel() == "‖∂L/∂h(t−k)‖ / ‖∂L/∂h(t)‖"
    for ax in axes:
        assert ax.get_yscale() == "log"
        assert ax.get_xlabel() == "k (steps back from the loss)"
        texts = legend_texts(ax)
        assert [t.split(" ")[0] for t in texts] == ["rnn-tanh", "rnn-relu", "lstm", "gru"]
        assert all("ρ" in t for t in texts)
    tanh = next(line for line in axes[0].get_lines()
                if line.get_label().startswith("rnn-tanh"))
    x, y = tanh.get_data()
    assert x[0] == 0 and y[0] == pytest.approx(1.0) and y[-1] < 1e-2  # vanishing
    relu = [line for line in axes[1].get_lines() if line.get_label().startswith("rnn-relu")]
    assert relu[0].get_data()[1][-1] > 1.0  # exploding with W_hh x 3
    raw = plot_gradient_flow(flow, None, normalize=False, band=False, dpi=DPI)
    assert raw.axes[0].get_ylabel() == "‖∂L/∂h(t−k)‖"


def test_png_decoder_of_the_tests_agrees_with_pillow(trained, tmp_path):
    from PIL import Image

    from .conftest import decode_png

    states = collect_states(trained.model, trained.text[:20], vocab=trained.vocab)
    out = tmp_path / "p.png"
    plot_predictions(states, out, top_k=3, dpi=40)
    with Image.open(out) as image:
        expected = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255
    np.testing.assert_array_equal(decode_png(out.read_bytes()), expected)
