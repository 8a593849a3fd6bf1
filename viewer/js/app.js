// The viewer page: loads a run (URL ?run=DIR/ with optional &live=1, or picked files), keeps
// the frames, and links the scatter, the legend, the point and frame panels and the curves.
// Everything taken from a frame reaches the page through textContent, never as HTML.
"use strict";
var MM = window.MM || (window.MM = {});

(function () {
  var $ = function (id) { return document.getElementById(id); };
  var app = MM.app = {
    layout: null, emb: [], events: [], cur: -1, mode: "epoch", range: { e0: 0, e1: 0 },
    source: null, stream: null, live: false, playing: false, ready: false, notices: [],
    coordCache: [], generation: 0
  };
  var scatter = app.scatter = new MM.Scatter($("scatter"));
  var curves = new MM.Curves($("curves"), function (epoch) { app.showEpoch(epoch); });

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  app.notice = function (text, isError) {
    if (app.notices.indexOf(text) >= 0) return;
    app.notices.push(text);
    $("notices").appendChild(el("li", text, isError ? "error" : ""));
  };

  MM.COLOR_MODES.forEach(function (m) {
    var o = el("option", m[1]); o.value = m[0]; $("color-mode").appendChild(o);
  });

  // ---- loading -----------------------------------------------------------------------

  app.open = function (source, live) {
    app.generation++;
    var gen = app.generation;
    app.source = source; app.live = !!live; app.stream = new MM.FrameStream();
    app.emb = []; app.events = []; app.cur = -1; app.layout = null; app.ready = false; app.coordCache = [];
    app.notices = []; $("notices").textContent = "";
    $("run-label").textContent = source.label;
    $("live-status").textContent = live ? "live: waiting for frames…" : "";
    app.setupLayerFilter();
    return source.json("node_index.json").then(function (obj) {
      app.layout = MM.parseNodeIndex(obj);
      app.setupLayerFilter();
    }, function (e) {
      app.notice("node_index.json: " + e.message + " (layout taken from the frames)");
    }).then(function () { return app.poll(gen); });
  };

  app.poll = function (gen) {
    if (gen !== app.generation) return Promise.resolve();
    return app.source.tail().then(function (chunk) {
      if (gen !== app.generation) return;
      if (chunk.reset) { app.stream = new MM.FrameStream(); app.emb = []; app.events = []; app.cur = -1; }
      var res = app.stream.feed(chunk.text, !app.live);
      res.errors.forEach(function (m) { app.notice("frames.jsonl " + m); });
      // Live: a last line that stays incomplete for 10 polls is a stopped writer's; say so.
      app.stalePolls = chunk.text || !res.partial ? 0 : (app.stalePolls || 0) + 1;
      if (app.stalePolls === 10)
        app.notice("frames.jsonl: the last line has stayed incomplete (" + res.partial + " characters, no newline) and is skipped");
      app.addFrames(res.frames);
      app.ready = true;
    }, function (e) {
      app.notice(e.message, true);
      app.ready = true;
    }).then(function () {
      if (app.live && gen === app.generation) setTimeout(function () { app.poll(gen); }, 1000);
    });
  };

  app.addFrames = function (frames) {
    if (!frames.length) {
      if (app.live) $("live-status").textContent = "live: " + app.emb.length + " frames, checked " + new Date().toLocaleTimeString();
      if (!app.emb.length) $("empty-hint").textContent = "no embedding frames yet";
      return;
    }
    var atEnd = app.cur === app.emb.length - 1;
    frames.forEach(function (f) {
      if (f.type === "event") { app.events.push(f); return; }
      if (!app.layout) { app.layout = MM.layoutFromFrame(f); app.setupLayerFilter(); }
      if (f.units !== app.layout.units) app.notice("frame " + f.frame + ": window.units differs from node_index.json");
      app.emb.push(f);
    });
    var e0 = Infinity, e1 = -Infinity;
    app.emb.forEach(function (f) { f.epochs.forEach(function (e) { e0 = Math.min(e0, e); e1 = Math.max(e1, e); }); });
    app.range = isFinite(e0) ? { e0: e0, e1: e1 } : { e0: 0, e1: 0 };
    $("scrubber").max = String(Math.max(0, app.emb.length - 1));
    if (app.live) $("live-status").textContent = "live: " + app.emb.length + " frames, updated " + new Date().toLocaleTimeString();
    app.events.forEach(function (ev) {
      if (ev.event === "frame_failed" || ev.event === "sink_failed") app.notice("event " + ev.event + " at epoch " + ev.epoch + ": " + ev.message);
      // The monitor kept a subset of each epoch's time steps to fit its frame budget.
      if (ev.event === "window_planned") app.notice("time steps sampled: " + ev.message);
    });
    if (!app.emb.length) return;
    $("empty-hint").hidden = true;
    if (app.cur < 0 || (atEnd && $("follow").checked)) app.show(app.emb.length - 1, app.cur >= 0);
    else app.refreshCurves();
  };

  // Coordinates of a frame: inline, or its sidecar (a few kept in memory).
  app.coords = function (f) {
    if (f.coords) return Promise.resolve(f);
    return app.source.bytes(f.coordsFile).then(function (buf) {
      if (buf.byteLength !== f.n * f.dims * 4) throw new Error(f.coordsFile + ": " + buf.byteLength + " bytes, expected " + f.n * f.dims * 4);
      f.coords = new Float32Array(buf);
      app.coordCache.push(f);
      if (app.coordCache.length > 12) { var old = app.coordCache.shift(); if (old !== app.emb[app.cur]) old.coords = null; }
      return f;
    });
  };

  // ---- showing a frame -----------------------------------------------------------------

  app.show = function (idx, animate) {
    if (!app.emb.length) return Promise.resolve();
    idx = Math.max(0, Math.min(app.emb.length - 1, idx));
    var f = app.emb[idx], token = ++app.showToken;
    app.cur = idx;
    $("scrubber").value = String(idx);
    return app.coords(f).then(function () {
      if (token !== app.showToken) return;
      scatter.setFrame(f, MM.frameColors(f, app.mode, app.layout, app.range), animate);
      $("rotate-controls").hidden = f.dims !== 3;
      app.updatePanels();
      app.requestDraw();
    }, function (e) {
      app.notice("frame " + f.frame + ": " + e.message, true);
    });
  };
  app.showToken = 0;

  app.showEpoch = function (epoch) {
    var best = -1;
    app.emb.forEach(function (f, i) { if (f.epoch <= epoch) best = i; });
    app.show(best < 0 ? 0 : best, false);
  };

  app.updatePanels = function () {
    var f = app.emb[app.cur];
    $("frame-label").textContent = "epoch " + f.epoch + " · frame " + f.frame + " (" + (app.cur + 1) + "/" + app.emb.length + ")";
    var lines = ["epochs in window: " + f.epochs[0] + "–" + f.epochs[f.epochs.length - 1],
                 f.steps + " steps × " + f.units + " units, " + f.dims + "-D",
                 "t = " + f.t + (f.update ? ", " + f.update + " update" : ""),
                 "global step " + f.globalStep];
    Object.keys(f.metrics).slice(0, 12).forEach(function (k) {
      var v = f.metrics[k];
      lines.push(k + ": " + (typeof v === "number" ? +v.toPrecision(4) : "–"));
    });
    $("frame-info").textContent = lines.join("\n");
    app.renderLegend();
    app.refreshCurves();
  };

  app.refreshCurves = function () {
    var f = app.emb[app.cur];
    curves.draw(MM.buildCurves(app.emb, app.events, app.cur), f ? f.epoch : null);
  };

  app.renderLegend = function () {
    var f = app.emb[app.cur], box = $("legend"), L = MM.legendFor(f, app.mode, app.layout, app.range);
    box.textContent = "";
    box.appendChild(el("div", L.title, "muted"));
    if (L.gradient) {
      var g = el("div", undefined, "gradient"), stops = [];
      for (var k = 0; k <= 8; k++) stops.push(MM.css(MM.ramp(k / 8)));
      g.style.background = "linear-gradient(to right," + stops.join(",") + ")";
      var labels = el("div", undefined, "gradient-labels");
      labels.appendChild(el("span", L.gradient.low)); labels.appendChild(el("span", L.gradient.high));
      box.appendChild(g); box.appendChild(labels);
    }
    L.entries.forEach(function (en) {
      var row = el("div", undefined, "legend-entry"), sw = el("span", undefined, "swatch");
      if (en.color) sw.style.background = MM.css(en.color);
      row.appendChild(sw); row.appendChild(el("span", en.label)); box.appendChild(row);
    });
  };

  var drawPending = false;
  app.requestDraw = function () {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(function step(ts) {
      drawPending = false;
      if (scatter.fromX && scatter.tween < 1) {
        if (!app.tweenStart) app.tweenStart = ts;
        scatter.tween = Math.min(1, (ts - app.tweenStart) / 300);
        if (scatter.tween < 1) app.requestDraw(); else app.tweenStart = 0;
      }
      if ($("autorotate").checked && scatter.frame && scatter.frame.dims === 3) {
        scatter.yaw += 0.01; scatter.project(); app.requestDraw();
      }
      var t0 = performance.now();
      var n = scatter.draw();
      app.lastDrawMs = performance.now() - t0;
      app.drawn = n;
      $("drawn-count").textContent = n.toLocaleString("en-US") + " points drawn";
    });
  };

  // ---- interaction -----------------------------------------------------------------------

  function describe(i) {
    var f = scatter.frame, L = app.layout, u = MM.nodeUnit(f, i), sp = MM.nodeStepPos(f, i);
    var m = L.unitsMeta[u] || { layer: "", direction: 0, unit: u };
    var c = f.cls ? f.cls[i] : -1;
    return {
      epoch: MM.nodeEpoch(f, i), step: L.stepIndex[sp] !== undefined ? L.stepIndex[sp] : sp, stepPos: sp, unit: u,
      text: "epoch " + MM.nodeEpoch(f, i) + "\ntime step " + (L.stepIndex[sp] !== undefined ? L.stepIndex[sp] : sp) +
            "\nunit " + u + " (" + (m.layer || "layer") + (m.direction ? " reverse" : " forward") + " #" + m.unit + ")" +
            "\nmost active class " + (c < 0 ? "none" : c)
    };
  }
  app.describe = describe;

  var canvas = $("scatter"), drag = null;
  canvas.addEventListener("mousemove", function (e) {
    if (drag && scatter.frame && scatter.frame.dims === 3) {
      scatter.yaw += (e.offsetX - drag.x) * 0.01; scatter.pitch += (e.offsetY - drag.y) * 0.01;
      drag.moved = true; drag.x = e.offsetX; drag.y = e.offsetY;
      scatter.project(); app.requestDraw(); return;
    }
    var i = scatter.pick(e.offsetX, e.offsetY), tip = $("tooltip");
    if (i !== scatter.hover) { scatter.hover = i; app.requestDraw(); }
    if (i < 0) { tip.hidden = true; return; }
    tip.textContent = describe(i).text;
    tip.hidden = false;
    tip.style.left = Math.min(e.offsetX + 14, canvas.clientWidth - 190) + "px";
    tip.style.top = Math.max(0, e.offsetY - 70) + "px";
  });
  canvas.addEventListener("mouseleave", function () { $("tooltip").hidden = true; scatter.hover = -1; app.requestDraw(); drag = null; });
  canvas.addEventListener("mousedown", function (e) { drag = { x: e.offsetX, y: e.offsetY, moved: false }; });
  canvas.addEventListener("mouseup", function (e) {
    var moved = drag && drag.moved; drag = null;
    if (moved) return;
    var i = scatter.pick(e.offsetX, e.offsetY);
    if (i < 0) return;
    var d = describe(i);
    $("point-info").textContent = d.text;
    $("point-info").classList.remove("muted");
    $("hl-unit").value = String(d.unit); $("hl-epoch").value = String(d.epoch); $("hl-step").value = String(d.stepPos);
    app.highlight(e.shiftKey ? { epoch: d.epoch, step: d.stepPos } : { unit: d.unit });
  });

  app.highlight = function (h) { scatter.highlight = h; app.requestDraw(); };
  $("hl-unit-go").addEventListener("click", function () {
    var u = parseInt($("hl-unit").value, 10);
    if (u >= 0) app.highlight({ unit: u });
  });
  $("hl-slice-go").addEventListener("click", function () {
    var e = parseInt($("hl-epoch").value, 10), s = parseInt($("hl-step").value, 10);
    if (isFinite(e) && s >= 0) app.highlight({ epoch: e, step: s });
  });
  $("hl-clear").addEventListener("click", function () { app.highlight(null); });

  // ---- layer filter: shown when the run records several layers -------------------------------

  app.setupLayerFilter = function () {
    var sel = $("layer-filter"), names = app.layout ? app.layout.layerNames : [];
    sel.textContent = "";
    var all = el("option", "all layers"); all.value = "-1"; sel.appendChild(all);
    names.forEach(function (name, k) {
      var o = el("option", "layer " + (name || "(unnamed)")); o.value = String(k); sel.appendChild(o);
    });
    $("layer-filter-row").hidden = names.length < 2;
    app.setLayerFilter(-1);
  };

  // Draws only the units of layer `k` (-1: all); points of other layers are neither drawn nor picked.
  app.setLayerFilter = function (k) {
    var L = app.layout;
    app.layerFilter = k;
    $("layer-filter").value = String(k);
    if (k < 0 || !L) scatter.unitVisible = null;
    else {
      var v = new Uint8Array(L.units);
      for (var u = 0; u < L.units; u++) v[u] = L.layerOfUnit[u] === k ? 1 : 0;
      scatter.unitVisible = v;
    }
    scatter.hover = -1;
    app.requestDraw();
  };
  $("layer-filter").addEventListener("change", function () { app.setLayerFilter(parseInt($("layer-filter").value, 10)); });

  $("color-mode").addEventListener("change", function () {
    app.mode = $("color-mode").value;
    if (!scatter.frame) return;
    scatter.setColors(MM.frameColors(scatter.frame, app.mode, app.layout, app.range));
    app.renderLegend(); app.requestDraw();
  });
  $("point-size").addEventListener("input", function () { scatter.pointScale = parseFloat($("point-size").value) || 1; app.requestDraw(); });
  $("scrubber").addEventListener("input", function () { app.show(parseInt($("scrubber").value, 10), false); });
  $("autorotate").addEventListener("change", function () { app.requestDraw(); });

  var timer = null;
  app.setPlaying = function (on) {
    app.playing = on;
    $("play").textContent = on ? "❚❚ pause" : "▶ play";
    if (timer) { clearTimeout(timer); timer = null; }
    if (!on) return;
    if (app.cur >= app.emb.length - 1 && !app.live) app.show(0, false);
    (function tick() {
      timer = setTimeout(function () {
        if (!app.playing) return;
        if (app.cur < app.emb.length - 1) app.show(app.cur + 1, true);
        else if (!app.live) { app.setPlaying(false); return; }
        tick();
      }, 700 * parseFloat($("speed").value));
    })();
  };
  $("play").addEventListener("click", function () { app.setPlaying(!app.playing); });
  document.addEventListener("keydown", function (e) {
    if (e.target && (e.target.tagName === "INPUT" || e.target.tagName === "SELECT")) return;
    if (e.key === " ") { e.preventDefault(); app.setPlaying(!app.playing); }
    else if (e.key === "ArrowRight") app.show(app.cur + 1, true);
    else if (e.key === "ArrowLeft") app.show(app.cur - 1, true);
    else if (e.key === "Escape") app.highlight(null);
  });
  window.addEventListener("resize", function () { if (scatter.frame) { scatter.project(); app.requestDraw(); app.refreshCurves(); } });

  function openPicked(input) {
    try { app.open(new MM.FileSource(input.files), false); } catch (e) { app.notice(e.message, true); }
  }
  $("open-dir").addEventListener("change", function () { openPicked($("open-dir")); });
  $("open-files").addEventListener("change", function () { openPicked($("open-files")); });

  // ?run=RUN_DIR_URL[&live=1]: as `mmphate serve` links it.
  var q = new URLSearchParams(window.location.search), run = q.get("run");
  if (run) {
    try {
      app.open(new MM.HttpSource(run), q.get("live") === "1");
    } catch (e) {
      app.notice("cannot open " + run + ": " + e.message, true);
    }
  } else if (window.location.protocol === "file:") {
    $("empty-hint").textContent = "Open a run folder (containing frames.jsonl) with the button above.";
  }
})();
