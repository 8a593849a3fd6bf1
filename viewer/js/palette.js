// Colours shared by the viewer and `mmphate render` (tools/colors.cpp mirrors this table;
// test_frame_reader checks that both agree). Keep the JSON between the markers plain JSON.
"use strict";
var MM = window.MM || (window.MM = {});
MM.PALETTE = /*PALETTE-JSON*/{
  "background": [255, 255, 255],
  "unknown": [170, 170, 170],
  "ramp": [[45, 30, 110], [40, 100, 170], [30, 160, 150], [120, 195, 80], [245, 210, 50]],
  "categorical": [[0, 114, 178], [230, 97, 0], [0, 150, 90], [200, 40, 60], [120, 80, 170],
                  [150, 95, 60], [220, 90, 170], [100, 100, 100], [170, 170, 0], [0, 170, 200],
                  [20, 50, 120], [250, 170, 40]],
  "unit_hue_step": 0.61803398875,
  "unit_saturation": 0.65,
  "unit_lightness": 0.5,
  "view3d": {"yaw": 0.6, "pitch": 0.35}
}/*END-PALETTE*/;

// Sequential ramp, t in [0, 1].
MM.ramp = function (t) {
  var r = MM.PALETTE.ramp, n = r.length - 1;
  t = t < 0 ? 0 : t > 1 ? 1 : (t || 0);
  var s = t * n, i = Math.min(Math.floor(s), n - 1), f = s - i;
  return [0, 1, 2].map(function (k) { return Math.round(r[i][k] + (r[i + 1][k] - r[i][k]) * f); });
};

MM.categorical = function (i) {
  if (i < 0) return MM.PALETTE.unknown;
  var c = MM.PALETTE.categorical;
  return c[i % c.length];
};

// Units: hues spaced by the golden ratio so neighbouring unit indices differ.
MM.unitColor = function (u) {
  var P = MM.PALETTE, h = (u * P.unit_hue_step) % 1, s = P.unit_saturation, l = P.unit_lightness;
  var q = l < 0.5 ? l * (1 + s) : l + s - l * s, p = 2 * l - q;
  function ch(t) {
    t = t < 0 ? t + 1 : t > 1 ? t - 1 : t;
    var v = t < 1 / 6 ? p + (q - p) * 6 * t : t < 0.5 ? q : t < 2 / 3 ? p + (q - p) * (2 / 3 - t) * 6 : p;
    return Math.round(v * 255);
  }
  return [ch(h + 1 / 3), ch(h), ch(h - 1 / 3)];
};
