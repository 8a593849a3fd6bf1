/// @file
/// Reader of a monitored run directory (docs/FRAMES.md): node_index.json, frames.jsonl and the
/// float32 coordinate sidecars. Used by `mmphate render` and `mmphate export`.
/// A line that is not complete JSON (a running or killed writer's last line, or a damaged
/// line) is skipped with a warning, never fatal; a missing run or node index is an Error.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmphate {

struct UnitMeta {
  std::string layer;
  int direction = 0;
  int unit = 0;  ///< index within its direction
};

/// node_index.json: the static layout of every frame's nodes.
struct NodeLayout {
  int steps = 0;
  std::vector<int> step_index;  ///< original time step of each kept step
  int units = 0;
  std::vector<UnitMeta> units_meta;
  int probes = 0;
  std::vector<int> probe_labels;
  int classes = 0;
};

/// One line of frames.jsonl. Embedding fields are empty for events and vice versa.
struct Frame {
  std::string type;  ///< "embedding" or "event"
  std::string run_id;
  std::int64_t frame = 0, epoch = 0, global_step = 0;
  double wall_time = 0;
  std::size_t line = 0;  ///< 1-based line number in frames.jsonl, for messages

  /// embedding
  std::int64_t n_nodes = 0, n_present = -1;
  int n_components = 0;
  std::vector<std::int64_t> window_epochs;
  int window_steps = 0, window_units = 0;
  std::vector<float> coords;    ///< n_nodes * n_components, NaN = absent; empty until loaded
  std::string coords_file;      ///< sidecar path relative to the run directory, "" when inline
  std::vector<int> most_active_class;  ///< per node, or empty
  std::vector<std::pair<std::string, double>> metrics;  ///< NaN for null
  nlohmann::json diagnostics = nlohmann::json::object();
  /// Epochs that arrived while the previous frame was computed (docs/FRAMES.md) and their
  /// metrics, {"<epoch>": {name: number|null}}.
  std::vector<std::int64_t> coalesced_epochs;
  nlohmann::json coalesced_metrics = nlohmann::json::object();

  /// event
  std::string event, message;
  nlohmann::json data = nlohmann::json::object();

  bool is_embedding() const { return type == "embedding"; }
  bool coords_loaded() const { return !coords.empty(); }
  /// Node i of the window grid (docs/FRAMES.md "Nodes").
  std::int64_t node_epoch(std::int64_t i) const;
  int node_step_pos(std::int64_t i) const;  ///< kept-step position 0..steps-1
  int node_unit(std::int64_t i) const;
  bool present(std::int64_t i) const;  ///< coordinates finite (coords must be loaded)
};

struct RunData {
  std::string dir;
  NodeLayout layout;
  std::vector<Frame> frames;          ///< every valid line, file order
  std::vector<std::string> warnings;  ///< skipped lines and why
  std::size_t skipped_lines = 0;

  std::vector<const Frame*> embeddings() const;
  std::int64_t min_epoch() const;  ///< over every embedding frame's window (0 without frames)
  std::int64_t max_epoch() const;
};

NodeLayout parse_node_layout(const nlohmann::json& j, const std::string& where);

/// Parses one line; throws Error naming what is wrong (the caller decides to skip it).
Frame parse_frame(const nlohmann::json& j);

/// Reads frames.jsonl text. Lines that fail to parse are skipped and reported in `run`.
void parse_frames_text(const std::string& text, RunData& run);

/// Reads RUN_DIR (node_index.json + frames.jsonl); sidecar coordinates are not loaded yet.
RunData read_run(const std::string& dir);

/// Loads the coordinates of an embedding frame from its sidecar (no-op when inline or loaded).
/// Refuses absolute paths, '..', a path whose resolved form (symbolic links followed) leaves
/// the run directory, anything but a regular file, and a size that does not match the shape.
void load_coords(const RunData& run, Frame& f);

/// Embedding frames chosen by frame counters ("3,5"), epochs ("e:2,4"), "last", "first" or "all".
std::vector<std::size_t> select_frames(const RunData& run, const std::string& spec);

}  // namespace mmphate
