// Parsing of frames.jsonl and node_index.json (docs/FRAMES.md). Frames are untrusted input:
// every field is checked before use and a bad line is reported and skipped, never fatal.
"use strict";
var MM = window.MM || (window.MM = {});

MM.MAX_NODES = 1 << 26;

function isInt(v) { return typeof v === "number" && Number.isInteger(v); }

// node_index.json -> layout with safe defaults for anything missing.
MM.parseNodeIndex = function (obj) {
  if (!obj || typeof obj !== "object") throw new Error("node_index.json is not a JSON object");
  if (!isInt(obj.steps) || obj.steps < 1 || !isInt(obj.units) || obj.units < 1)
    throw new Error("node_index.json: steps and units must be positive integers");
  var L = { steps: obj.steps, units: obj.units, stepIndex: [], unitsMeta: [], classes: isInt(obj.classes) ? obj.classes : 0 };
  for (var s = 0; s < L.steps; s++)
    L.stepIndex.push(Array.isArray(obj.step_index) && isInt(obj.step_index[s]) ? obj.step_index[s] : s);
  for (var u = 0; u < L.units; u++) {
    var m = Array.isArray(obj.units_meta) && obj.units_meta[u] && typeof obj.units_meta[u] === "object" ? obj.units_meta[u] : {};
    L.unitsMeta.push({
      layer: typeof m.layer === "string" ? m.layer : "",
      direction: isInt(m.direction) ? m.direction : 0,
      unit: isInt(m.unit) ? m.unit : u
    });
  }
  // (layer, direction) groups in order of first appearance: the "layer/direction" colouring.
  L.groupOfUnit = []; L.groupLabels = [];
  var keys = {};
  L.unitsMeta.forEach(function (m) {
    var k = JSON.stringify([m.layer, m.direction]);
    if (!(k in keys)) { keys[k] = L.groupLabels.length; L.groupLabels.push((m.layer || "layer") + (m.direction ? " reverse" : " forward")); }
    L.groupOfUnit.push(keys[k]);
  });
  // Layers in order of first appearance, for the layer filter (several layers of one monitor
  // share each slice). A prototype-free map: layer names are untrusted text.
  L.layerNames = []; L.layerOfUnit = [];
  var layerIds = Object.create(null);
  L.unitsMeta.forEach(function (m) {
    if (!(m.layer in layerIds)) { layerIds[m.layer] = L.layerNames.length; L.layerNames.push(m.layer); }
    L.layerOfUnit.push(layerIds[m.layer]);
  });
  return L;
};

// A default layout when node_index.json is missing: taken from the first embedding frame.
MM.layoutFromFrame = function (f) {
  return MM.parseNodeIndex({ steps: f.steps, units: f.units });
};

// One parsed line -> frame object, or throws Error with the reason.
MM.decodeFrame = function (o) {
  if (!o || typeof o !== "object" || Array.isArray(o)) throw new Error("not a JSON object");
  if (o.schema_version !== 1) throw new Error("unsupported schema_version " + String(o.schema_version).slice(0, 20));
  if (!isInt(o.frame) || !isInt(o.epoch)) throw new Error("frame and epoch must be integers");
  var f = { type: o.type, frame: o.frame, epoch: o.epoch, globalStep: isInt(o.global_step) ? o.global_step : 0,
            wallTime: typeof o.wall_time === "number" ? o.wall_time : 0 };
  if (o.type === "event") {
    f.event = typeof o.event === "string" ? o.event : "event";
    f.message = typeof o.message === "string" ? o.message : "";
    f.data = o.data && typeof o.data === "object" && !Array.isArray(o.data) ? o.data : {};
    return f;
  }
  if (o.type !== "embedding") throw new Error("unknown frame type");
  var w = o.window;
  if (!w || !Array.isArray(w.epochs) || w.epochs.length < 1 || !w.epochs.every(isInt)) throw new Error("window.epochs must be a list of integers");
  if (!isInt(w.steps) || w.steps < 1 || !isInt(w.units) || w.units < 1) throw new Error("window.steps/units must be positive integers");
  var n = w.epochs.length * w.steps * w.units;
  if (o.n_nodes !== n || n > MM.MAX_NODES) throw new Error("n_nodes does not match the window (" + n + ")");
  if (o.n_components !== 2 && o.n_components !== 3) throw new Error("n_components must be 2 or 3");
  var d = o.n_components;
  f.n = n; f.dims = d; f.epochs = w.epochs.slice(); f.steps = w.steps; f.units = w.units;
  f.coords = null; f.coordsFile = null;
  if (Array.isArray(o.coords)) {
    if (o.coords.length !== n * d) throw new Error("coords must hold n_nodes x n_components values");
    var c = new Float32Array(n * d);
    for (var i = 0; i < c.length; i++) { var v = o.coords[i]; c[i] = typeof v === "number" ? v : NaN; }
    f.coords = c;
  } else if (o.coords_file && typeof o.coords_file.path === "string") {
    var cf = o.coords_file;
    if (cf.dtype !== "<f4") throw new Error("coords_file.dtype must be <f4");
    if (!Array.isArray(cf.shape) || cf.shape[0] !== n || cf.shape[1] !== d) throw new Error("coords_file.shape must be [n_nodes, n_components]");
    if (!MM.safeRelativePath(cf.path)) throw new Error("coords_file.path must stay inside the run directory");
    f.coordsFile = cf.path;
  } else {
    throw new Error("embedding frame without coords or coords_file");
  }
  var mac = o.most_active_class;
  f.cls = null;
  if (Array.isArray(mac) && mac.length === n) {
    f.cls = new Int16Array(n);
    for (var k = 0; k < n; k++) f.cls[k] = isInt(mac[k]) ? Math.max(-1, Math.min(32767, mac[k])) : -1;
  }
  f.metrics = o.metrics && typeof o.metrics === "object" && !Array.isArray(o.metrics) ? o.metrics : {};
  f.diagnostics = o.diagnostics && typeof o.diagnostics === "object" && !Array.isArray(o.diagnostics) ? o.diagnostics : {};
  f.t = isInt(o.t) ? o.t : null;
  f.update = typeof o.update === "string" ? o.update : "";
  f.nPresent = isInt(o.n_present) ? o.n_present : null;
  return f;
};

MM.safeRelativePath = function (p) {
  if (typeof p !== "string" || !p || p.length > 512 || p[0] === "/" || p.indexOf("\\") >= 0 || p.indexOf(":") >= 0) return false;
  return p.split("/").every(function (s) { return s !== ".." && s !== "." && s !== ""; });
};

// Incremental line splitter: feed text chunks; complete lines become frames, a trailing
// partial line waits for more text. `final` = no more text will come (a finished file).
MM.FrameStream = function () {
  this.pending = "";
  this.line = 0;
};
MM.FrameStream.prototype.feed = function (text, final) {
  var out = { frames: [], errors: [], partial: 0 };
  var buf = this.pending + text, start = 0, nl;
  while ((nl = buf.indexOf("\n", start)) >= 0) {
    var line = buf.slice(start, nl);
    start = nl + 1;
    this.line++;
    if (!line.trim()) continue;
    try {
      out.frames.push(MM.decodeFrame(JSON.parse(line)));
    } catch (e) {
      out.errors.push("line " + this.line + ": skipped (" + String(e.message).slice(0, 120) + ")");
    }
  }
  this.pending = buf.slice(start);
  out.partial = this.pending.length;
  if (final && this.pending.length) {
    out.errors.push("line " + (this.line + 1) + ": incomplete last line (" + this.pending.length +
                    " characters, no newline) skipped: the training is still writing it or was stopped");
  }
  return out;
};
