#include "monitor/frame_json.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "util/config_json.hpp"
#include "mmphate/scores.hpp"

namespace mmphate {

nlohmann::json frame_header_json(const FrameHeader& h, const char* type) {
  return {{"schema_version", kFrameSchemaVersion},
          {"type", type},
          {"run_id", h.run_id},
          {"frame", h.frame},
          {"epoch", h.epoch},
          {"global_step", h.global_step},
          {"wall_time", h.wall_time},
          {"elapsed_s", h.elapsed_s}};
}

nlohmann::json node_index_json(const Snapshot& layout, const std::vector<std::int64_t>& probe_labels) {
  nlohmann::json j;
  j["schema_version"] = kFrameSchemaVersion;
  j["steps"] = layout.steps;
  std::vector<std::int64_t> steps = layout.step_index;
  if (steps.empty())
    for (Index t = 0; t < layout.steps; ++t) steps.push_back(t);
  j["step_index"] = steps;
  j["units"] = layout.units;
  // Per unit its layer, direction and index within that direction; several recorded layers
  // sit side by side in the snapshot's units, each direction-major within itself.
  nlohmann::json meta = nlohmann::json::array();
  nlohmann::json layers = nlohmann::json::array();
  Index first = 0;
  for (const SnapshotLayer& l : layout.layer_spans()) {
    const Index per_direction = std::max<Index>(1, l.units / std::max(1, l.directions));
    for (Index u = 0; u < l.units; ++u)
      meta.push_back({{"layer", l.name}, {"direction", u / per_direction}, {"unit", u % per_direction}});
    layers.push_back({{"name", l.name}, {"first_unit", first}, {"units", l.units}, {"directions", l.directions}});
    first += l.units;
  }
  j["units_meta"] = meta;
  j["layers"] = layers;
  j["probes"] = layout.probes;
  std::vector<std::int64_t> labels = probe_labels;
  if (static_cast<Index>(labels.size()) != layout.probes) labels.assign(static_cast<std::size_t>(layout.probes), -1);
  std::int64_t classes = 0;
  for (auto l : labels) classes = std::max(classes, l + 1);
  j["probe_labels"] = labels;
  j["classes"] = classes;
  j["node_order"] = "node i: epoch = window.epochs[i / (steps * units)], step = step_index[(i / units) % steps], "
                    "unit = i % units";
  return j;
}

RowMatrix grid_coordinates(const FrameEmbedding& fe) {
  const NodeIndex& nodes = fe.window.nodes;
  RowMatrix grid = RowMatrix::Constant(nodes.shape.nodes(), fe.result.embedding.cols(),
                                       std::numeric_limits<double>::quiet_NaN());
  for (Index r = 0; r < nodes.size(); ++r) grid.row(nodes.full_id[r]) = fe.result.embedding.row(r);
  return grid;
}

std::vector<int> grid_most_active_class(const FrameEmbedding& fe, const std::vector<std::int64_t>& probe_labels) {
  const NodeIndex& nodes = fe.window.nodes;
  std::vector<int> out(static_cast<std::size_t>(nodes.shape.nodes()), -1);
  if (static_cast<Index>(probe_labels.size()) != fe.window.features.cols()) return out;
  bool any = false;
  for (auto l : probe_labels) any = any || l >= 0;
  if (!any) return out;
  const std::vector<int> cls = most_active_class(fe.window.features, probe_labels);
  for (Index r = 0; r < nodes.size(); ++r) out[static_cast<std::size_t>(nodes.full_id[r])] = cls[r];
  return out;
}

nlohmann::json metrics_json(const std::map<std::string, double>& metrics) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : metrics) j[k] = detail::number_or_null(v);
  return j;
}

std::string coordinates_f32(const RowMatrix& grid) {
  std::string bytes(static_cast<std::size_t>(grid.size()) * 4, '\0');
  std::size_t at = 0;
  for (Index i = 0; i < grid.rows(); ++i)
    for (Index c = 0; c < grid.cols(); ++c, at += 4) {
      const float f = static_cast<float>(grid(i, c));
      std::memcpy(&bytes[at], &f, 4);  // x86/ARM hosts are little-endian, as "<f4" says
    }
  return bytes;
}

