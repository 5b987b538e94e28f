"""Gradient flow through time: how much of the loss at step ``t`` reaches ``h_{t-k}``.

For a window of ``K`` tokens the loss is taken at the **last** step only,
``L = CE(decoder(h_t), y_t)``, and the gradient is walked back through the library's own
one-step cells (``cell.backward(dh, cache=...)`` with each step's cache kept), layer by
layer and step by step, recording ``||dL/dh_{t-k}||`` for ``k = 0 .. K-1``. No autograd.

A tanh RNN multiplies the gradient at every step by ``W_hh^T diag(1 - h^2)``, whose norm
is below 1 unless ``W_hh`` is large, so the curve falls geometrically (vanishing); a
ReLU RNN multiplies by ``W_hh^T diag(1[h > 0])`` and grows geometrically once the
spectral radius of ``W_hh`` passes 1 (exploding). The LSTM's cell path (``dc_{t-1} =
f_t * dc_t``) and the GRU's update gate let the gradient through far longer.

minGRU and minLSTM (and their blocks) are measured with their own backward instead
(:meth:`~rnnlab.nn.MinGRU.backward` with ``record=True``): the gradient of the state is
the reverse scan ``dh_t = dy_t + a_{t+1} dh_{t+1}``, so the curve is the running product
of the gates ``a`` (``1 - z`` or the normalised forget gate), with no recurrent matrix.
They have no ``W_hh``, so no spectral radius and no scaled-weights panel.

:func:`gradient_flow_study` trains one model of each kind for a few hundred steps on
the same data and measures the curves at initialisation and after training on the same
windows; :func:`plot_gradient_flow` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from rnnlab.backend import Array, RNGLike, make_rng, to_numpy
from rnnlab.data import BPTTBatcher
from rnnlab.models import RNNLM
from rnnlab.optim import Adam, clip_grad_norm
from rnnlab.viz._mpl import new_figure, save_figure
from rnnlab.viz.probe import (
    _decode,
    _embed,
    host_min_layer,
    layer_cells,
    run_cells,
    run_min,
    softmax,
)


#: The model variants compared by default: name -> RNNLM keyword arguments.
class Variant(TypedDict, total=False):
    """The :class:`~rnnlab.models.RNNLM` keyword arguments that make a variant."""

    cell: str
    nonlinearity: str


VARIANTS: dict[str, Variant] = {
    "rnn-tanh": {"cell": "rnn", "nonlinearity": "tanh"},
    "rnn-relu": {"cell": "rnn", "nonlinearity": "relu"},
    "lstm": {"cell": "lstm"},
    "gru": {"cell": "gru"},
    "mingru": {"cell": "mingru"},
    "minlstm": {"cell": "minlstm"},
}
#: One colour per variant, the same in every figure (colour-blind safe, Okabe-Ito).
VARIANT_COLORS = {"rnn-tanh": "#0072B2", "rnn-relu": "#D55E00", "lstm": "#009E73",
                  "gru": "#CC79A7", "mingru": "#E69F00", "minlstm": "#56B4E9"}


def gradient_norms(model: Any, windows: Array, targets: Array, *, layer: int = -1) -> np.ndarray:
    """``||dL_b/dh_{t-k}||`` for each window ``b`` and lag ``k``: an array ``(B, K)``.

    ``windows`` ``(B, K)`` are input ids, ``targets`` ``(B,)`` the token after each
    window; ``L_b`` is the cross-entropy of that prediction, made from the state after
    the window's last token (a per-window loss, not averaged over the batch). Column
    ``k`` is the gradient ``k`` steps before that state, for layer ``layer`` (the
    gradient at lower layers includes every path through the layers above).
    """
    windows = np.asarray(to_numpy(windows))
    targets = np.asarray(to_numpy(targets)).reshape(-1)
    if windows.ndim != 2 or windows.shape[1] < 1:
        raise ValueError(f"gradient_norms: windows expected shape (B, K), got {windows.shape}")
    if targets.shape[0] != windows.shape[0]:
        raise ValueError(f"gradient_norms: targets expected ({windows.shape[0]},), got "
                         f"{targets.shape}")
    B, K = windows.shape
    if not model.rnn.cell_kind.recurrent:
        return _min_gradient_norms(model, windows, targets, layer)
    cells = layer_cells(model.rnn)
    n_layers = len(cells)
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"gradient_norms: layer expected in [{-n_layers}, {n_layers - 1}], "
                         f"got {layer}")
    layer %= n_layers
    hs, _, caches = run_cells(cells, _embed(model, windows), keep_caches=True)
    dtype = hs[-1].dtype
    probs = softmax(_decode(model, hs[-1][:, -1]))
    probs[np.arange(B), targets] -= 1.0  # d CE / d logits, per window
    w_dec = to_numpy(model.decoder.params["weight"]).astype(np.float64)
    lstm = cells[0].cell.has_cell
    dh: list[Any] = [np.zeros((B, c.hidden_size), dtype=dtype) for c in cells]
    dc: list[Any] = [np.zeros((B, c.hidden_size), dtype=dtype) for c in cells]
    dh[-1] = (probs @ w_dec).astype(dtype)
    norms = np.empty((B, K), dtype=np.float64)
    for t in range(K - 1, -1, -1):
        for k in range(n_layers - 1, -1, -1):
            if k == layer:
                norms[:, K - 1 - t] = np.linalg.norm(dh[k].astype(np.float64), axis=1)
            cell = cells[k]
            if lstm:
                dx, dh[k], dc[k] = cell.backward(dh[k], dc[k], cache=caches[k][t])
            else:
                dx, dh[k] = cell.backward(dh[k], cache=caches[k][t])
            if k > 0:
                dh[k - 1] = dh[k - 1] + dx
    return norms


def _min_gradient_norms(model: Any, windows: np.ndarray, targets: np.ndarray, layer: int
                        ) -> np.ndarray:
    """:func:`gradient_norms` of a min-cell model: its layer's own forward and backward
    (on a host copy), the output gradient at the last step only, ``dL/dh_t`` recorded."""
    rnn = host_min_layer(model.rnn)
    n_layers = rnn.num_layers
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"gradient_norms: layer expected in [{-n_layers}, {n_layers - 1}], "
                         f"got {layer}")
    B = windows.shape[0]
    out = rnn.forward(_embed(model, windows).astype(rnn.dtype))
    probs = softmax(_decode(model, out[:, -1]))
    probs[np.arange(B), targets] -= 1.0
    w_dec = to_numpy(model.decoder.params["weight"]).astype(np.float64)
    dout = np.zeros_like(out)
    dout[:, -1] = probs @ w_dec
    rnn.backward(dout, record=True)
    dh = rnn.dh_states[layer % n_layers].astype(np.float64)  # (B, K, H), time order
    return np.linalg.norm(dh[:, ::-1], axis=2)


def _radius(model: Any, layer: int = 0) -> float | None:
    """:func:`recurrent_radius`, or None for a model without ``weight_hh`` (min cells)."""
    return recurrent_radius(model, layer) if model.rnn.cell_kind.recurrent else None


def sample_windows(ids: Array, count: int, length: int, rng: RNGLike = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random windows ``(count, length)`` of ``ids`` and the token after each."""
    ids = np.asarray(to_numpy(ids)).reshape(-1)
    if ids.size < length + 1:
        raise ValueError(f"sample_windows: {ids.size} tokens are too few for windows of "
                         f"{length} plus a target")
    rng = make_rng(rng)
    starts = rng.integers(0, ids.size - length, size=count)
    index = starts[:, None] + np.arange(length)[None, :]
    return ids[index], ids[starts + length]


