"""See inside the network: training curves, hidden-state maps, next-token heat maps,
gradient flow through time, and an activation page for single units.

Every plotting function returns the :class:`matplotlib.figure.Figure` it drew (rendered
with the Agg canvas, no pyplot) and writes it when given ``out`` (PNG by default, any
format matplotlib knows by suffix). The activation page is a self-contained HTML file.

From a trained run's checkpoint::

    from rnnlab.train.state import load_model
    from rnnlab import viz
    model, vocab, _ = load_model("runs/stdlib-lstm/best.safetensors")
    states = viz.collect_states(model, open("notes.py").read()[:2000], vocab=vocab)
    viz.plot_hidden_states(states, "hidden.png", methods=("pca", "tsne"))
    viz.plot_predictions(states, "predictions.png", top_k=12, length=80)
    viz.activation_page(states, "activations.html")
    viz.plot_training_curves(["runs/stdlib-lstm", "runs/stdlib-gru"], "curves.png")
    flow = viz.gradient_flow_study(corpus.train, len(corpus.vocab), steps=200)
    viz.plot_gradient_flow(flow, "gradients.png")

The figures need the ``viz`` extra (``pip install "rnnlab[viz]"``: matplotlib, and
scikit-learn for t-SNE); everything else (states, gradient norms, unit ranking, the
HTML page) needs only NumPy. Importing this package imports neither.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MissingExtraError": "rnnlab.viz._mpl",
    "States": "rnnlab.viz.probe",
    "collect_states": "rnnlab.viz.probe",
    "layer_cells": "rnnlab.viz.probe",
    "load_run": "rnnlab.viz.curves",
    "load_runs": "rnnlab.viz.curves",
    "plot_training_curves": "rnnlab.viz.curves",
    "pca_2d": "rnnlab.viz.projection",
    "tsne_2d": "rnnlab.viz.projection",
    "plot_hidden_states": "rnnlab.viz.projection",
    "plot_predictions": "rnnlab.viz.predictions",
    "GradientFlow": "rnnlab.viz.gradients",
    "VARIANTS": "rnnlab.viz.gradients",
    "gradient_norms": "rnnlab.viz.gradients",
    "gradient_flow_study": "rnnlab.viz.gradients",
    "gradient_flow_of_models": "rnnlab.viz.gradients",
    "plot_gradient_flow": "rnnlab.viz.gradients",
    "Feature": "rnnlab.viz.units",
    "UnitScore": "rnnlab.viz.units",
    "text_features": "rnnlab.viz.units",
    "rank_units": "rnnlab.viz.units",
    "activation_page": "rnnlab.viz.activations",
    "page_data": "rnnlab.viz.activations",
    "token_classes": "rnnlab.viz.tokens",
    "display_token": "rnnlab.viz.tokens",
    "find_chromium": "rnnlab.viz.browser",
    "HeadlessChromium": "rnnlab.viz.browser",
    "screenshot_page": "rnnlab.viz.browser",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rnnlab.viz' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