nlohmann::json embedding_frame_json(const FrameHeader& h, const FrameEmbedding& fe, const RowMatrix& grid,
                                    const std::vector<int>& most_active, int decimals,
                                    const std::string& sidecar_path) {
  nlohmann::json j = frame_header_json(h, "embedding");
  const NodeIndex& nodes = fe.window.nodes;
  j["n_nodes"] = nodes.shape.nodes();
  j["n_present"] = nodes.size();
  j["n_components"] = grid.cols();
  j["window"] = {{"epochs", fe.window.epochs}, {"steps", nodes.shape.steps}, {"units", nodes.shape.units}};
  if (!sidecar_path.empty()) {
    j["coords_file"] = {{"path", sidecar_path}, {"dtype", "<f4"}, {"shape", {grid.rows(), grid.cols()}}};
  } else {
    // Rounded to fixed decimals: the shortest round-trip printing then keeps lines compact.
    // At least 4 significant digits of the frame's radius, whatever its scale: a layout of
    // radius 1e-4 written with 4 decimals kept 24 distinct positions of 28,800.
    Eigen::RowVectorXd sum = Eigen::RowVectorXd::Zero(grid.cols());
    double sq = 0;
    Index count = 0;
    for (Index i = 0; i < grid.rows(); ++i)
      if (std::isfinite(grid(i, 0))) {
        ++count;
        sum += grid.row(i);
        sq += grid.row(i).squaredNorm();
      }
    if (count > 0) {
      const double n = static_cast<double>(count);
      const double radius = std::sqrt(std::max(sq / n - (sum / n).squaredNorm(), 0.0));
      if (radius > 0 && std::isfinite(radius))
        decimals = std::clamp(std::max(decimals, 3 - static_cast<int>(std::floor(std::log10(radius)))), 0, 15);
    }
    j["coords_decimals"] = decimals;
    const double scale = std::pow(10.0, decimals);
    nlohmann::json coords = nlohmann::json::array();
    coords.get_ref<nlohmann::json::array_t&>().reserve(static_cast<std::size_t>(grid.size()));
    for (Index i = 0; i < grid.rows(); ++i)
      for (Index c = 0; c < grid.cols(); ++c) {
        const double v = grid(i, c);
        if (std::isfinite(v)) coords.push_back(std::round(v * scale) / scale);
        else coords.push_back(nullptr);
      }
    j["coords"] = std::move(coords);
  }
  j["most_active_class"] = most_active;
  j["t"] = fe.result.t;
  j["t_automatic"] = fe.result.t_automatic || !fe.full;
  j["update"] = fe.full ? "full" : "incremental";
  j["update_reason"] = fe.reason;
  nlohmann::json times = nlohmann::json::object();
  for (const auto& [k, v] : fe.times) times[k] = times.contains(k) ? times[k].get<double>() + v : v;
  j["timings_s"] = times;
  if (fe.aligned) {
    const double rel = fe.alignment.radius > 0 ? fe.alignment.rms_after / fe.alignment.radius
                                               : std::numeric_limits<double>::quiet_NaN();
    j["alignment"] = {{"method", "procrustes"},
                      {"shared_nodes", fe.alignment.shared},
                      {"rms_displacement", detail::number_or_null(rel)},
                      {"reflected", fe.alignment.reflected},
                      {"scale", fe.alignment.scale}};
  } else {
    j["alignment"] = {{"method", "none"}, {"shared_nodes", 0}, {"rms_displacement", nullptr}, {"reflected", false}};
  }
  j["landmarks"] = fe.result.n_landmarks;
  j["slow_mode_energy"] = detail::number_or_null(fe.result.slow_mode_energy);
  j["interslice_eps"] = fe.result.interslice_eps;
  j["metrics"] = nlohmann::json::object();
  j["diagnostics"] = nlohmann::json::object();
  return j;
}

nlohmann::json event_frame_json(const FrameHeader& h, const std::string& event, const std::string& message,
                                const nlohmann::json& data) {
  nlohmann::json j = frame_header_json(h, "event");
  j["event"] = event;
  j["message"] = message;
  j["data"] = data;
  return j;
}

}  // namespace mmphate
