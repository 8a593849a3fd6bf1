// The JSON of frames and of the node index (format: docs/FRAMES.md, docs/frame.schema.json).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "incremental/embedder.hpp"
#include "mmphate/snapshot_store.hpp"

namespace mmphate {

inline constexpr int kFrameSchemaVersion = 1;

// Fields every frame line carries.
struct FrameHeader {
  std::string run_id;
  std::int64_t frame = 0;
  std::int64_t epoch = 0;
  std::int64_t global_step = 0;
  double wall_time = 0.0;  // Unix seconds
  double elapsed_s = 0.0;
};

nlohmann::json frame_header_json(const FrameHeader& h, const char* type);

// node_index.json from the window's layout (any snapshot of it) and the probe labels.
nlohmann::json node_index_json(const Snapshot& layout, const std::vector<std::int64_t>& probe_labels);

// The frame's coordinates on the full grid (window epochs x steps x units, epoch-major):
// graph rows in place, NaN rows for absent nodes.
RowMatrix grid_coordinates(const FrameEmbedding& fe);

// Per grid node, the class whose probes activate it most (-1: absent or no labels).
std::vector<int> grid_most_active_class(const FrameEmbedding& fe, const std::vector<std::int64_t>& probe_labels);

// Metrics as JSON numbers (NaN/Inf become null: JSON has no NaN).
nlohmann::json metrics_json(const std::map<std::string, double>& metrics);

// An embedding frame. With sidecar_path set, the coordinates are referenced (already written
// there, relative to the run directory) instead of inlined with `decimals` fixed decimals.
nlohmann::json embedding_frame_json(const FrameHeader& h, const FrameEmbedding& fe, const RowMatrix& grid,
                                    const std::vector<int>& most_active, int decimals,
                                    const std::string& sidecar_path);

// Float32 little-endian bytes of the grid coordinates (the sidecar's content).
std::string coordinates_f32(const RowMatrix& grid);

nlohmann::json event_frame_json(const FrameHeader& h, const std::string& event, const std::string& message,
                                const nlohmann::json& data = nlohmann::json::object());

}  // namespace mmphate
