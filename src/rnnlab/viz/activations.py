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
import html
import json
import re
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
    return _PLACEHOLDER.sub(lambda m: fields[m.group(1)], _TEMPLATE)


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


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>__TITLE__</title>
<style>
  :root { --pos: 215, 48, 39; --neg: 33, 102, 172; --ink: #1b1b1b; --muted: #666; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--ink); background: #fafafa; }
  header { padding: 10px 16px 6px; background: #fff; border-bottom: 1px solid #ddd; }
  h1 { font-size: 17px; margin: 0 0 6px; font-weight: 600; }
  .controls { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; }
  .controls label { color: var(--muted); font-size: 13px; }
  select, button { font: inherit; font-size: 13px; padding: 2px 6px; }
  #unit { max-width: 430px; }
  .legend { display: inline-flex; align-items: center; gap: 6px; font-size: 12px;
            color: var(--muted); }
  .legend .bar { width: 140px; height: 12px; border: 1px solid #ccc;
    background: linear-gradient(to right, rgb(var(--neg)), #fff, rgb(var(--pos))); }
  main { display: grid; grid-template-columns: minmax(0, 1fr) 330px; gap: 12px;
         padding: 12px 16px; }
  #info { font-size: 13px; margin-bottom: 6px; min-height: 19px; }
  #info b { font-weight: 600; }
  #trace { width: 100%; height: 54px; display: block; background: #fff;
           border: 1px solid #ddd; margin-bottom: 8px; cursor: crosshair; }
  #text { font: 13px/1.55 "DejaVu Sans Mono", Menlo, Consolas, monospace;
          white-space: pre-wrap; word-break: break-all; background: #fff;
          border: 1px solid #ddd; padding: 10px; margin: 0; }
  #text span.t { border-radius: 2px; }
  #text span.nl { color: #aaa; }
  #text span.mark { box-shadow: inset 0 -2px 0 #111; }
  #text span.hover { outline: 1px solid #000; }
  aside { font-size: 12.5px; }
  aside h2 { font-size: 13px; margin: 0 0 4px; font-weight: 600; }
  .panel { background: #fff; border: 1px solid #ddd; padding: 8px; margin-bottom: 10px; }
  #ranking { max-height: 380px; overflow-y: auto; }
  table { border-collapse: collapse; width: 100%; }
  td { padding: 1px 4px; white-space: nowrap; vertical-align: top; }
  td.chips { white-space: normal; }
  tr.row { cursor: pointer; }
  tr.row:hover { background: #eef; }
  tr.row.selected { background: #dde4ff; }
  td.r { text-align: right; font-variant-numeric: tabular-nums; }
  td.bar span { display: inline-block; height: 8px; vertical-align: middle; }
  .chip { display: inline-block; padding: 0 5px; margin: 1px 2px; border: 1px solid #bbb;
          border-radius: 8px; cursor: pointer; font-size: 11.5px; }
  .chip:hover { background: #eef; }
  .muted { color: var(--muted); }
</style>
</head>
<body>
<header>
  <h1 id="title">__TITLE__</h1>
  <div class="controls">
    <label for="unit">unit</label>
    <button id="prev" type="button"
            title="previous unit in the ranking (left arrow)">&#9664;</button>
    <select id="unit" aria-label="hidden unit"></select>
    <button id="next" type="button"
            title="next unit in the ranking (right arrow)">&#9654;</button>
    <label for="feature">underline</label>
    <select id="feature" aria-label="underline where a property holds"></select>
    <span class="legend"><span id="lo"></span><span class="bar"></span><span id="hi"></span></span>
  </div>
</header>
<main>
  <section>
    <div id="info"></div>
    <canvas id="trace" width="1200" height="54" aria-label="the unit over the whole text"></canvas>
    <pre id="text"></pre>
  </section>
  <aside>
    <div class="panel">
      <h2>Units ranked by
        <select id="rankby" aria-label="rank the units by"></select></h2>
      <div class="muted">r: correlation of the unit with the property over this text</div>
      <div id="ranking"><table><tbody id="rank-body"></tbody></table></div>
    </div>
    <div class="panel">
      <h2>Best units for each property</h2>
      <table><tbody id="feature-body"></tbody></table>
    </div>
  </aside>
</main>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const T = data.T, H = data.units;
  const raw = atob(data.acts);
  const acts = new Int8Array(raw.length);
  for (let i = 0; i < raw.length; i++) acts[i] = (raw.charCodeAt(i) << 24) >> 24;
  let order = data.ranking.map(function (row) { return row[0]; });
  const best = {};
  data.ranking.forEach(function (row) { best[row[0]] = row; });
  const features = {};
  data.features.forEach(function (f) { features[f.name] = f; });

  const textEl = document.getElementById("text");
  const spans = new Array(T);
  const breaks = new Set(data.breaks);
  const frag = document.createDocumentFragment();
  const sep = data.level === "char" ? "" : " ";
  for (let i = 0; i < T; i++) {
    const s = document.createElement("span");
    s.className = breaks.has(i) ? "t nl" : "t";
    s.textContent = data.tokens[i];
    s.dataset.i = i;
    spans[i] = s;
    frag.appendChild(s);
    if (breaks.has(i)) frag.appendChild(document.createTextNode("\n"));
    else if (sep) frag.appendChild(document.createTextNode(sep));
  }
  textEl.appendChild(frag);

  const unitSel = document.getElementById("unit");
  const featSel = document.getElementById("feature");
  addOption(featSel, "", "nothing");
  data.features.forEach(function (f) { if (f.binary) addOption(featSel, f.name, f.name); });

  const rankBody = document.getElementById("rank-body");
  const rankBy = document.getElementById("rankby");
  addOption(rankBy, "", "their strongest property");
  data.features.forEach(function (f, j) { addOption(rankBy, String(j), f.name); });
  let rankRows = {};
  function rankRow(u) {
    if (rankBy.value === "") return best[u];
    const j = Number(rankBy.value);
    return [u, data.features[j].name, data.corr[u][j]];
  }
  function buildRanking() {
    if (rankBy.value === "") {
      order = data.ranking.map(function (row) { return row[0]; });
    } else {
      const j = Number(rankBy.value);
      order = [];
      for (let u = 0; u < H; u++) order.push(u);
      order.sort(function (a, b) {
        return Math.abs(data.corr[b][j]) - Math.abs(data.corr[a][j]) || a - b;
      });
    }
    unitSel.textContent = "";
    rankBody.textContent = "";
    rankRows = {};
    order.forEach(function (u, rank) {
      const row = rankRow(u);
      const opt = document.createElement("option");
      opt.value = String(u);
      opt.textContent = "#" + (rank + 1) + "  unit " + u +
        (row[1] ? "  \u2014 " + row[1] + " (r = " + fmt(row[2]) + ")" : "");
      unitSel.appendChild(opt);
      const tr = document.createElement("tr");
      tr.className = "row";
      tr.dataset.unit = u;
      const width = Math.round(Math.abs(row[2]) * 60);
      const colour = row[2] >= 0 ? "rgb(var(--pos))" : "rgb(var(--neg))";
      tr.innerHTML = "<td class='muted'>" + (rank + 1) + "</td><td>unit " + u + "</td><td>" +
        esc(row[1] || "\u2013") + "</td><td class='r'>" + fmt(row[2]) +
        "</td><td class='bar'><span style='width:" + width + "px;background:" + colour +
        "'></span></td>";
      tr.addEventListener("click", function () { setUnit(u); });
      rankRows[u] = tr;
      rankBody.appendChild(tr);
    });
    unitSel.value = String(current);
    if (rankRows[current]) rankRows[current].classList.add("selected");
  }
  const featBody = document.getElementById("feature-body");
  data.features.forEach(function (f) {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = f.name;
    name.title = f.description;
    const chips = document.createElement("td");
    chips.className = "chips";
    f.best.forEach(function (pair) {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = pair[0] + " (" + fmt(pair[1]) + ")";
      chip.title = "unit " + pair[0] + ", r = " + fmt(pair[1]);
      chip.addEventListener("click", function () {
        setUnit(pair[0]);
        if (f.binary) { featSel.value = f.name; setFeature(f.name); }
      });
      chips.appendChild(chip);
    });
    tr.appendChild(name);
    tr.appendChild(chips);
    featBody.appendChild(tr);
  });

  let current = order.length ? order[0] : 0;
  let hovered = -1;
  buildRanking();

  function addOption(sel, value, label) {
    const opt = document.createElement("option");
    opt.value = value;
    opt.textContent = label;
    sel.appendChild(opt);
  }
  function fmt(r) { return (r >= 0 ? "+" : "\u2212") + Math.abs(r).toFixed(2); }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c];
    });
  }
  function value(u, i) { return acts[u * T + i] / 127; }
  function colour(v) {
    const target = v >= 0 ? [215, 48, 39] : [33, 102, 172];
    const a = Math.min(1, Math.abs(v));
    const c = target.map(function (t) { return Math.round(255 + (t - 255) * a); });
    return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")";
  }
  function paint() {
    const base = current * T;
    for (let i = 0; i < T; i++) {
      const v = acts[base + i] / 127;
      const s = spans[i];
      s.style.backgroundColor = colour(v);
      s.style.color = Math.abs(v) > 0.7 ? "#fff" : "";
    }
  }
  function drawTrace() {
    const canvas = document.getElementById("trace");
    const w = canvas.clientWidth || 1200;
    canvas.width = w;
    const h = canvas.height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    const mid = h / 2;
    ctx.strokeStyle = "#ccc";
    ctx.beginPath(); ctx.moveTo(0, mid); ctx.lineTo(w, mid); ctx.stroke();
    const mask = featSel.value ? features[featSel.value].mask : null;
    if (mask) {
      ctx.fillStyle = "rgba(0,0,0,0.08)";
      for (let i = 0; i < T; i++) {
        if (mask.charCodeAt(i) === 49) ctx.fillRect(i * w / T, 0, Math.max(1, w / T), h);
      }
    }
    for (let i = 0; i < T; i++) {
      const v = value(current, i);
      ctx.fillStyle = colour(v >= 0 ? 1 : -1);
      const x = i * w / T, y = mid - v * (mid - 2);
      ctx.fillRect(x, Math.min(mid, y), Math.max(1, w / T), Math.abs(mid - y));
    }
    if (hovered >= 0) {
      ctx.strokeStyle = "#000";
      ctx.beginPath();
      ctx.moveTo((hovered + 0.5) * w / T, 0); ctx.lineTo((hovered + 0.5) * w / T, h);
      ctx.stroke();
    }
  }
  function describe() {
    const row = best[current];
    const scale = data.scale[current];
    const range = data.bounded ? "activations in [\u22121, 1]" :
      "colour scale \u00b1" + scale.toPrecision(3) + " (this unit's largest |value|)";
    let text = "<b>unit " + current + "</b>";
    if (row && row[1]) text += ": follows <b>" + esc(row[1]) + "</b> (r = " + fmt(row[2]) + ")";
    text += " \u00b7 " + range;
    if (hovered >= 0) {
      const v = value(current, hovered) * scale;
      text += " \u00b7 token " + hovered + " <b>" + esc(data.tokens[hovered]) + "</b> = " +
        (v >= 0 ? "+" : "\u2212") + Math.abs(v).toFixed(3);
    }
    document.getElementById("info").innerHTML = text;
    const lo = document.getElementById("lo"), hi = document.getElementById("hi");
    lo.textContent = "\u2212" + (data.bounded ? "1" : scale.toPrecision(3));
    hi.textContent = "+" + (data.bounded ? "1" : scale.toPrecision(3));
  }
  function setUnit(u) {
    u = Number(u);
    if (!(u >= 0 && u < H)) return;
    if (rankRows[current]) rankRows[current].classList.remove("selected");
    current = u;
    unitSel.value = String(u);
    if (rankRows[u]) {
      rankRows[u].classList.add("selected");
      const box = document.getElementById("ranking");
      const top = rankRows[u].offsetTop - box.offsetTop;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - 20) {
        box.scrollTop = Math.max(0, top - box.clientHeight / 2);
      }
    }
    paint(); drawTrace(); describe();
    updateAddress();
    document.documentElement.dataset.unit = String(u);
  }
  function updateAddress() {
    if (!history.replaceState) return;
    let hash = "#unit=" + current;
    if (featSel.value) hash += "&underline=" + encodeURIComponent(featSel.value);
    try { history.replaceState(null, "", hash); } catch (e) { /* some file: URLs */ }
  }
  function setFeature(name) {
    if (name && !features[name]) return;
    featSel.value = name;
    updateAddress();
    const mask = name ? features[name].mask : null;
    for (let i = 0; i < T; i++) {
      spans[i].classList.toggle("mark", !!mask && mask.charCodeAt(i) === 49);
    }
    drawTrace();
  }
  function step(delta) {
    const at = order.indexOf(current);
    const next = order[(at + delta + order.length) % order.length];
    setUnit(next);
  }
  unitSel.addEventListener("change", function () { setUnit(unitSel.value); });
  featSel.addEventListener("change", function () { setFeature(featSel.value); });
  rankBy.addEventListener("change", function () {
    buildRanking();
    document.getElementById("ranking").scrollTop = 0;
  });
  document.getElementById("prev").addEventListener("click", function () { step(-1); });
  document.getElementById("next").addEventListener("click", function () { step(1); });
  document.addEventListener("keydown", function (e) {
    if (e.target && (e.target.tagName === "SELECT" || e.target.tagName === "INPUT")) return;
    if (e.key === "ArrowRight") { step(1); e.preventDefault(); }
    if (e.key === "ArrowLeft") { step(-1); e.preventDefault(); }
  });
  textEl.addEventListener("mouseover", function (e) {
    const i = e.target && e.target.dataset ? Number(e.target.dataset.i) : NaN;
    if (!isNaN(i)) {
      if (hovered >= 0) spans[hovered].classList.remove("hover");
      hovered = i;
      spans[i].classList.add("hover");
      describe(); drawTrace();
    }
  });
  document.getElementById("trace").addEventListener("click", function (e) {
    const rect = e.target.getBoundingClientRect();
    const i = Math.floor((e.clientX - rect.left) / rect.width * T);
    if (i >= 0 && i < T) spans[i].scrollIntoView({block: "center"});
  });
  window.addEventListener("resize", drawTrace);
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const wanted = params.get("underline");
  if (wanted && features[wanted] && features[wanted].binary) setFeature(wanted);
  setUnit(/^\d+$/.test(params.get("unit") || "") ? Number(params.get("unit")) : current);
  window.rnnlabActivations = {setUnit: setUnit, unit: function () { return current; },
                              units: H, tokens: T};
})();
</script>
</body>
</html>
"""
