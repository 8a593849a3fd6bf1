// The scatter: a software rasteriser into one ImageData (no WebGL needed, so it also runs in
// headless browsers), with alpha blending in 2-D and a depth buffer in 3-D. 128k points draw
// in a few milliseconds. Projection and fit match tools/scatter.cpp.
"use strict";
var MM = window.MM || (window.MM = {});

MM.Scatter = function (canvas) {
  this.canvas = canvas;
  this.ctx = canvas.getContext("2d");
  this.frame = null; this.colors = null;
  this.yaw = MM.PALETTE.view3d.yaw; this.pitch = MM.PALETTE.view3d.pitch;
  this.highlight = null;      // {unit: u} or {epoch: e, step: s} (a slice)
  this.unitVisible = null;    // per unit 0/1 (the layer filter); null: every unit
  this.hover = -1;
  this.pointScale = 1;
  this.sx = null; this.sy = null; this.depth = null;  // device-pixel screen positions
  this.fromX = null; this.fromY = null; this.tween = 1;
  this.drawn = 0;
};

MM.autoRadius = function (n, box) {
  var r = 2.6 * Math.sqrt(2000 / Math.max(n, 1)) * box / 800;
  return Math.max(0.7, Math.min(6, r));
};

MM.Scatter.prototype.resize = function () {
  var dpr = window.devicePixelRatio || 1, c = this.canvas;
  var w = Math.max(50, Math.round(c.clientWidth * dpr)), h = Math.max(50, Math.round(c.clientHeight * dpr));
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; this.img = null; }
  this.dpr = dpr;
};

// Sets the frame (coords loaded) and its colours; `animate` tweens shared nodes from the
// previous frame's positions.
MM.Scatter.prototype.setFrame = function (f, colors, animate) {
  var prev = this.frame, px = this.sx, py = this.sy;
  this.frame = f; this.colors = colors;
  this.project();
  this.fromX = null; this.tween = 1;
  if (animate && prev && px && prev !== f && prev.steps === f.steps && prev.units === f.units && prev.dims === f.dims) {
    var per = f.steps * f.units, fx = new Float32Array(f.n), fy = new Float32Array(f.n), any = false;
    for (var b = 0; b < f.epochs.length; b++) {
      var pb = prev.epochs.indexOf(f.epochs[b]);
      for (var k = 0; k < per; k++) {
        var i = b * per + k, j = pb * per + k;
        if (pb >= 0 && isFinite(px[j]) && isFinite(this.sx[i])) { fx[i] = px[j]; fy[i] = py[j]; any = true; }
        else { fx[i] = this.sx[i]; fy[i] = this.sy[i]; }
      }
    }
    if (any) { this.fromX = fx; this.fromY = fy; this.tween = 0; }
  }
};

MM.Scatter.prototype.setColors = function (colors) { this.colors = colors; };

