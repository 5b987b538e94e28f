"""The activation page: one self-contained HTML file that shows a text with every token
coloured by a chosen hidden unit's activation (red positive, blue negative).

Everything is inline (no network, no external script or font): the text, every unit's
activations (8-bit, base64), and a ranking of the units by how strongly each follows a
nameable property of the text (inside a string, inside brackets, line start ...; see
:mod:`rnnlab.viz.units`). The page has a unit selector, previous/next buttons (and the
arrow keys), the ranked list and a per-property table to click through, an underline
control that marks where a property holds, a trace of the unit over the whole text, and
a read-out of the value under the mouse. ``#unit=17&underline=inside%20brackets`` in the
address opens unit 17 with that property underlined.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.safefiles import write_atomic
from rnnlab.viz.tokens import display_token
from rnnlab.viz.units import best_units, correlations, rank_units, text_features

#: Tokens at most in a page (the activations of every unit are embedded).
DEFAULT_MAX_TOKENS = 3000


def page_data(states: Any, *, kind: str | None = None, layer: int = -1,
              max_tokens: int | None = DEFAULT_MAX_TOKENS, title: str | None = None
              ) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (see :func:`activation_page`)."""
    if title is not None and not isinstance(title, str):
        raise TypeError(f"activation_page: title expected a str or None, got "
                        f"{type(title).__name__}")
    if isinstance(layer, bool) or not isinstance(layer, int | np.integer):
        raise TypeError(f"activation_page: layer expected an int, got {type(layer).__name__}")
    layer = int(layer)
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int | np.integer):
            raise TypeError(f"activation_page: max_tokens expected an int or None, got "
                            f"{type(max_tokens).__name__}")
        if max_tokens < 1:
            raise ValueError(f"activation_page: max_tokens expected an int >= 1 or None, got "
                             f"{int(max_tokens)}")
        max_tokens = int(max_tokens)
    if kind is None:
        kind = "c" if states.c is not None else "h"
    acts = np.asarray(states.states(layer, kind), dtype=np.float64)
    tokens = list(states.tokens)
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens, acts = tokens[:max_tokens], acts[:max_tokens]
    T, H = acts.shape
    bounded = kind == "h" and states.label != "rnn-relu"  # tanh-bounded: a shared scale
    if bounded:
        scale = np.ones(H)
    else:
        scale = np.abs(acts).max(axis=0)
        scale[scale == 0] = 1.0
    q = np.clip(np.rint(acts / scale * 127.0), -127, 127).astype(np.int8)
    features = text_features(tokens, states.level)
    ranking = rank_units(acts, features)
    per_feature = best_units(acts, features, per_feature=3)
    corr = correlations(acts, features)  # (H, F)
    level = states.level
    display, breaks = [], []
    end = "\n" if level == "char" else "<eos>"
    for i, t in enumerate(tokens):
        display.append(display_token(t, level) if t in ("\n", "<eos>") or len(t) != 1
                       or not t.isprintable() else t)
        if t == end:
            breaks.append(i)
    layer_no = layer % len(states.h)
    state_name = "cell state c" if kind == "c" else "hidden state h"
    return {
        "title": title or f"{states.label} {state_name}, layer {layer_no}: what each unit "
                          f"responds to",
        "model": states.label,
        "kind": kind,
        "layer": layer_no,
        "level": level,
        "tokens": display,
        "breaks": breaks,
        "T": T,
        "units": H,
        "bounded": bool(bounded),
        "scale": [round(float(s), 4) for s in scale],
        "acts": base64.b64encode(np.ascontiguousarray(q.T).tobytes()).decode("ascii"),
        "ranking": [[s.unit, s.feature, round(s.r, 3)] for s in ranking],
        "corr": [[round(float(r), 3) for r in row] for row in corr],
        "features": [
            {"name": f.name, "description": f.description, "binary": f.binary,
             "best": [[u, round(r, 3)] for u, r in per_feature[f.name]],
             "mask": "".join("1" if v > 0 else "0" for v in f.values) if f.binary else None}
            for f in features
        ],
    }


