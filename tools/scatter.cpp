#include "scatter.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <sstream>

namespace mmphate::view {

Projected project(const Frame& f, double w, double h, double margin, const View& view) {
  Projected p;
  const std::int64_t n = f.n_nodes;
  const int d = f.n_components;
  std::vector<float> sx(static_cast<std::size_t>(n)), sy(sx.size()), depth(sx.size());
  std::vector<std::int64_t> ids;
  for (std::int64_t i = 0; i < n; ++i)
    if (f.present(i)) ids.push_back(i);
  p.x.assign(sx.size(), 0.f);
  p.y.assign(sx.size(), 0.f);
  if (ids.empty()) return p;
  auto c = [&](std::int64_t i, int k) { return static_cast<double>(f.coords[static_cast<std::size_t>(i * d + k)]); };
  double scale = 1, cx = 0, cy = 0;
  if (d == 3) {
    // Rotate about the centroid (yaw about y, then pitch about x); fit the bounding sphere.
    double m[3] = {0, 0, 0};
    for (auto i : ids)
      for (int k = 0; k < 3; ++k) m[k] += c(i, k);
    for (double& v : m) v /= static_cast<double>(ids.size());
    double r2 = 0;
    const double cyw = std::cos(view.yaw), syw = std::sin(view.yaw), cp = std::cos(view.pitch), sp = std::sin(view.pitch);
    for (auto i : ids) {
      const double x = c(i, 0) - m[0], y = c(i, 1) - m[1], z = c(i, 2) - m[2];
      r2 = std::max(r2, x * x + y * y + z * z);
      const double x1 = x * cyw + z * syw, z1 = -x * syw + z * cyw;
      sx[static_cast<std::size_t>(i)] = static_cast<float>(x1);
      sy[static_cast<std::size_t>(i)] = static_cast<float>(y * cp - z1 * sp);
      depth[static_cast<std::size_t>(i)] = static_cast<float>(y * sp + z1 * cp);
    }
    const double r = std::sqrt(r2);
    scale = r > 0 ? std::min(w - 2 * margin, h - 2 * margin) / (2 * r) : 1;
  } else {
    double lo[2] = {1e300, 1e300}, hi[2] = {-1e300, -1e300};
    for (auto i : ids)
      for (int k = 0; k < 2; ++k) { lo[k] = std::min(lo[k], c(i, k)); hi[k] = std::max(hi[k], c(i, k)); }
    cx = (lo[0] + hi[0]) / 2;
    cy = (lo[1] + hi[1]) / 2;
    const double bw = hi[0] - lo[0], bh = hi[1] - lo[1];
    scale = std::min(bw > 0 ? (w - 2 * margin) / bw : 1e300, bh > 0 ? (h - 2 * margin) / bh : 1e300);
    if (scale > 1e299) scale = 1;
    for (auto i : ids) { sx[static_cast<std::size_t>(i)] = static_cast<float>(c(i, 0)); sy[static_cast<std::size_t>(i)] = static_cast<float>(c(i, 1)); }
  }
  for (auto i : ids) {
    const auto u = static_cast<std::size_t>(i);
    p.x[u] = static_cast<float>(w / 2 + (sx[u] - cx) * scale);
    p.y[u] = static_cast<float>(h / 2 - (sy[u] - cy) * scale);  // screen y grows downwards
  }
  if (d == 3)  // painter's order: far (small depth) first
    std::stable_sort(ids.begin(), ids.end(), [&](auto a, auto b) { return depth[static_cast<std::size_t>(a)] < depth[static_cast<std::size_t>(b)]; });
  p.order = std::move(ids);
  return p;
}

double auto_radius(std::int64_t n_points, double box) {
  const double r = 2.6 * std::sqrt(2000.0 / std::max<std::int64_t>(n_points, 1)) * box / 800.0;
  return std::clamp(r, 0.7, 6.0);
}

Legend make_legend(const RunData& run, const Frame& f, ColorMode mode) {
  Legend L;
  switch (mode) {
    case ColorMode::epoch:
      L.title = "epoch";
      L.gradient = true;
      L.low = std::to_string(run.min_epoch());
      L.high = std::to_string(run.max_epoch());
      break;
    case ColorMode::step: {
      L.title = "time step";
      L.gradient = true;
      const auto& si = run.layout.step_index;
      L.low = std::to_string(si.empty() ? 0 : si.front());
      L.high = std::to_string(si.empty() ? f.window_steps - 1 : si.back());
      break;
    }
    case ColorMode::unit:
      L.title = "unit";
      for (int u = 0; u < std::min(f.window_units, 12); ++u) L.entries.emplace_back(unit_color(u), "unit " + std::to_string(u));
      if (f.window_units > 12) L.entries.emplace_back(palette().background, "...");
      break;
    case ColorMode::layer: {
      L.title = "layer / direction";
      std::vector<std::string> labels;
      unit_groups(run.layout, &labels);
      for (std::size_t g = 0; g < labels.size() && g < 12; ++g) L.entries.emplace_back(categorical(static_cast<int>(g)), labels[g]);
      break;
    }
    case ColorMode::cls: {
      L.title = "most active class";
      std::set<int> seen(f.most_active_class.begin(), f.most_active_class.end());
      for (int c : seen) {
        if (L.entries.size() >= 12) break;
        L.entries.emplace_back(categorical(c), c < 0 ? "none" : "class " + std::to_string(c));
      }
      break;
    }
  }
  return L;
}

void draw_scatter(Image& img, int x0, int y0, int w, int h, const Frame& f, const std::vector<Rgb>& colors,
                  const View& view, const std::string& caption) {
  const int caption_h = caption.empty() ? 0 : 24;
  const Projected p = project(f, w, h - caption_h, 0.04 * std::min(w, h) + 4, view);
  const double r = auto_radius(static_cast<std::int64_t>(p.order.size()), std::min(w, h));
  const double alpha = p.order.size() > 20000 ? 0.55 : 0.85;
  for (auto i : p.order) {
    const auto u = static_cast<std::size_t>(i);
    img.disc(x0 + p.x[u], y0 + caption_h + p.y[u], r, colors[u], alpha);
  }
  if (!caption.empty()) img.text(x0 + 8, y0 + 6, caption, {40, 40, 40}, 2);
}

void draw_legend(Image& img, int x0, int y0, const Legend& L) {
  const Rgb ink{40, 40, 40};
  img.text(x0, y0, L.title, ink, 2);
  int y = y0 + 24;
  if (L.gradient) {
    for (int k = 0; k < 120; ++k) img.rect(x0 + k, y, 1, 14, ramp(k / 119.0));
    img.text(x0, y + 20, L.low, ink, 2);
    img.text(x0 + 120 - text_width(L.high, 2), y + 20, L.high, ink, 2);
    return;
  }
  for (const auto& [c, label] : L.entries) {
    img.rect(x0, y, 14, 14, c);
    img.text(x0 + 20, y, label.substr(0, 18), ink, 2);
    y += 20;
  }
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(ch) >= 0x20 || ch == '\t') o += ch;  // no control characters in XML
    }
  }
  return o;
}

