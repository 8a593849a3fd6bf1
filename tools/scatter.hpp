// Scatter layout shared by the PNG and SVG outputs of `mmphate render`: projection of 2-D or
// 3-D coordinates to a box (same view and fit as the viewer), drawing order and legends.
#pragma once
#include <string>
#include <vector>

#include "colors.hpp"
#include "image.hpp"
#include "mmphate/run/frame_reader.hpp"

namespace mmphate::view {

struct View {
  double yaw = 0, pitch = 0;  // 3-D rotation (radians); ignored for 2-D
};

// Screen positions of the present nodes of a frame, fitted into [margin, w - margin] x
// [margin, h - margin]; `order` lists node ids back to front (3-D) or in node order (2-D).
struct Projected {
  std::vector<float> x, y;
  std::vector<std::int64_t> order;
};
Projected project(const Frame& f, double w, double h, double margin, const View& view);

double auto_radius(std::int64_t n_points, double box);

struct Legend {
  std::string title;
  bool gradient = false;
  std::string low, high;                               // gradient ends
  std::vector<std::pair<Rgb, std::string>> entries;    // categorical
};
Legend make_legend(const RunData& run, const Frame& f, ColorMode mode);

// Draws the scatter (and a caption) of `f` into `img` at (x0, y0) with a box of size w x h.
void draw_scatter(Image& img, int x0, int y0, int w, int h, const Frame& f, const std::vector<Rgb>& colors,
                  const View& view, const std::string& caption);
void draw_legend(Image& img, int x0, int y0, const Legend& legend);

// The same figure as SVG elements (no header); text is XML-escaped.
std::string svg_scatter(double x0, double y0, double w, double h, const Frame& f, const std::vector<Rgb>& colors,
                        const View& view, const std::string& caption);
std::string svg_legend(double x0, double y0, const Legend& legend);
std::string xml_escape(const std::string& s);

}  // namespace mmphate::view
