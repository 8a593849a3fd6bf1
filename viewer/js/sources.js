// Where a run's files come from: over HTTP (`mmphate serve`, or any static server) or from
// files the user picked (works from file:// without a server). Both give the same calls.
"use strict";
var MM = window.MM || (window.MM = {});

// HTTP: `base` is the run directory's URL; only same-origin URLs are accepted.
MM.HttpSource = function (base) {
  var u = new URL(base, window.location.href);
  if (u.origin !== window.location.origin) throw new Error("the run must be served from this viewer's origin");
  if (!/\/$/.test(u.pathname)) u.pathname += "/";
  this.base = u; this.offset = 0; this.decoder = new TextDecoder("utf-8"); this.label = u.pathname;
};
MM.HttpSource.prototype.url = function (rel) { return new URL(rel, this.base).href; };
MM.HttpSource.prototype.json = function (rel) {
  return fetch(this.url(rel), { cache: "no-store" }).then(function (r) {
    if (!r.ok) throw new Error(rel + ": HTTP " + r.status);
    return r.json();
  });
};
MM.HttpSource.prototype.bytes = function (rel) {
  return fetch(this.url(rel), { cache: "no-store" }).then(function (r) {
    if (!r.ok) throw new Error(rel + ": HTTP " + r.status);
    return r.arrayBuffer();
  });
};
// New text of frames.jsonl since the last call: {text, reset} (reset: the file was replaced).
// The range starts one byte before what we have, so an unchanged file is a one-byte reply
// rather than a "416 Range Not Satisfiable" (which browsers log as an error).
MM.HttpSource.prototype.tail = function () {
  var self = this, off = this.offset, from = off ? off - 1 : 0;
  return fetch(this.url("frames.jsonl"), { cache: "no-store", headers: off ? { Range: "bytes=" + from + "-" } : {} })
    .then(function (r) {
      if (!r.ok && r.status !== 416) throw new Error("frames.jsonl: HTTP " + r.status);
      return (r.status === 416 ? Promise.resolve(new ArrayBuffer(0)) : r.arrayBuffer()).then(function (buf) {
        var bytes = new Uint8Array(buf), reset = false;
        if (r.status === 206) bytes = bytes.subarray(1);
        else if (off && (r.status === 416 || bytes.length < off)) {  // the file shrank: a new run
          reset = true; off = 0; self.decoder = new TextDecoder("utf-8");
          if (r.status === 416) { self.offset = 0; return { text: "", reset: true }; }
        } else if (off) bytes = bytes.subarray(off);  // server ignored the range
        self.offset = off + bytes.length;
        return { text: self.decoder.decode(bytes, { stream: true }), reset: reset };
      });
    });
};

// Picked files (a folder via webkitdirectory, or several files): matched by path, then name.
MM.FileSource = function (fileList) {
  var self = this;
  this.files = {}; this.byName = {}; this.done = false; this.label = "";
  Array.prototype.forEach.call(fileList, function (f) {
    var rel = (f.webkitRelativePath || f.name).split("/");
    if (rel.length > 1) { self.label = self.label || rel[0]; rel = rel.slice(1); }
    self.files[rel.join("/")] = f; self.byName[f.name] = f;
  });
  if (!this.find("frames.jsonl")) throw new Error("no frames.jsonl among the chosen files");
  this.label = this.label || "local files";
};
MM.FileSource.prototype.find = function (rel) {
  return this.files[rel] || this.byName[rel.split("/").pop()] || null;
};
MM.FileSource.prototype.json = function (rel) {
  var f = this.find(rel);
  if (!f) return Promise.reject(new Error(rel + " not among the chosen files"));
  return f.text().then(JSON.parse);
};
MM.FileSource.prototype.bytes = function (rel) {
  var f = this.find(rel);
  if (!f) return Promise.reject(new Error(rel + " not among the chosen files (pick the whole run folder)"));
  return f.arrayBuffer();
};
MM.FileSource.prototype.tail = function () {
  if (this.done) return Promise.resolve({ text: "", reset: false });
  this.done = true;
  return this.find("frames.jsonl").text().then(function (t) { return { text: t, reset: false }; });
};
