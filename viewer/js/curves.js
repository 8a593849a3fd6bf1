// The curves under the scatter: every numeric per-frame series in `metrics` and `diagnostics`
// (scalars per frame, or per-epoch arrays aligned with window.epochs), small multiples on one
// canvas, with phase changes and early stopping marked on the epoch axis and the scatter's
// current epoch drawn as a cursor. Clicking a plot picks that epoch.
"use strict";
var MM = window.MM || (window.MM = {});

MM.MAX_SERIES = 48;

// Lines that share a plot: train_loss / val_loss -> "loss"; a diagnostic's per-epoch array
// and its newest-epoch quantity -> the diagnostic's name.
function plotKey(name) {
  return name.replace(/ \(per epoch\)$/, "").replace(/^(quantities|per_epoch)\./, "")
             .replace(/^(train|training|val|valid|validation|test)[_\-.]/i, "");
}

// Short label of a line inside its plot: "train", "val", "window" (per-epoch array over the
// frame's window), "newest" (the newest epoch's value when the frame was made).
function lineLabel(name, key) {
  if (/ \(per epoch\)$/.test(name)) return "window";
  if (/^quantities\./.test(name)) return "newest";
  var rest = name.replace(key, "").replace(/[_\-. ]+$/, "");
  return rest || name;
}

// Diagnostics bookkeeping that is not a training curve (docs/DIAGNOSTICS.md).
MM.CURVE_SKIP = { timings_s: 1, seconds: 1, matrices: 1, newest: 1, warnings: 1, epochs: 1, present_nodes: 1,
                  frame_radius: 1, k: 1, sampled: 1, epoch: 1, estimator: 1 };

// embeddings: decoded embedding frames in file order; events: event frames;
// current: index into embeddings (per-epoch arrays are read from frames up to it).
MM.buildCurves = function (embeddings, events, current) {
  var series = {}, order = [];
  function add(name, epoch, v) {
    if (!(name in series)) {
      if (order.length >= MM.MAX_SERIES) return;
      series[name] = {}; order.push(name);
    }
    series[name][epoch] = v;
  }
  // skip: diagnostics only (a metric named "epoch" is still a metric).
  function walk(prefix, obj, f, depth, allowArrays, skip) {
    Object.keys(obj).forEach(function (k) {
      var v = obj[k], name = prefix + k;
      if (skip && (MM.CURVE_SKIP[k] || /_nodes_scored$/.test(k))) return;
      if (typeof v === "number" && isFinite(v)) add(name, f.epoch, v);
      else if (v === null && prefix === "") add(name, f.epoch, null);  // a metric that was NaN/Inf
      else if (allowArrays && Array.isArray(v) && v.length === f.epochs.length && v.length > 0 &&
               v.every(function (x) { return x === null || typeof x === "number"; })) {
        for (var b = 0; b < v.length; b++) add(name + " (per epoch)", f.epochs[b], typeof v[b] === "number" ? v[b] : null);
      } else if (v && typeof v === "object" && !Array.isArray(v) && depth < 3) walk(name + ".", v, f, depth + 1, allowArrays, skip);
    });
  }
  embeddings.forEach(function (f, idx) {
    walk("", f.metrics, f, 0, false, false);
    // Per-epoch arrays are recomputed over the window: the newest frame up to the cursor wins.
    walk("", f.diagnostics, f, 0, idx <= current, true);
  });
  var plots = [], byKey = {};
  order.forEach(function (name) {
    var key = plotKey(name), pts = [];
    Object.keys(series[name]).map(Number).sort(function (a, b) { return a - b; }).forEach(function (e) {
      pts.push([e, series[name][e]]);
    });
    if (!pts.some(function (p) { return p[1] !== null; })) return;
    if (!(key in byKey)) { byKey[key] = { title: key, lines: [] }; plots.push(byKey[key]); }
    byKey[key].lines.push({ name: name, label: lineLabel(name, key), points: pts });
  });
  var marks = [];
  events.forEach(function (ev) {
    if (ev.event !== "phase_change" && ev.event !== "early_stop") return;
    var d = ev.data || {}, label = ev.event === "early_stop" ? "early stop" :
        (typeof d.to === "string" ? d.to : typeof d.phase === "string" ? d.phase : ev.message || "phase");
    marks.push({ epoch: ev.epoch, kind: ev.event, label: String(label).slice(0, 40), message: ev.message });
  });
  return { plots: plots, marks: marks };
};

MM.Curves = function (canvas, onPick) {
  this.canvas = canvas; this.model = { plots: [], marks: [] }; this.cursor = null; this.layout = [];
  var self = this;
  canvas.addEventListener("click", function (e) {
    var r = canvas.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    self.layout.forEach(function (b) {
      if (x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + b.h && b.e1 >= b.e0)
        onPick(Math.round(b.e0 + (x - b.x) / b.w * (b.e1 - b.e0)));
    });
  });
};

