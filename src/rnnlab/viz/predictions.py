"""Heat map of the predicted next-token distribution along a text.

Column ``t`` is the distribution ``p(token t+1 | tokens 0..t)`` after reading the token
written under it. Two layouts:

* ``mode="tokens"``: one row per candidate token, the ``top_k`` tokens with the most
  probability mass in the window (rows labelled with the tokens); the token that really
  came next is outlined.
* ``mode="rank"``: row ``r`` is the model's ``r``-th guess at each step, the guess
  written in the cell, outlined when it was right.

Colour is the probability on a square-root scale, so the long tail stays visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.viz._mpl import new_figure, quiet_missing_glyphs, save_figure
from rnnlab.viz.tokens import display_token

MODES = ("tokens", "rank")


def _window(states: Any, start: int, length: int) -> tuple[int, int]:
    T = len(states.tokens)
    if not 0 <= start < T:
        raise ValueError(f"plot_predictions: start expected in [0, {T}), got {start}")
    if length < 1:
        raise ValueError(f"plot_predictions: length expected >= 1, got {length}")
    return start, min(T, start + length)


def top_tokens(probs: np.ndarray, k: int) -> np.ndarray:
    """Ids of the ``k`` tokens with the largest total probability over the rows of
    ``probs`` ``(T, V)``, most probable first."""
    mass = probs.sum(axis=0)
    k = min(k, probs.shape[1])
    order = np.argsort(-mass, kind="stable")
    return order[:k]


def plot_predictions(states: Any, out: str | Path | None = None, *, top_k: int = 12,
                     start: int = 0, length: int = 80, mode: str = "tokens",
                     title: str | None = None, dpi: int = 100) -> Any:
    """Heat map of next-token probabilities for ``length`` steps from ``start`` of the
    :class:`~rnnlab.viz.probe.States` of a text. Returns the Figure."""
    from matplotlib.colors import PowerNorm
    from matplotlib.patches import Rectangle

    if mode not in MODES:
        raise ValueError(f"plot_predictions: mode expected one of {MODES}, got {mode!r}")
    if top_k < 1:
        raise ValueError(f"plot_predictions: top_k expected >= 1, got {top_k}")
    lo, hi = _window(states, start, length)
    probs = states.probs()[lo:hi]  # (W, V)
    W = hi - lo
    inputs = [display_token(t, states.level) for t in states.tokens[lo:hi]]
    nxt = np.full(W, -1, dtype=np.int64)
    known = min(hi, len(states.ids) - 1) - lo  # the last token of the text has no next
    nxt[:known] = states.ids[lo + 1:lo + 1 + known]
    itos = states.itos
    k = min(top_k, probs.shape[1])
    if mode == "tokens":
        rows = top_tokens(probs, k)
        grid = probs[:, rows].T  # (k, W)
        row_labels = [display_token(itos[i], states.level) for i in rows]
        hit = (rows[:, None] == nxt[None, :])
    else:
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (W, k)
        grid = np.take_along_axis(probs, order, axis=1).T
        row_labels = [f"#{r + 1}" for r in range(k)]
        hit = (order.T == nxt[None, :])
    char = states.level == "char"
    cell_w = 0.17 if char else 0.42
    fig = new_figure(figsize=(max(6.0, 1.6 + cell_w * W), 1.5 + 0.26 * k), dpi=dpi)
    ax = fig.add_subplot()
    with quiet_missing_glyphs():
        image = ax.imshow(grid, aspect="auto", cmap="magma", interpolation="nearest",
                          norm=PowerNorm(0.5, vmin=0.0, vmax=1.0))
        for r, c in zip(*np.nonzero(hit), strict=True):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="#00E5FF",
                                   lw=1.3))
        if mode == "rank":
            for r in range(k):
                for c in range(W):
                    guess = display_token(itos[order[c, r]], states.level)
                    shade = "black" if grid[r, c] > 0.45 else "white"
                    wide = len(guess) > 1  # a special such as <unk> at char level
                    ax.text(c, r, guess[:5], ha="center", va="center",
                            fontsize=5 if wide or not char else 7, color=shade,
                            fontfamily="DejaVu Sans Mono" if char else None)
        ax.set_xticks(np.arange(W))
        ax.set_xticklabels(inputs, fontsize=9 if char else 7, rotation=0 if char else 90,
                           fontfamily="DejaVu Sans Mono" if char else None)
        ax.set_yticks(np.arange(k))
        ax.set_yticklabels(row_labels, fontsize=9 if char else 7,
                           fontfamily="DejaVu Sans Mono" if char else None)
        ax.set_xlabel("input token (the column is the prediction made after reading it)")
        ax.set_ylabel("candidate next token" if mode == "tokens" else "rank of the guess")
        ax.tick_params(length=0)
        bar = fig.colorbar(image, ax=ax, fraction=0.03 if W > 40 else 0.05, pad=0.01)
        bar.set_label("p(next token)")
        if known > 0:
            p_true = probs[np.arange(known), nxt[:known]]
            loss = float(-np.log(np.maximum(p_true, 1e-300)).mean())
            top1 = float((probs[:known].argmax(axis=1) == nxt[:known]).mean())
            stats = f"mean loss {loss:.2f} nats, top-1 right {100 * top1:.0f} %"
        else:
            stats = "no next token to score"
        fig.suptitle(title or f"{states.label}: next-token distribution over tokens "
                     f"{lo}..{hi - 1} ({stats}; outlined: what came next)", fontsize=10)
        save_figure(fig, out)
    return fig
