"""Gradient clipping, in place: by global L2 norm and element-wise by value.

``params`` may be an :class:`rnnlab.nn.Module`, ``(name, param, grad)`` triples,
``(param, grad)`` pairs, a list of gradient arrays or one array. A gradient array that
appears more than once (tied weights) counts once. A module's ``parameters()`` and
``named_parameters()`` give the weights, not their gradients (as PyTorch's): they are
refused rather than clipped.
"""

from __future__ import annotations

import math
from typing import Any

from rnnlab.backend import xp_of
from rnnlab.optim._checks import check_real, collect_grads

#: Added to the norm before dividing, as in ``torch.nn.utils.clip_grad_norm_``.
NORM_EPS = 1e-6


def _squared_norm(grad: Any) -> float:
    """``Σ g²`` as a Python float, robust to overflow of the array's own dtype."""
    xp = xp_of(grad)
    flat = grad.reshape(-1)
    sq = float(xp.vdot(flat, flat))
    if math.isinf(sq):
        # The squares overflowed the dtype (float32 above ~1.8e19): rescale by max |g|.
        # A rare path, so its temporaries do not matter.
        peak = float(xp.abs(flat).max())
        if math.isfinite(peak) and peak > 0:
            scaled = flat / peak
            sq = peak * peak * float(xp.vdot(scaled, scaled))
    return sq


def grad_norm(params: Any) -> float:
    """The global L2 norm ``√(Σ_i ‖g_i‖²)`` of all gradients (no clipping)."""
    grads = collect_grads(params, "grad_norm")
    return math.sqrt(math.fsum(_squared_norm(g) for g in grads))


def clip_grad_norm(params: Any, max_norm: float) -> float:
    """Rescale all gradients together so that their global L2 norm is at most ``max_norm``.

    ``n = √(Σ_i ‖g_i‖²)``; ``c = max_norm / (n + 1e-6)``; if ``c < 1`` every gradient is
    multiplied by ``c`` in place (PyTorch's rule), otherwise nothing changes. Returns the
    norm before clipping as a Python float. A non-finite norm (``inf`` or ``nan``: the
    gradients hold inf or NaN) is returned as it is and **nothing is scaled**, so the
    caller can detect divergence and skip the step.
    ``max_norm`` must be > 0 (``inf`` allowed: just measure).
    """
    owner = "clip_grad_norm"
    max_norm = check_real(max_norm, owner, "max_norm", low=0.0, low_open=True,
                          allow_inf=True)
    grads = collect_grads(params, owner)
    total = math.sqrt(math.fsum(_squared_norm(g) for g in grads))  # eq: clip.norm
    if not math.isfinite(total):
        return total
    coef = max_norm / (total + NORM_EPS)  # eq: clip.coef
    if coef < 1.0:
        for g in grads:
            g *= coef  # eq: clip.scale
    return total


def clip_grad_value(params: Any, clip_value: float) -> None:
    """Clip every gradient element into ``[-clip_value, clip_value]`` in place.

    NaN elements stay NaN. ``clip_value`` must be a finite number > 0.
    """
    owner = "clip_grad_value"
    c = check_real(clip_value, owner, "clip_value", low=0.0, low_open=True)
    for g in collect_grads(params, owner):
        xp_of(g).clip(g, -c, c, out=g)  # eq: clip.value
