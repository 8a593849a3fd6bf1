// Node colours of `mmphate render`, identical to the viewer's (viewer/js/palette.js).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "mmphate/run/frame_reader.hpp"

namespace mmphate::view {

using Rgb = std::array<unsigned char, 3>;

enum class ColorMode { epoch, step, unit, layer, cls };
ColorMode parse_color_mode(const std::string& s);  // epoch|step|unit|layer|class
const char* to_string(ColorMode m);

struct Palette {
  Rgb background, unknown;
  std::vector<Rgb> ramp, categorical;
  double unit_hue_step, unit_saturation, unit_lightness;
  double yaw, pitch;  // default 3-D view (radians)
};
const Palette& palette();

Rgb ramp(double t);
Rgb categorical(int i);
Rgb unit_color(int u);

// Colours of every node of a frame; epochs are scaled over the whole run so that a colour
// means the same epoch in every frame.
std::vector<Rgb> node_colors(const RunData& run, const Frame& f, ColorMode mode);

// (layer, direction) group of each unit, in order of first appearance, and its label.
std::vector<int> unit_groups(const NodeLayout& l, std::vector<std::string>* labels = nullptr);

}  // namespace mmphate::view
