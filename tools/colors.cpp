#include "colors.hpp"

#include <algorithm>
#include <cmath>

#include "mmphate/error.hpp"

namespace mmphate::view {

const Palette& palette() {
  // Mirror of viewer/js/palette.js (checked by test_frame_reader).
  static const Palette p{
      {255, 255, 255},
      {170, 170, 170},
      {{{45, 30, 110}}, {{40, 100, 170}}, {{30, 160, 150}}, {{120, 195, 80}}, {{245, 210, 50}}},
      {{{0, 114, 178}}, {{230, 97, 0}}, {{0, 150, 90}}, {{200, 40, 60}}, {{120, 80, 170}}, {{150, 95, 60}},
       {{220, 90, 170}}, {{100, 100, 100}}, {{170, 170, 0}}, {{0, 170, 200}}, {{20, 50, 120}}, {{250, 170, 40}}},
      0.61803398875, 0.65, 0.5, 0.6, 0.35};
  return p;
}

ColorMode parse_color_mode(const std::string& s) {
  if (s == "epoch") return ColorMode::epoch;
  if (s == "step") return ColorMode::step;
  if (s == "unit") return ColorMode::unit;
  if (s == "layer") return ColorMode::layer;
  if (s == "class") return ColorMode::cls;
  throw Error("invalid --color '" + s + "': allowed epoch, step, unit, layer, class");
}

const char* to_string(ColorMode m) {
  switch (m) {
    case ColorMode::epoch: return "epoch";
    case ColorMode::step: return "step";
    case ColorMode::unit: return "unit";
    case ColorMode::layer: return "layer";
    case ColorMode::cls: return "class";
  }
  return "?";
}

// Same arithmetic and rounding as the JavaScript (Math.round on non-negative values).
static unsigned char round_byte(double v) { return static_cast<unsigned char>(std::floor(v + 0.5)); }

Rgb ramp(double t) {
  const auto& r = palette().ramp;
  const int n = static_cast<int>(r.size()) - 1;
  t = std::isfinite(t) ? std::clamp(t, 0.0, 1.0) : 0.0;
  const double s = t * n;
  const int i = std::min(static_cast<int>(std::floor(s)), n - 1);
  const double f = s - i;
  Rgb out;
  for (int k = 0; k < 3; ++k) out[k] = round_byte(r[i][k] + (r[i + 1][k] - r[i][k]) * f);
  return out;
}

Rgb categorical(int i) {
  if (i < 0) return palette().unknown;
  const auto& c = palette().categorical;
  return c[static_cast<std::size_t>(i) % c.size()];
}

Rgb unit_color(int u) {
  const Palette& P = palette();
  const double h = std::fmod(u * P.unit_hue_step, 1.0), s = P.unit_saturation, l = P.unit_lightness;
  const double q = l < 0.5 ? l * (1 + s) : l + s - l * s, p = 2 * l - q;
  auto ch = [&](double t) {
    t = t < 0 ? t + 1 : t > 1 ? t - 1 : t;
    const double v = t < 1.0 / 6 ? p + (q - p) * 6 * t : t < 0.5 ? q : t < 2.0 / 3 ? p + (q - p) * (2.0 / 3 - t) * 6 : p;
    return round_byte(v * 255);
  };
  return {ch(h + 1.0 / 3), ch(h), ch(h - 1.0 / 3)};
}

std::vector<int> unit_groups(const NodeLayout& l, std::vector<std::string>* labels) {
  std::vector<std::pair<std::string, int>> seen;
  std::vector<int> g;
  for (const auto& m : l.units_meta) {
    const std::pair<std::string, int> key{m.layer, m.direction};
    auto it = std::find(seen.begin(), seen.end(), key);
    if (it == seen.end()) { seen.push_back(key); it = seen.end() - 1; }
    g.push_back(static_cast<int>(it - seen.begin()));
  }
  if (labels) {
    labels->clear();
    for (const auto& [layer, dir] : seen)
      labels->push_back((layer.empty() ? std::string("layer") : layer) + (dir ? " reverse" : " forward"));
  }
  return g;
}

std::vector<Rgb> node_colors(const RunData& run, const Frame& f, ColorMode mode) {
  const std::int64_t e0 = run.min_epoch(), e1 = run.max_epoch();
  const std::vector<int> groups = unit_groups(run.layout);
  std::vector<Rgb> c(static_cast<std::size_t>(f.n_nodes));
  for (std::int64_t i = 0; i < f.n_nodes; ++i) {
    const int u = f.node_unit(i);
    Rgb col{};
    switch (mode) {
      case ColorMode::epoch:
        col = ramp(e1 > e0 ? double(f.node_epoch(i) - e0) / double(e1 - e0) : 0.0);
        break;
      case ColorMode::step:
        col = ramp(f.window_steps > 1 ? double(f.node_step_pos(i)) / (f.window_steps - 1) : 0.0);
        break;
      case ColorMode::unit: col = unit_color(u); break;
      case ColorMode::layer:
        col = categorical(u < static_cast<int>(groups.size()) ? groups[static_cast<std::size_t>(u)] : -1);
        break;
      case ColorMode::cls:
        col = categorical(f.most_active_class.empty() ? -1 : f.most_active_class[static_cast<std::size_t>(i)]);
        break;
    }
    c[static_cast<std::size_t>(i)] = col;
  }
  return c;
}

}  // namespace mmphate::view