MM.Curves.prototype.draw = function (model, cursorEpoch) {
  this.model = model; this.cursor = cursorEpoch;
  var c = this.canvas, dpr = window.devicePixelRatio || 1, W = Math.max(200, c.clientWidth);
  var plots = model.plots, cols = Math.max(1, Math.floor(W / 300)), rows = Math.ceil(plots.length / cols) || 1;
  var PH = 120, H = rows * PH;
  c.style.height = H + "px";
  c.width = Math.round(W * dpr); c.height = Math.round(H * dpr);
  var ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  ctx.font = "11px sans-serif";
  this.layout = [];
  if (!plots.length) { ctx.fillStyle = "#666"; ctx.fillText("no numeric metrics or diagnostics in the frames yet", 10, 20); return; }
  var e0 = Infinity, e1 = -Infinity;
  plots.forEach(function (p) { p.lines.forEach(function (l) { l.points.forEach(function (q) { e0 = Math.min(e0, q[0]); e1 = Math.max(e1, q[0]); }); }); });
  model.marks.forEach(function (m) { e0 = Math.min(e0, m.epoch); e1 = Math.max(e1, m.epoch); });
  if (e1 === e0) { e0 -= 1; e1 += 1; }
  var cw = W / cols, self = this;
  plots.forEach(function (p, k) {
    var bx = (k % cols) * cw + 44, by = Math.floor(k / cols) * PH + 20, bw = cw - 56, bh = PH - 42;
    self.layout.push({ x: bx, y: by, w: bw, h: bh, e0: e0, e1: e1 });
    var lo = Infinity, hi = -Infinity;
    p.lines.forEach(function (l) { l.points.forEach(function (q) { if (q[1] !== null) { lo = Math.min(lo, q[1]); hi = Math.max(hi, q[1]); } }); });
    if (hi === lo) { hi += 0.5; lo -= 0.5; }
    var X = function (e) { return bx + (e - e0) / (e1 - e0) * bw; }, Y = function (v) { return by + bh - (v - lo) / (hi - lo) * bh; };
    ctx.strokeStyle = "#ccc"; ctx.lineWidth = 1; ctx.strokeRect(bx, by, bw, bh);
    // title: the plot name, then each line's name in its colour
    ctx.save(); ctx.beginPath(); ctx.rect(bx - 40, by - 20, bw + 40, 18); ctx.clip();  // titles stay in their cell
    ctx.fillStyle = "#222"; ctx.textAlign = "left"; ctx.fillText(p.title, bx, by - 6);
    var tx = bx + ctx.measureText(p.title).width + 8;
    p.lines.forEach(function (l, j) {
      if (p.lines.length < 2) return;
      ctx.fillStyle = MM.css(MM.categorical(j)); ctx.fillText(l.label, tx, by - 6); tx += ctx.measureText(l.label).width + 8;
    });
    ctx.restore();
    ctx.fillStyle = "#666"; ctx.textAlign = "right";
    ctx.fillText(hi.toPrecision(3), bx - 4, by + 10); ctx.fillText(lo.toPrecision(3), bx - 4, by + bh);
    ctx.textAlign = "center";
    ctx.fillText(String(e0), bx, by + bh + 12); ctx.fillText(String(e1), bx + bw, by + bh + 12);
    ctx.fillText("epoch", bx + bw / 2, by + bh + 12);
    model.marks.forEach(function (m) {
      ctx.save(); ctx.setLineDash([4, 3]); ctx.strokeStyle = m.kind === "early_stop" ? "#c0392b" : "#7d3c98";
      ctx.beginPath(); ctx.moveTo(X(m.epoch), by); ctx.lineTo(X(m.epoch), by + bh); ctx.stroke(); ctx.restore();
      // Labels near the right edge go to the left of their line.
      var right = X(m.epoch) + ctx.measureText(m.label).width + 4 > bx + bw;
      ctx.fillStyle = m.kind === "early_stop" ? "#c0392b" : "#7d3c98"; ctx.textAlign = right ? "right" : "left";
      ctx.fillText(m.label, X(m.epoch) + (right ? -3 : 3), by + (m.kind === "early_stop" ? 24 : 11));
    });
    p.lines.forEach(function (l, j) {
      ctx.strokeStyle = ctx.fillStyle = MM.css(MM.categorical(j)); ctx.lineWidth = 1.5; ctx.beginPath();
      var pen = false;
      l.points.forEach(function (q) {
        if (q[1] === null) { pen = false; return; }
        if (pen) ctx.lineTo(X(q[0]), Y(q[1])); else { ctx.moveTo(X(q[0]), Y(q[1])); pen = true; }
      });
      ctx.stroke();
      l.points.forEach(function (q) { if (q[1] !== null) ctx.fillRect(X(q[0]) - 1.5, Y(q[1]) - 1.5, 3, 3); });
    });
    if (cursorEpoch !== null && cursorEpoch !== undefined) {
      ctx.strokeStyle = "rgba(0,90,200,0.8)"; ctx.lineWidth = 2; ctx.beginPath();
      ctx.moveTo(X(cursorEpoch), by); ctx.lineTo(X(cursorEpoch), by + bh); ctx.stroke();
    }
  });
};