@dataclass
class GradientFlow:
    """Gradient norms ``(B, K)`` per variant and stage.

    Stages: ``"init"`` (the library's initialisation), ``"init-scaled"`` (the same
    weights with every recurrent matrix multiplied by :attr:`scale`), ``"trained"``.
    """

    norms: dict[str, dict[str, np.ndarray]]
    losses: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Spectral radius of ``weight_hh`` per variant and stage; None for the min cells.
    radius: dict[str, dict[str, float | None]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    steps: int = 0
    scale: float | None = None

    @property
    def variants(self) -> list[str]:
        return list(self.norms)

    @property
    def stages(self) -> list[str]:
        seen: list[str] = []
        for per_stage in self.norms.values():
            seen += [s for s in per_stage if s not in seen]
        return seen

    @property
    def max_lag(self) -> int:
        return max(a.shape[1] for s in self.norms.values() for a in s.values()) - 1

    def summary(self, normalize: bool = True) -> dict[str, dict[str, list[float]]]:
        """Median norm (relative to lag 0 with ``normalize``) per variant, stage and lag."""
        out: dict[str, dict[str, list[float]]] = {}
        for variant, per_stage in self.norms.items():
            out[variant] = {stage: median_curve(a, normalize).tolist()
                            for stage, a in per_stage.items()}
        return out


def recurrent_radius(model: Any, layer: int = 0) -> float:
    """Largest spectral radius among the ``H x H`` gate blocks of ``weight_hh`` of a layer."""
    if not model.rnn.cell_kind.recurrent:
        raise ValueError(f"recurrent_radius: a {model.config.cell} model has no recurrent "
                         f"matrix weight_hh (its gates read the input only)")
    rnn = model.rnn
    w = to_numpy(rnn.params[f"weight_hh{rnn.suffix(layer, 0)}"]).astype(np.float64)
    H = rnn.hidden_size
    return max(float(np.abs(np.linalg.eigvals(w[g * H:(g + 1) * H])).max())
               for g in range(w.shape[0] // H))


def scale_recurrent(model: Any, factor: float) -> None:
    """Multiply every ``weight_hh`` of ``model.rnn`` by ``factor`` in place."""
    for name, param in model.rnn.params.items():
        if name.startswith("weight_hh"):
            param *= param.dtype.type(factor)


def median_curve(norms: np.ndarray, normalize: bool = True, q: float = 50.0) -> np.ndarray:
    """Percentile ``q`` over windows of ``norms`` ``(B, K)`` (each row / its lag 0)."""
    a = np.asarray(norms, dtype=np.float64)
    if normalize:
        a = a / np.maximum(a[:, :1], np.finfo(np.float64).tiny)
    return np.percentile(a, q, axis=0)


def _train(model: Any, ids: np.ndarray, steps: int, *, batch_size: int, bptt: int, lr: float,
           clip: float) -> tuple[int, str]:
    """Adam with gradient clipping over contiguous windows; stops early on a NaN."""
    batcher = BPTTBatcher(ids, batch_size, bptt)
    opt = Adam(model, lr=lr)
    model.train()
    model.reset_state()
    done, note = 0, ""
    while done < steps:
        if batcher.position >= len(batcher):
            batcher.reset()
            model.reset_state()
        x, y = batcher.batch(batcher.position)
        batcher.position += 1
        model.zero_grad()
        loss = model.forward_loss(model.xp.asarray(x), model.xp.asarray(y))
        if not math.isfinite(loss):
            note = f"diverged at step {done + 1}"
            break
        model.backward()
        norm = clip_grad_norm(model, clip)
        if not math.isfinite(norm):
            note = f"gradient overflow at step {done + 1}"
            break
        opt.step()
        done += 1
    model.reset_state()
    model.eval()
    return done, note


def _window_loss(model: Any, windows: np.ndarray, targets: np.ndarray) -> float:
    if not model.rnn.cell_kind.recurrent:
        top = run_min(model, windows)[1][:, -1]
    else:
        top = run_cells(layer_cells(model.rnn), _embed(model, windows))[0][-1][:, -1]
    p = softmax(_decode(model, top))
    return float(-np.log(p[np.arange(len(targets)), targets] + 1e-300).mean())


def gradient_flow_study(ids: Array, vocab_size: int, *, variants: Sequence[str] | None = None,
                        steps: int = 300, hidden_size: int = 64, embedding_dim: int = 32,
                        max_lag: int = 60, windows: int = 64, batch_size: int = 32,
                        bptt: int = 64, lr: float = 0.003, clip: float = 5.0,
                        scale: float | None = 3.0, eval_ids: Any = None, seed: int = 0,
                        echo: Any = None) -> GradientFlow:
    """Gradient flow at initialisation and after ``steps`` training steps, per variant.

    Every variant (names from :data:`VARIANTS`) is a one-layer
    :class:`~rnnlab.models.RNNLM` built from the same ``seed``, trained with Adam on the
    same ``ids`` in the same order, and measured on the same ``windows`` random windows
    of ``max_lag + 1`` tokens of ``eval_ids`` (default ``ids``). With ``scale`` the
    initial weights are also measured with every recurrent matrix multiplied by
    ``scale`` (3 takes the spectral radius from about 0.6 to about 1.8: the plain RNNs
    explode, the gated ones do not). ``steps=0`` measures initialisation only.
    ``echo(message)`` reports progress.
    """
    names = list(VARIANTS) if variants is None else list(variants)
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise ValueError(f"gradient_flow_study: variants expected names from "
                         f"{list(VARIANTS)}, got {list(variants or [])}")
    ids = np.asarray(to_numpy(ids)).reshape(-1)
    eval_ids = ids if eval_ids is None else np.asarray(to_numpy(eval_ids)).reshape(-1)
    win, tgt = sample_windows(eval_ids, windows, max_lag + 1, rng=seed)
    result = GradientFlow(norms={}, steps=steps, scale=scale)
    for name in names:
        model = RNNLM(vocab_size, embedding_dim, hidden_size, 1, rng=seed, device="cpu",
                      **VARIANTS[name])
        model.eval()
        result.norms[name] = {"init": gradient_norms(model, win, tgt)}
        result.losses[name] = {"init": _window_loss(model, win, tgt)}
        result.radius[name] = {"init": _radius(model)}
        if scale is not None and model.rnn.cell_kind.recurrent:  # min cells: no W_hh to scale
            scaled = RNNLM(vocab_size, embedding_dim, hidden_size, 1, rng=seed, device="cpu",
                           **VARIANTS[name])
            scaled.eval()
            scale_recurrent(scaled, scale)
            result.norms[name]["init-scaled"] = gradient_norms(scaled, win, tgt)
            result.losses[name]["init-scaled"] = _window_loss(scaled, win, tgt)
            result.radius[name]["init-scaled"] = recurrent_radius(scaled)
        if steps > 0:
            if echo is not None:
                echo(f"gradient flow: training {name} for {steps} steps")
            _, note = _train(model, ids, steps, batch_size=batch_size, bptt=bptt, lr=lr,
                                clip=clip)
            if note:
                result.notes[name] = note
            result.norms[name]["trained"] = gradient_norms(model, win, tgt)
            result.losses[name]["trained"] = _window_loss(model, win, tgt)
            result.radius[name]["trained"] = _radius(model)
    return result


def gradient_flow_of_models(models: dict[str, Any], ids: Array, *, max_lag: int = 60,
                            windows: int = 64, seed: int = 0, stage: str = "trained",
                            layer: int = -1) -> GradientFlow:
    """Gradient flow of already-trained models (e.g. loaded checkpoints), by name, on the
    same random windows of ``ids``, at layer ``layer`` (default the top one)."""
    ids = np.asarray(to_numpy(ids)).reshape(-1)
    win, tgt = sample_windows(ids, windows, max_lag + 1, rng=seed)
    result = GradientFlow(norms={})
    for name, model in models.items():
        result.norms[name] = {stage: gradient_norms(model, win, tgt, layer=layer)}
        result.losses[name] = {stage: _window_loss(model, win, tgt)}
        result.radius[name] = {stage: _radius(model, layer % model.rnn.num_layers)}
    return result


def _stage_title(flow: GradientFlow, stage: str) -> str:
    if stage == "init":
        return "at initialisation"
    if stage == "init-scaled":
        return f"at initialisation, recurrent weights ×{flow.scale:g}"
    if stage == "trained":
        return f"after training ({flow.steps} steps)" if flow.steps else "after training"
    return stage


def plot_gradient_flow(flow: GradientFlow, out: str | Path | None = None, *,
                       normalize: bool = True, band: bool = True, title: str | None = None,
                       dpi: int = 100) -> Any:
    """One panel per stage, one curve per variant: median ``||dL/dh_{t-k}||`` against
    ``k`` on a log scale, with the 25-75 % band over windows. Returns the Figure."""
    stages = flow.stages
    fig = new_figure(figsize=(5.0 * len(stages) + 0.6, 4.3), dpi=dpi)
    axes = fig.subplots(1, len(stages), sharey=True, squeeze=False)[0]
    for ax, stage in zip(axes, stages, strict=True):
        for variant in flow.variants:
            norms = flow.norms[variant].get(stage)
            if norms is None:
                continue
            lags = np.arange(norms.shape[1])
            mid = median_curve(norms, normalize)
            color = VARIANT_COLORS.get(variant)
            loss = flow.losses.get(variant, {}).get(stage)
            rho = flow.radius.get(variant, {}).get(stage)
            extra = [] if rho is None else [f"ρ {rho:.2f}"]
            extra += [] if loss is None else [f"loss {loss:.2f}"]
            label = f"{variant} ({', '.join(extra)})" if extra else variant
            if variant in flow.notes and stage == "trained":
                label += f", {flow.notes[variant]}"
            finite = np.isfinite(mid) & (mid > 0)
            ax.plot(lags[finite], mid[finite], color=color, lw=2, label=label)
            if band:
                lo = median_curve(norms, normalize, 25)
                hi = median_curve(norms, normalize, 75)
                ok = finite & np.isfinite(lo) & np.isfinite(hi) & (lo > 0)
                ax.fill_between(lags[ok], lo[ok], hi[ok], color=color, alpha=0.15, lw=0)
        ax.set_yscale("log")
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("k (steps back from the loss)")
        ax.set_title(_stage_title(flow, stage), fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[0].set_ylabel("‖∂L/∂h(t−k)‖ / ‖∂L/∂h(t)‖" if normalize else "‖∂L/∂h(t−k)‖")
    fig.suptitle(title or "Gradient flow through time: loss at step t, gradient k steps "
                 "earlier (median over windows, 25–75 % band; ρ: spectral radius of W_hh)",
                 fontsize=10)
    save_figure(fig, out)
    return fig
