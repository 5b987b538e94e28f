"""Hidden states of a model over a text, projected to 2-D by PCA and by t-SNE.

Each point is the state right after reading one token; points are coloured by the
token's class (lowercase / uppercase / digit / space / newline / quote / bracket /
punctuation for characters; word / number / punctuation / end of line for words), by
its position in the text, or by its column in its line, and a random sample of points
is labelled with the text just read (``"def⏎"``).

PCA is computed here (centred SVD, signs fixed so the largest loading is positive);
t-SNE is scikit-learn's :class:`~sklearn.manifold.TSNE` (``init="pca"``, a fixed
``random_state``), so the same seed gives the same picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.backend import make_rng
from rnnlab.viz._mpl import new_figure, quiet_missing_glyphs, require, save_figure
from rnnlab.viz.tokens import column_in_line, context_label, token_classes

METHODS = ("pca", "tsne")
COLOR_BY = ("class", "position", "column")


def pca_2d(states: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(coords (n, k), explained variance ratio (k,))`` of the rows of ``states``."""
    x = np.asarray(states, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"pca_2d: expected at least 2 states in an (n, H) array, got shape "
                         f"{x.shape}")
    x = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(n_components, vt.shape[0])
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
    signs[signs == 0] = 1.0
    coords = u[:, :k] * s[:k] * signs
    total = float((s ** 2).sum())
    ratio = (s[:k] ** 2) / total if total > 0 else np.zeros(k)
    if k < n_components:  # a single hidden unit: pad with zeros
        coords = np.pad(coords, ((0, 0), (0, n_components - k)))
        ratio = np.pad(ratio, (0, n_components - k))
    return coords, ratio


def tsne_2d(states: np.ndarray, *, perplexity: float = 30.0, seed: int = 0,
            max_iter: int | None = None, threads: int | None = 1) -> np.ndarray:
    """scikit-learn's t-SNE of the rows of ``states`` (perplexity capped for small sets).

    ``max_iter`` (at least 250) bounds the optimisation (scikit-learn's default: 1000).
    ``threads`` limits its OpenMP/BLAS threads for the call (``None``: no limit); one
    thread is the default because t-SNE of a few thousand points is quick on one, while
    spinning OpenMP workers on a busy machine can make it many times slower.
    """
    import inspect

    manifold = require("sklearn.manifold", "t-SNE")
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn
    x = np.asarray(states, dtype=np.float64)
    n = x.shape[0]
    if x.ndim != 2 or n < 4:
        raise ValueError(f"tsne_2d: expected at least 4 states in an (n, H) array, got shape "
                         f"{x.shape}")
    perplexity = float(min(perplexity, (n - 1) / 3.0))
    options: dict[str, Any] = {}
    if max_iter is not None:
        name = "max_iter" if "max_iter" in inspect.signature(manifold.TSNE).parameters \
            else "n_iter"  # scikit-learn < 1.5
        options[name] = max(250, int(max_iter))
    tsne = manifold.TSNE(n_components=2, perplexity=perplexity, init="pca",
                         learning_rate="auto", random_state=int(seed), **options)
    with threadpool_limits(limits=threads):
        return np.asarray(tsne.fit_transform(x))


def _colour_values(states: Any, color_by: str) -> tuple[Any, Any]:
    if color_by == "class":
        classes, palette = token_classes(states.tokens, states.level)
        return classes, palette
    if color_by == "position":
        return np.arange(len(states.tokens)), None
    if color_by == "column":
        return column_in_line(states.tokens, states.level), None
    raise ValueError(f"plot_hidden_states: color_by expected one of {COLOR_BY}, "
                     f"got {color_by!r}")


def plot_hidden_states(states: Any, out: str | Path | None = None, *,
                       methods: Sequence[str] | str = METHODS, color_by: str = "class",
                       layer: int = -1, kind: str = "h", labels: int = 30,
                       perplexity: float = 30.0, seed: int = 0, skip: int = 0,
                       tsne_iter: int | None = None, title: str | None = None,
                       dpi: int = 100) -> Any:
    """Scatter the states of :func:`~rnnlab.viz.collect_states` in 2-D, one panel per
    method (``"pca"``, ``"tsne"``). ``kind="c"`` shows an LSTM's cell states; ``skip``
    leaves out the first states (still warming up from zero); ``labels`` random points
    (drawn with ``seed``) are annotated with the text just read; ``tsne_iter`` bounds the
    t-SNE optimisation. Returns the Figure."""
    if isinstance(methods, str):
        methods = [methods]
    methods = list(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"plot_hidden_states: methods expected from {METHODS}, got {methods}")
    x = states.states(layer, kind)
    index = np.arange(x.shape[0])[skip:]
    if index.size < 4:
        raise ValueError(f"plot_hidden_states: need at least 4 states after skip={skip}, "
                         f"got {index.size} (use a longer text)")
    x = x[index]
    values, palette = _colour_values(states, color_by)
    rng = make_rng(seed)
    picked = rng.choice(index.size, size=min(labels, index.size), replace=False) \
        if labels > 0 else np.zeros(0, dtype=np.int64)
    layer_no = layer % len(states.h)
    fig = new_figure(figsize=(6.4 * len(methods) + (1.6 if palette is not None else 1.0),
                              5.6), dpi=dpi)
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    with quiet_missing_glyphs():
        scatter = None
        for ax, method in zip(axes, methods, strict=True):
            if method == "pca":
                coords, ratio = pca_2d(x)
                ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f} % of variance)")
                ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f} % of variance)")
                ax.set_title("PCA", fontsize=10)
            else:
                coords = tsne_2d(x, perplexity=perplexity, seed=seed, max_iter=tsne_iter)
                ax.set_xlabel("t-SNE 1")
                ax.set_ylabel("t-SNE 2")
                ax.set_title(f"t-SNE (perplexity {min(perplexity, (len(x) - 1) / 3):g})",
                             fontsize=10)
            if palette is not None:
                cls = np.array([values[i] for i in index])
                for name, color in palette.items():
                    mask = cls == name
                    if mask.any():
                        ax.scatter(coords[mask, 0], coords[mask, 1], s=9, color=color,
                                   alpha=0.75, lw=0, label=f"{name} ({int(mask.sum())})")
            else:
                scatter = ax.scatter(coords[:, 0], coords[:, 1], s=9, c=np.asarray(values)[index],
                                     cmap="viridis", alpha=0.8, lw=0)
            for i in picked.tolist():
                ax.annotate(context_label(states.tokens, int(index[i]), states.level),
                            (coords[i, 0], coords[i, 1]), fontsize=7, alpha=0.9,
                            xytext=(3, 3), textcoords="offset points",
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                  "alpha": 0.6})
            ax.grid(True, alpha=0.25)
        if palette is not None:
            axes[-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5),
                            markerscale=2.0, title="token class", title_fontsize=8)
        elif scatter is not None:
            bar = fig.colorbar(scatter, ax=list(axes), fraction=0.04, pad=0.02)
            bar.set_label("position in text" if color_by == "position"
                          else "column in line")
        state_name = "cell state c" if kind == "c" else "hidden state h"
        fig.suptitle(title or f"{states.label} {state_name}, layer {layer_no}: "
                     f"{len(x)} tokens, coloured by {color_by}", fontsize=11)
        save_figure(fig, out)
    return fig
