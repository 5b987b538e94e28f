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