MM.Scatter.prototype.project = function () {
  var f = this.frame;
  if (!f) return;
  this.resize();
  var W = this.canvas.width, H = this.canvas.height, n = f.n, d = f.dims, c = f.coords;
  var sx = new Float32Array(n), sy = new Float32Array(n), dep = new Float32Array(n), i, k;
  var margin = 0.04 * Math.min(W, H) + 4, scale = 1, cx = 0, cy = 0, cnt = 0;
  for (i = 0; i < n; i++) {
    var ok = true;
    for (k = 0; k < d; k++) if (!isFinite(c[i * d + k])) ok = false;
    if (!ok) { sx[i] = NaN; sy[i] = NaN; continue; }
    cnt++;
  }
  if (d === 3) {
    var m = [0, 0, 0];
    for (i = 0; i < n; i++) if (!isNaN(sx[i])) for (k = 0; k < 3; k++) m[k] += c[3 * i + k];
    for (k = 0; k < 3; k++) m[k] /= Math.max(cnt, 1);
    var cyw = Math.cos(this.yaw), syw = Math.sin(this.yaw), cp = Math.cos(this.pitch), sp = Math.sin(this.pitch), r2 = 0;
    for (i = 0; i < n; i++) {
      if (isNaN(sx[i])) { sy[i] = NaN; continue; }
      var x = c[3 * i] - m[0], y = c[3 * i + 1] - m[1], z = c[3 * i + 2] - m[2];
      r2 = Math.max(r2, x * x + y * y + z * z);
      var x1 = x * cyw + z * syw, z1 = -x * syw + z * cyw;
      sx[i] = x1; sy[i] = y * cp - z1 * sp; dep[i] = y * sp + z1 * cp;
    }
    var r = Math.sqrt(r2);
    this.depthRange = r > 0 ? r : 1;
    scale = r > 0 ? Math.min(W - 2 * margin, H - 2 * margin) / (2 * r) : 1;
  } else {
    var lx = Infinity, ly = Infinity, hx = -Infinity, hy = -Infinity;
    for (i = 0; i < n; i++) {
      if (isNaN(sx[i])) { sy[i] = NaN; continue; }
      sx[i] = c[2 * i]; sy[i] = c[2 * i + 1];
      if (sx[i] < lx) lx = sx[i]; if (sx[i] > hx) hx = sx[i];
      if (sy[i] < ly) ly = sy[i]; if (sy[i] > hy) hy = sy[i];
    }
    cx = (lx + hx) / 2; cy = (ly + hy) / 2;
    var bw = hx - lx, bh = hy - ly;
    scale = Math.min(bw > 0 ? (W - 2 * margin) / bw : Infinity, bh > 0 ? (H - 2 * margin) / bh : Infinity);
    if (!isFinite(scale)) scale = 1;
  }
  for (i = 0; i < n; i++) {
    if (isNaN(sx[i])) continue;
    sx[i] = W / 2 + (sx[i] - cx) * scale;
    sy[i] = H / 2 - (sy[i] - cy) * scale;
  }
  this.sx = sx; this.sy = sy; this.depth = dep; this.count = cnt;
};

// Whether node i passes the layer filter (the layout fits the frame, or no filter applies).
MM.Scatter.prototype.visible = function (i) {
  var v = this.unitVisible, f = this.frame;
  return !v || v.length !== f.units || v[i % f.units] === 1;
};

MM.Scatter.prototype.matches = function (i) {
  var h = this.highlight, f = this.frame;
  if (!h) return true;
  if (h.unit !== undefined) return i % f.units === h.unit;
  return MM.nodeEpoch(f, i) === h.epoch && MM.nodeStepPos(f, i) === h.step;
};

// Offsets and coverage of a disc of radius r around a pixel centre.
function stamp(r) {
  var out = [], R = Math.ceil(r + 0.5);
  for (var dy = -R; dy <= R; dy++)
    for (var dx = -R; dx <= R; dx++) {
      var a = Math.min(1, r + 0.5 - Math.sqrt(dx * dx + dy * dy));
      if (a > 0.05) out.push(dx, dy, a);
    }
  return out;
}

