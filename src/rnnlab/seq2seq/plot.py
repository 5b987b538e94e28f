"""Attention heat maps: which source characters each output character looked at.

Needs matplotlib (the ``viz`` extra); without it :func:`plot_attention` raises
:class:`MissingPlotExtra` (an ``ImportError``) naming the extra. Figures are plain
:class:`matplotlib.figure.Figure` objects on an Agg canvas: no pyplot, no GUI.

With a trained attention model ``model`` and its ``codec``::

    answers, att = predict(model, codec, ["September 27, 1994"], return_attention=True)
    plot_attention(att[0], "September 27, 1994", answers[0], path="attention.png")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.safefiles import write_atomic

EXTRA_HINT = 'pip install "rnnlab[viz]"'


class MissingPlotExtra(ImportError):
    """matplotlib is not installed."""


def _figure_class() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingPlotExtra(f"plotting attention needs matplotlib, which is not "
                               f"installed; install the plotting extra with: {EXTRA_HINT}"
                               ) from exc
    return Figure, FigureCanvasAgg


def _label(ch: str) -> str:
    return "␣" if ch == " " else ch


def plot_attention(weights: Any, question: str, answer: str,
                   path: str | os.PathLike[str] | None = None, title: str | None = None,
                   ax: Any = None) -> Any:
    """Draw attention ``weights`` ``(len(answer), len(question))`` as a heat map.

    Rows are output characters, columns source characters (spaces shown as ``␣``);
    ``path`` saves the figure (format from the suffix; none: ``.png`` added, see
    :func:`attention_path`) atomically, never through a link. Returns the Figure.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape != (len(answer), len(question)):
        raise ValueError(f"plot_attention: weights expected shape ({len(answer)}, "
                         f"{len(question)}) (answer x question characters), got {w.shape}")
    Figure, Canvas = _figure_class()
    if ax is None:
        fig = Figure(figsize=(max(3.0, 0.3 * len(question) + 1.5),
                              max(2.0, 0.3 * len(answer) + 1.2)), layout="constrained")
        Canvas(fig)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    image = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(question)), [_label(c) for c in question])
    ax.set_yticks(range(len(answer)), [_label(c) for c in answer])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.05)
    if path is not None:
        target = attention_path(path)
        write_atomic(target, lambda fh: fig.savefig(fh, format=target.suffix[1:].lower(),
                                                    dpi=100, facecolor="white"))
    return fig


def attention_path(path: str | os.PathLike[str]) -> Path:
    """The file :func:`plot_attention` writes for ``path``: ``path``, with ``.png`` added
    when it has no suffix."""
    target = Path(path)
    return target if target.suffix else target.with_name(target.name + ".png")