static std::string rgb_css(Rgb c) {
  return "rgb(" + std::to_string(c[0]) + "," + std::to_string(c[1]) + "," + std::to_string(c[2]) + ")";
}

std::string svg_scatter(double x0, double y0, double w, double h, const Frame& f, const std::vector<Rgb>& colors,
                        const View& view, const std::string& caption) {
  const double caption_h = caption.empty() ? 0 : 24;
  const Projected p = project(f, w, h - caption_h, 0.04 * std::min(w, h) + 4, view);
  const double r = auto_radius(static_cast<std::int64_t>(p.order.size()), std::min(w, h));
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(2);
  s << "<g fill-opacity=\"" << (p.order.size() > 20000 ? 0.55 : 0.85) << "\">\n";
  for (auto i : p.order) {
    const auto u = static_cast<std::size_t>(i);
    s << "<circle cx=\"" << x0 + p.x[u] << "\" cy=\"" << y0 + caption_h + p.y[u] << "\" r=\"" << r << "\" fill=\""
      << rgb_css(colors[u]) << "\"/>\n";
  }
  s << "</g>\n";
  if (!caption.empty())
    s << "<text x=\"" << x0 + 8 << "\" y=\"" << y0 + 18 << "\" font-family=\"sans-serif\" font-size=\"15\" fill=\"#282828\">"
      << xml_escape(caption) << "</text>\n";
  return s.str();
}

std::string svg_legend(double x0, double y0, const Legend& L) {
  std::ostringstream s;
  s << "<g font-family=\"sans-serif\" font-size=\"13\" fill=\"#282828\">\n<text x=\"" << x0 << "\" y=\"" << y0 + 12
    << "\">" << xml_escape(L.title) << "</text>\n";
  double y = y0 + 24;
  if (L.gradient) {
    s << "<defs><linearGradient id=\"ramp\">";
    for (int k = 0; k <= 8; ++k) s << "<stop offset=\"" << k / 8.0 << "\" stop-color=\"" << rgb_css(ramp(k / 8.0)) << "\"/>";
    s << "</linearGradient></defs>\n<rect x=\"" << x0 << "\" y=\"" << y << "\" width=\"120\" height=\"14\" fill=\"url(#ramp)\"/>\n"
      << "<text x=\"" << x0 << "\" y=\"" << y + 30 << "\">" << xml_escape(L.low) << "</text>\n<text x=\"" << x0 + 120
      << "\" y=\"" << y + 30 << "\" text-anchor=\"end\">" << xml_escape(L.high) << "</text>\n";
  } else {
    for (const auto& [c, label] : L.entries) {
      s << "<rect x=\"" << x0 << "\" y=\"" << y << "\" width=\"14\" height=\"14\" fill=\"" << rgb_css(c) << "\"/><text x=\""
        << x0 + 20 << "\" y=\"" << y + 12 << "\">" << xml_escape(label) << "</text>\n";
      y += 20;
    }
  }
  s << "</g>\n";
  return s.str();
}

}  // namespace mmphate::view