MM.Scatter.prototype.draw = function () {
  var f = this.frame, ctx = this.ctx;
  this.resize();
  var W = this.canvas.width, H = this.canvas.height;
  if (!this.img || this.img.width !== W || this.img.height !== H) {
    this.img = ctx.createImageData(W, H);
    this.zbuf = new Float32Array(W * H);
  }
  var data = this.img.data, bg = MM.PALETTE.background, p;
  for (p = 0; p < data.length; p += 4) { data[p] = bg[0]; data[p + 1] = bg[1]; data[p + 2] = bg[2]; data[p + 3] = 255; }
  this.drawn = 0;
  if (!f || !this.sx) { ctx.putImageData(this.img, 0, 0); return 0; }
  if (this.sx.length !== f.n) this.project();
  var n = f.n, col = this.colors, t = this.tween, fx = this.fromX, fy = this.fromY, is3d = f.dims === 3;
  var zb = this.zbuf;
  if (is3d) zb.fill(-Infinity);
  var box = Math.min(W, H), r = MM.autoRadius(this.count, box) * this.pointScale;
  var base = stamp(r), big = stamp(r * 1.6 + this.dpr), alpha = is3d ? 1 : (this.count > 20000 ? 0.55 : 0.85);
  var hl = !!this.highlight, self = this;
  var X = new Float32Array(n), Y = new Float32Array(n);
  for (var i = 0; i < n; i++) {
    X[i] = fx && t < 1 ? fx[i] + (this.sx[i] - fx[i]) * t : this.sx[i];
    Y[i] = fx && t < 1 ? fy[i] + (this.sy[i] - fy[i]) * t : this.sy[i];
  }
  this.X = X; this.Y = Y;
  function plot(i, st, a, dim, depthBias) {
    var x0 = Math.round(X[i]), y0 = Math.round(Y[i]);
    var cr = col[3 * i], cg = col[3 * i + 1], cb = col[3 * i + 2];
    var z = is3d ? self.depth[i] + depthBias : 0;
    if (is3d && !depthBias) {  // depth cue: far points fade towards the background
      var fade = 0.35 * (1 - (self.depth[i] / self.depthRange + 1) / 2);
      cr += (bg[0] - cr) * fade; cg += (bg[1] - cg) * fade; cb += (bg[2] - cb) * fade;
    }
    if (dim) { cr += (bg[0] - cr) * 0.82; cg += (bg[1] - cg) * 0.82; cb += (bg[2] - cb) * 0.82; }
    for (var s = 0; s < st.length; s += 3) {
      var x = x0 + st[s], y = y0 + st[s + 1];
      if (x < 0 || y < 0 || x >= W || y >= H) continue;
      var q = y * W + x, o = q * 4, cov = st[s + 2] * a;
      if (is3d) {
        if (st[s + 2] < 0.5 || z <= zb[q]) continue;
        zb[q] = z; data[o] = cr; data[o + 1] = cg; data[o + 2] = cb;
      } else {
        data[o] += (cr - data[o]) * cov; data[o + 1] += (cg - data[o + 1]) * cov; data[o + 2] += (cb - data[o + 2]) * cov;
      }
    }
  }
  var drawn = 0;
  for (i = 0; i < n; i++) {
    if (isNaN(X[i]) || !this.visible(i)) continue;
    drawn++;
    if (hl && this.matches(i)) continue;
    plot(i, base, alpha, hl, 0);
  }
  if (hl) for (i = 0; i < n; i++) if (!isNaN(X[i]) && this.visible(i) && this.matches(i)) plot(i, big, 1, false, 1e9);
  ctx.putImageData(this.img, 0, 0);
  if (hl && this.highlight.unit !== undefined && this.highlight.unit < f.units && this.visible(this.highlight.unit)) {
    // The unit's trajectory: its nodes in node order = epoch, then time step.
    ctx.save(); ctx.strokeStyle = "rgba(20,20,20,0.55)"; ctx.lineWidth = 1.2 * this.dpr; ctx.beginPath();
    var started = false;
    for (i = this.highlight.unit; i < n; i += f.units) {
      if (isNaN(X[i])) { started = false; continue; }
      if (started) ctx.lineTo(X[i], Y[i]); else { ctx.moveTo(X[i], Y[i]); started = true; }
    }
    ctx.stroke(); ctx.restore();
  }
  if (this.hover >= 0 && this.hover < n && !isNaN(X[this.hover])) {
    ctx.save(); ctx.strokeStyle = "#111"; ctx.lineWidth = 2 * this.dpr; ctx.beginPath();
    ctx.arc(X[this.hover], Y[this.hover], r * 1.6 + 4 * this.dpr, 0, 2 * Math.PI); ctx.stroke(); ctx.restore();
  }
  this.drawn = drawn;
  return drawn;
};

// Nearest drawn node to a point in CSS pixels (within 10 px), or -1.
MM.Scatter.prototype.pick = function (cssX, cssY) {
  if (!this.frame || !this.X) return -1;
  var x = cssX * this.dpr, y = cssY * this.dpr, best = -1, bd = Math.pow(10 * this.dpr, 2), X = this.X, Y = this.Y;
  var is3d = this.frame.dims === 3, bz = -Infinity;
  for (var i = 0; i < X.length; i++) {
    if (!this.visible(i)) continue;
    var dx = X[i] - x, dy = Y[i] - y, dd = dx * dx + dy * dy;
    if (!(dd <= bd)) continue;
    if (dd < bd || (is3d && this.depth[i] > bz)) { bd = dd; best = i; bz = is3d ? this.depth[i] : 0; }
  }
  return best;
};

MM.Scatter.prototype.screenPos = function (i) {
  if (!this.X || i < 0 || i >= this.X.length || isNaN(this.X[i]) || !this.visible(i)) return null;
  return { x: this.X[i] / this.dpr, y: this.Y[i] / this.dpr };
};