#: Characters written as JSON escapes inside the ``<script>`` element: ``<`` (so no
#: ``</script`` or ``<!--`` can occur), ``>`` and ``&`` (the same rule as Django's
#: ``json_script``), and the line separators U+2028/U+2029 (not allowed in JavaScript
#: strings before ES2019). They occur only inside JSON strings, where an escape such as
#: ``\u003c`` stands for the same character: the text stays valid JSON, nothing to undo.
_SCRIPT_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"}
_PLACEHOLDER = re.compile(r"__(TITLE|DATA)__")
#: The page's package data (``rnnlab/viz/templates``): an HTML file that links its style
#: sheet and script, so that each opens, lints and checks on its own; the page written
#: inlines both in place of those two lines (one self-contained file).
TEMPLATE_FILES = ("activations.html", "activations.css", "activations.js")
_INLINED = (('<link rel="stylesheet" href="activations.css">\n', "<style>\n", "activations.css",
             "</style>\n"),
            ('<script src="activations.js"></script>\n', "<script>\n", "activations.js",
             "</script>\n"))


@functools.cache
def page_template() -> str:
    """The page with ``__TITLE__`` and ``__DATA__`` still to fill: the template's HTML
    with its style sheet and script inlined (read once from the package data)."""
    folder = resources.files("rnnlab.viz") / "templates"
    page = (folder / "activations.html").read_text(encoding="utf-8")
    for link, opening, name, closing in _INLINED:
        if page.count(link) != 1:
            raise RuntimeError(f"rnnlab/viz/templates/activations.html: expected the line "
                               f"{link.strip()!r} once, got it {page.count(link)} times")
        page = page.replace(link, opening + (folder / name).read_text(encoding="utf-8")
                            + closing)
    return page


def _script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element, and still valid JSON as it stands."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_SCRIPT_ESCAPES)


def render_page(data: dict[str, Any]) -> str:
    """The HTML of the page for :func:`page_data`'s output.

    The template's placeholders are filled in one pass, so a title that itself holds
    ``__DATA__`` stays text; the title is HTML-escaped, the data JSON-escaped.
    """
    fields = {"TITLE": html.escape(str(data["title"])), "DATA": _script_json(data)}
    return _PLACEHOLDER.sub(lambda m: fields[m.group(1)], page_template())


def check_selection(data: dict[str, Any], unit: Any = None, underline: Any = None) -> None:
    """Check a unit and a property to show on the page of :func:`page_data`'s ``data``
    (what ``#unit=...&underline=...`` selects): ``unit`` an int in ``[0, units)``,
    ``underline`` one of the page's property names; None leaves either unset. A
    ``ValueError`` (or ``TypeError``) lists what exists."""
    units = int(data["units"])
    if unit is not None:
        if isinstance(unit, bool) or not isinstance(unit, int | np.integer):
            raise TypeError(f"activation_page: unit expected an int, got "
                            f"{type(unit).__name__}")
        if not 0 <= unit < units:
            raise ValueError(f"activation_page: unit expected a unit of the layer, 0 to "
                             f"{units - 1} ({units} units), got {int(unit)}")
    if underline is not None:
        names = [f["name"] for f in data["features"]]
        if underline not in names:
            raise ValueError(f"activation_page: underline expected one of the page's "
                             f"properties ({', '.join(repr(n) for n in names)}), got "
                             f"{underline!r}")


def activation_page(states: Any, out: str | Path, *, kind: str | None = None, layer: int = -1,
                    max_tokens: int | None = DEFAULT_MAX_TOKENS, title: str | None = None,
                    unit: int | None = None, underline: str | None = None) -> Path:
    """Write the activation page of :func:`~rnnlab.viz.collect_states`' ``states`` to
    ``out`` (``kind``: ``"c"`` LSTM cell state, the default for an LSTM, or ``"h"``).
    Returns the path. NumPy only: needs no plotting extra.

    ``unit`` and ``underline`` (a property's name), when given, are the selection that a
    screenshot or a link (``#unit=17&underline=...``) will make: they are checked against
    the page (:func:`check_selection`) before anything is written. The file is written
    atomically, never through a link (:func:`~rnnlab.data.safefiles.write_atomic`)."""
    data = page_data(states, kind=kind, layer=layer, max_tokens=max_tokens, title=title)
    check_selection(data, unit, underline)
    return write_atomic(out, render_page(data).encode("utf-8"))
