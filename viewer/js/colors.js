// Node colours per colouring mode and the matching legend (same rules as tools/colors.cpp).
"use strict";
var MM = window.MM || (window.MM = {});

MM.COLOR_MODES = [
  ["epoch", "epoch"], ["step", "time step"], ["unit", "unit"], ["layer", "layer / direction"], ["class", "most active class"]
];

// Node i of a frame's window grid (docs/FRAMES.md "Nodes").
MM.nodeEpoch = function (f, i) { return f.epochs[Math.floor(i / (f.steps * f.units))]; };
MM.nodeStepPos = function (f, i) { return Math.floor(i / f.units) % f.steps; };
MM.nodeUnit = function (f, i) { return i % f.units; };

// Returns Uint8Array(n * 3). `range` = {e0, e1}: epochs of the whole run, so colours are stable.
MM.frameColors = function (f, mode, layout, range) {
  var n = f.n, out = new Uint8Array(n * 3), cache = {}, i, c, key;
  for (i = 0; i < n; i++) {
    var u = i % f.units;
    switch (mode) {
      case "epoch": key = MM.nodeEpoch(f, i); break;
      case "step": key = MM.nodeStepPos(f, i); break;
      case "unit": key = u; break;
      case "layer": key = u < layout.groupOfUnit.length ? layout.groupOfUnit[u] : -1; break;
      default: key = f.cls ? f.cls[i] : -1;
    }
    c = cache[key];
    if (!c) {
      if (mode === "epoch") c = MM.ramp(range.e1 > range.e0 ? (key - range.e0) / (range.e1 - range.e0) : 0);
      else if (mode === "step") c = MM.ramp(f.steps > 1 ? key / (f.steps - 1) : 0);
      else if (mode === "unit") c = MM.unitColor(key);
      else c = MM.categorical(key);
      cache[key] = c;
    }
    out[3 * i] = c[0]; out[3 * i + 1] = c[1]; out[3 * i + 2] = c[2];
  }
  return out;
};

// Legend model: {title, gradient: {low, high} | null, entries: [{color, label}]}.
MM.legendFor = function (f, mode, layout, range) {
  var L = { title: "", gradient: null, entries: [] }, k;
  if (mode === "epoch") { L.title = "epoch"; L.gradient = { low: String(range.e0), high: String(range.e1) }; }
  else if (mode === "step") {
    L.title = "time step";
    L.gradient = { low: String(layout.stepIndex[0]), high: String(layout.stepIndex[layout.stepIndex.length - 1]) };
  } else if (mode === "unit") {
    L.title = "unit";
    for (k = 0; k < Math.min(f.units, 16); k++) L.entries.push({ color: MM.unitColor(k), label: "unit " + k });
    if (f.units > 16) L.entries.push({ color: null, label: "… " + (f.units - 16) + " more" });
  } else if (mode === "layer") {
    L.title = "layer / direction";
    layout.groupLabels.forEach(function (lab, g) { L.entries.push({ color: MM.categorical(g), label: lab }); });
  } else {
    L.title = "most active class";
    var seen = {};
    if (f.cls) for (k = 0; k < f.n; k++) seen[f.cls[k]] = true;
    Object.keys(seen).map(Number).sort(function (a, b) { return a - b; }).slice(0, 24).forEach(function (c) {
      L.entries.push({ color: MM.categorical(c), label: c < 0 ? "none" : "class " + c });
    });
  }
  return L;
};

MM.css = function (c) { return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"; };
