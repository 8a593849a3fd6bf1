// Fuzz harness of the run-directory reader (plugin/src/run/frame_reader.cpp): node_index.json,
// frames.jsonl and a coordinate sidecar, read as `mmphate render` reads them (read_run,
// load_coords, select_frames, the node accessors).
//
// One input is a whole run directory:
//   line 1             node_index.json
//   next lines         frames.jsonl (up to the marker line)
//   "#sidecar" line    optional; the bytes after it are frames/f.f32
#include <cmath>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "fuzz.hpp"
#include "mmphate/error.hpp"
#include "mmphate/run/frame_reader.hpp"

namespace mmphate::fuzz {
namespace {

using nlohmann::json;
const std::string kMarker = "\n#sidecar\n";

json layout(int steps, int units) {
  json j = {{"schema_version", 1}, {"steps", steps}, {"units", units}, {"probes", 4}, {"classes", 2}};
  for (int s = 0; s < steps; ++s) j["step_index"].push_back(2 * s);
  for (int u = 0; u < units; ++u) j["units_meta"].push_back({{"layer", "lstm"}, {"direction", u % 2}, {"unit", u / 2}});
  j["probe_labels"] = {0, 1, 0, 1};
  return j;
}

json frame_head(const char* type, int frame, int epoch) {
  return {{"schema_version", 1}, {"type", type},         {"run_id", "fuzz"},
          {"frame", frame},      {"epoch", epoch},       {"global_step", 10 * epoch},
          {"wall_time", 1.7e9 + frame}};
}

json embedding(int frame, const std::vector<int>& epochs, int steps, int units, int nc, bool sidecar) {
  json f = frame_head("embedding", frame, epochs.back());
  const int n = static_cast<int>(epochs.size()) * steps * units;
  f["n_nodes"] = n;
  f["n_present"] = n;
  f["n_components"] = nc;
  f["window"] = {{"epochs", epochs}, {"steps", steps}, {"units", units}};
  if (sidecar) {
    f["coords_file"] = {{"path", "frames/f.f32"}, {"dtype", "<f4"}, {"shape", {n, nc}}};
  } else {
    json c = json::array();
    for (int i = 0; i < n * nc; ++i) c.push_back(i % 7 == 3 ? json(nullptr) : json(0.25 * (i % 11) - 1.0));
    f["coords"] = c;
  }
  json mac = json::array();
  for (int i = 0; i < n; ++i) mac.push_back(i % 3 - 1);
  f["most_active_class"] = mac;
  f["metrics"] = {{"loss", 0.5}, {"acc", nullptr}};
  f["diagnostics"] = {{"entropy", {{"mean", 1.5}}}};
  return f;
}

json event(int frame, const char* name) {
  json e = frame_head("event", frame, frame - 1);
  e["event"] = name;
  e["message"] = std::string("monitor ") + name;
  e["data"] = {{"reason", "fuzz"}};
  return e;
}

std::string sidecar(std::size_t floats) {
  std::string b(floats * 4, '\0');
  for (std::size_t i = 0; i < floats; ++i) {
    const float v = i % 5 == 4 ? NAN : static_cast<float>(i) * 0.5f - 3.0f;
    std::memcpy(&b[4 * i], &v, 4);
  }
  return b;
}

std::string run_text(const json& index, const std::vector<json>& frames, const std::string& side, bool marker = true) {
  std::string s = index.dump() + "\n";
  for (const auto& f : frames) s += f.dump() + "\n";
  if (marker) s += kMarker.substr(1) + side;
  return s;
}

std::vector<std::string> seeds() {
  return {run_text(layout(2, 3), {event(0, "started"), embedding(1, {0}, 2, 3, 2, false),
                                  embedding(2, {0, 1}, 2, 3, 2, true), event(3, "finished")},
                   sidecar(24)),
          run_text(layout(1, 4), {embedding(1, {3}, 1, 4, 3, false), embedding(2, {3, 4}, 1, 4, 3, true)}, sidecar(24)),
          run_text(layout(3, 2), {embedding(1, {0}, 3, 2, 2, true)}, sidecar(12), false),
          // a killed writer: the last line has no newline
          layout(2, 2).dump() + "\n" + embedding(1, {5}, 2, 2, 2, false).dump() + "\n" +
              embedding(2, {5, 6}, 2, 2, 2, false).dump().substr(0, 60)};
}

// Fresh small runs: a layout and frames whose shapes agree with it or not.
std::string generate(Rng& rng) {
  const int steps = 1 + static_cast<int>(uniform(rng, 4)), units = 1 + static_cast<int>(uniform(rng, 5));
  std::vector<json> frames{event(0, "started")};
  int side_floats = 0;
  for (int k = 1; k <= 1 + static_cast<int>(uniform(rng, 3)); ++k) {
    std::vector<int> epochs;
    for (int e = 0; e <= static_cast<int>(uniform(rng, 3)); ++e) epochs.push_back(k + e);
    const bool wrong = uniform(rng, 4) == 0;
    const int fs = wrong ? steps + 1 : steps, nc = uniform(rng, 2) ? 2 : 3;
    const bool side = uniform(rng, 2);
    frames.push_back(embedding(k, epochs, fs, units, nc, side));
    if (side) side_floats = static_cast<int>(epochs.size()) * fs * units * nc;
  }
  return run_text(layout(steps, units), frames, sidecar(static_cast<std::size_t>(side_floats) + uniform(rng, 2)));
}

void check_frame(const Frame& f) {
  const std::size_t n = static_cast<std::size_t>(f.n_nodes) * static_cast<std::size_t>(f.n_components);
  if (f.coords.size() != n) throw Broken("coords hold " + std::to_string(f.coords.size()) + " values, not " + std::to_string(n));
  if (!f.most_active_class.empty() && f.most_active_class.size() != static_cast<std::size_t>(f.n_nodes))
    throw Broken("most_active_class size");
  for (std::int64_t i = 0; i < f.n_nodes; ++i) {  // what the renderers do with every node
    const std::int64_t e = f.node_epoch(i);
    const int s = f.node_step_pos(i), u = f.node_unit(i);
    if (s < 0 || s >= f.window_steps || u < 0 || u >= f.window_units) throw Broken("node position out of the window");
    (void)e;
    (void)f.present(i);
  }
}

void run(const std::string& input, const std::string& scratch) {
  const std::string dir = scratch + "/run";
  std::filesystem::remove_all(dir);
  make_dirs(dir + "/frames");
  const std::size_t nl = input.find('\n');
  const std::size_t mark = input.find(kMarker, nl == std::string::npos ? input.size() : nl);
  write_file(dir + "/node_index.json", input.substr(0, nl));
  if (nl != std::string::npos) {
    write_file(dir + "/frames.jsonl", input.substr(nl + 1, mark == std::string::npos ? std::string::npos : mark - nl));
    if (mark != std::string::npos) write_file(dir + "/frames/f.f32", input.substr(mark + kMarker.size()));
  }
  RunData r = read_run(dir);
  (void)r.min_epoch();
  (void)r.max_epoch();
  for (Frame& f : r.frames) {
    if (!f.is_embedding()) continue;
    try {
      load_coords(r, f);
    } catch (const Error&) {
      continue;  // a bad sidecar costs its frame only, as in the renderers
    }
    check_frame(f);
  }
  for (const char* spec : {"all", "last", "first", "1,2", "e:0", "e:1,5", "x", "-1", ""}) {
    try {
      for (std::size_t i : select_frames(r, spec))
        if (i >= r.frames.size() || !r.frames[i].is_embedding()) throw Broken("select_frames gave a bad index");
    } catch (const Error&) {
    }
  }
}

}  // namespace

const Target& target() {
  static const Target t{"frames",
                        seeds,
                        run,
                        {"\"embedding\"", "\"event\"", "\"coords\"", "\"coords_file\"", "\"window\"", "\"n_nodes\"",
                         "\n", "#sidecar\n", "\"frames/f.f32\"", "\"../node_index.json\"", "null", ": ", ", "},
                        true,
                        generate,
                        2000};
  return t;
}

}  // namespace mmphate::fuzz
