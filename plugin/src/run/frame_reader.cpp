#include "mmphate/run/frame_reader.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "util/config_json.hpp"
#include "mmphate/error.hpp"
#include "monitor/frame_json.hpp"
#include "mmphate/log.hpp"

namespace mmphate {

using nlohmann::json;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Field access with one-line errors naming the field (frames are untrusted input).
const json& need(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) throw Error(std::string("missing field '") + key + "'");
  return *it;
}

std::int64_t need_int(const json& j, const char* key) {
  const json& v = need(j, key);
  if (!v.is_number_integer()) throw Error(std::string("field '") + key + "' is not an integer");
  return v.get<std::int64_t>();
}

double need_number(const json& j, const char* key) {
  const json& v = need(j, key);
  if (!v.is_number()) throw Error(std::string("field '") + key + "' is not a number");
  return v.get<double>();
}

std::string need_string(const json& j, const char* key) {
  const json& v = need(j, key);
  if (!v.is_string()) throw Error(std::string("field '") + key + "' is not a string");
  return v.get<std::string>();
}

// Grid sizes are bounded so that a hostile frame cannot request a huge allocation. The
// layout's tables (one entry per step and per unit) are filled in when absent, so each side
// is bounded as well.
constexpr std::int64_t kMaxNodes = std::int64_t(1) << 28;
constexpr std::int64_t kMaxLayoutSide = 1000000;

void parse_embedding(const json& j, Frame& f) {
  f.n_nodes = need_int(j, "n_nodes");
  if (f.n_nodes < 1 || f.n_nodes > kMaxNodes) throw Error("n_nodes " + std::to_string(f.n_nodes) + " out of range");
  if (j.contains("n_present") && j["n_present"].is_number_integer()) f.n_present = j["n_present"].get<std::int64_t>();
  const std::int64_t nc = need_int(j, "n_components");
  if (nc != 2 && nc != 3) throw Error("n_components must be 2 or 3, got " + std::to_string(nc));
  f.n_components = static_cast<int>(nc);
  const json& w = need(j, "window");
  if (!w.is_object()) throw Error("field 'window' is not an object");
  const json& we = need(w, "epochs");
  if (!we.is_array() || we.empty()) throw Error("window.epochs must be a non-empty array");
  for (const auto& e : we) {
    if (!e.is_number_integer()) throw Error("window.epochs holds a non-integer");
    f.window_epochs.push_back(e.get<std::int64_t>());
  }
  const std::int64_t steps = need_int(w, "steps"), units = need_int(w, "units");
  if (steps < 1 || units < 1) throw Error("window.steps and window.units must be positive");
  // Every factor and partial product is checked against n_nodes (<= 2^28) before the next
  // multiplication: the unchecked product of huge steps and units overflowed (UB).
  const auto n_epochs = static_cast<std::int64_t>(f.window_epochs.size());
  if (steps > f.n_nodes || units > f.n_nodes || n_epochs > f.n_nodes || n_epochs * steps > f.n_nodes ||
      n_epochs * steps * units != f.n_nodes)
    throw Error("n_nodes " + std::to_string(f.n_nodes) + " is not window epochs x steps x units (" +
                std::to_string(f.window_epochs.size()) + " x " + std::to_string(steps) + " x " + std::to_string(units) + ")");
  f.window_steps = static_cast<int>(steps);
  f.window_units = static_cast<int>(units);

  const std::size_t n_values = static_cast<std::size_t>(f.n_nodes) * static_cast<std::size_t>(nc);
  if (j.contains("coords")) {
    const json& c = j["coords"];
    if (!c.is_array() || c.size() != n_values)
      throw Error("coords must hold n_nodes x n_components = " + std::to_string(n_values) + " values");
    f.coords.resize(n_values);
    for (std::size_t i = 0; i < n_values; ++i) {
      const json& v = c[i];
      if (v.is_null()) f.coords[i] = std::numeric_limits<float>::quiet_NaN();
      else if (v.is_number()) f.coords[i] = static_cast<float>(v.get<double>());
      else throw Error("coords[" + std::to_string(i) + "] is neither a number nor null");
    }
  } else if (j.contains("coords_file")) {
    const json& cf = j["coords_file"];
    if (!cf.is_object()) throw Error("coords_file is not an object");
    f.coords_file = need_string(cf, "path");
    if (need_string(cf, "dtype") != "<f4") throw Error("coords_file.dtype must be '<f4'");
    const json& shape = need(cf, "shape");
    if (!shape.is_array() || shape.size() != 2 || !shape[0].is_number_integer() || !shape[1].is_number_integer() ||
        shape[0].get<std::int64_t>() != f.n_nodes || shape[1].get<std::int64_t>() != nc)
      throw Error("coords_file.shape must be [n_nodes, n_components]");
  } else {
    throw Error("embedding frame without coords or coords_file");
  }
  if (j.contains("most_active_class") && j["most_active_class"].is_array()) {
    const json& m = j["most_active_class"];
    if (static_cast<std::int64_t>(m.size()) != f.n_nodes) throw Error("most_active_class must hold one class per node");
    f.most_active_class.reserve(m.size());
    for (const auto& v : m) f.most_active_class.push_back(v.is_number_integer() ? v.get<int>() : -1);
  }
  if (j.contains("metrics") && j["metrics"].is_object())
    for (const auto& [k, v] : j["metrics"].items())
      f.metrics.emplace_back(k, v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN());
  if (j.contains("diagnostics") && j["diagnostics"].is_object()) f.diagnostics = j["diagnostics"];
  if (j.contains("coalesced_epochs") && j["coalesced_epochs"].is_array())
    for (const auto& e : j["coalesced_epochs"])
      if (e.is_number_integer()) f.coalesced_epochs.push_back(e.get<std::int64_t>());
  if (j.contains("coalesced_metrics") && j["coalesced_metrics"].is_object()) f.coalesced_metrics = j["coalesced_metrics"];
}

}  // namespace

std::int64_t Frame::node_epoch(std::int64_t i) const {
  return window_epochs[static_cast<std::size_t>(i / (static_cast<std::int64_t>(window_steps) * window_units))];
}
int Frame::node_step_pos(std::int64_t i) const { return static_cast<int>((i / window_units) % window_steps); }
int Frame::node_unit(std::int64_t i) const { return static_cast<int>(i % window_units); }
bool Frame::present(std::int64_t i) const {
  for (int k = 0; k < n_components; ++k)
    if (!std::isfinite(coords[static_cast<std::size_t>(i) * n_components + k])) return false;
  return true;
}

NodeLayout parse_node_layout(const json& j, const std::string& where) {
  try {
    if (!j.is_object()) throw Error("not a JSON object");
    NodeLayout l;
    // Checked before the narrowing and the tables below: steps 2^31 - 1 allocated 8 GB.
    const std::int64_t steps = need_int(j, "steps"), units = need_int(j, "units");
    if (steps < 1 || units < 1) throw Error("steps and units must be positive");
    if (steps > kMaxLayoutSide || units > kMaxLayoutSide || steps * units > kMaxNodes)
      throw Error("steps " + std::to_string(steps) + " x units " + std::to_string(units) + " out of range (each <= " +
                  std::to_string(kMaxLayoutSide) + ", product <= " + std::to_string(kMaxNodes) + ")");
    l.steps = static_cast<int>(steps);
    l.units = static_cast<int>(units);
    if (j.contains("step_index") && j["step_index"].is_array())
      for (const auto& v : j["step_index"]) l.step_index.push_back(v.is_number_integer() ? v.get<int>() : -1);
    if (static_cast<int>(l.step_index.size()) != l.steps) {
      l.step_index.resize(static_cast<std::size_t>(l.steps));
      for (int s = 0; s < l.steps; ++s) l.step_index[static_cast<std::size_t>(s)] = s;
    }
    if (j.contains("units_meta") && j["units_meta"].is_array())
      for (const auto& m : j["units_meta"]) {
        UnitMeta u;
        if (m.is_object()) {
          if (m.contains("layer") && m["layer"].is_string()) u.layer = m["layer"].get<std::string>();
          if (m.contains("direction") && m["direction"].is_number_integer()) u.direction = m["direction"].get<int>();
          if (m.contains("unit") && m["unit"].is_number_integer()) u.unit = m["unit"].get<int>();
        }
        l.units_meta.push_back(u);
      }
    if (static_cast<int>(l.units_meta.size()) != l.units) {  // absent or inconsistent: one plain layer
      l.units_meta.assign(static_cast<std::size_t>(l.units), UnitMeta{});
      for (int u = 0; u < l.units; ++u) l.units_meta[static_cast<std::size_t>(u)].unit = u;
    }
    if (j.contains("probes") && j["probes"].is_number_integer()) l.probes = j["probes"].get<int>();
    if (j.contains("probe_labels") && j["probe_labels"].is_array())
      for (const auto& v : j["probe_labels"]) l.probe_labels.push_back(v.is_number_integer() ? v.get<int>() : -1);
    if (j.contains("classes") && j["classes"].is_number_integer()) l.classes = j["classes"].get<int>();
    return l;
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

Frame parse_frame(const json& j) {
  if (!j.is_object()) throw Error("not a JSON object");
  Frame f;
  if (need_int(j, "schema_version") != kFrameSchemaVersion)
    throw Error("unsupported schema_version (this reader knows " + std::to_string(kFrameSchemaVersion) + ")");
  f.type = need_string(j, "type");
  f.run_id = need_string(j, "run_id");
  f.frame = need_int(j, "frame");
  f.epoch = need_int(j, "epoch");
  f.global_step = need_int(j, "global_step");
  f.wall_time = need_number(j, "wall_time");
  if (f.type == "embedding") {
    parse_embedding(j, f);
  } else if (f.type == "event") {
    f.event = need_string(j, "event");
    if (j.contains("message") && j["message"].is_string()) f.message = j["message"].get<std::string>();
    if (j.contains("data") && j["data"].is_object()) f.data = j["data"];
  } else {
    throw Error("unknown frame type '" + f.type + "'");
  }
  return f;
}

void parse_frames_text(const std::string& text, RunData& run) {
  std::size_t pos = 0, line = 0;
  while (pos < text.size()) {
    ++line;
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      // The writer has not finished this line (running training) or was killed mid-line.
      run.warnings.push_back("line " + std::to_string(line) + ": incomplete last line (" +
                             std::to_string(text.size() - pos) + " bytes, no newline) skipped");
      ++run.skipped_lines;
      break;
    }
    const std::string_view sv(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (sv.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    try {
      detail::check_json_depth(sv);  // the frame's copies of diagnostics/data recurse per level
      const json j = json::parse(sv.begin(), sv.end());
      Frame f = parse_frame(j);
      f.line = line;
      run.frames.push_back(std::move(f));
    } catch (const std::exception& e) {  // json::parse_error or Error: skip the line, keep the run
      std::string why = e.what();
      if (why.size() > 160) why = why.substr(0, 160) + "...";
      run.warnings.push_back("line " + std::to_string(line) + ": skipped: " + why);
      ++run.skipped_lines;
    }
  }
}

RunData read_run(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw Error("run directory '" + dir + "' not found");
  RunData run;
  run.dir = dir;
  const std::string ni = dir + "/node_index.json";
  run.layout = parse_node_layout(detail::parse_untrusted_json(read_file(ni), ni), ni);
  parse_frames_text(read_file(dir + "/frames.jsonl"), run);
  for (const auto& w : run.warnings) logger()->warn("{}/frames.jsonl: {}", dir, w);
  for (const auto& f : run.frames)
    if (f.is_embedding() && f.window_units != run.layout.units)
      logger()->warn("{}/frames.jsonl line {}: window.units {} differs from node_index units {}", dir, f.line,
                     f.window_units, run.layout.units);
  return run;
}

void load_coords(const RunData& run, Frame& f) {
  if (!f.is_embedding() || f.coords_loaded()) return;
  const std::string& rel = f.coords_file;
  const std::string where = "frame " + std::to_string(f.frame) + " coords_file '" + rel + "'";
  if (rel.empty()) throw Error(where + ": no coordinates");
  // The path comes from the frame: keep it inside the run directory.
  if (rel[0] == '/' || rel.find('\\') != std::string::npos || rel.find('\0') != std::string::npos)
    throw Error(where + ": must be a relative path inside the run directory");
  std::stringstream parts(rel);
  for (std::string part; std::getline(parts, part, '/');)
    if (part == "..") throw Error(where + ": '..' is not allowed");
  const std::string path = run.dir + "/" + rel;
  // A symbolic link in frames/ (or a linked frames/ folder) could still lead anywhere: the
  // resolved sidecar must lie under the resolved run directory.
  int err = 0;
  const auto resolve = [&err](const std::string& p) {
    std::unique_ptr<char, decltype(&std::free)> r(::realpath(p.c_str(), nullptr), &std::free);
    if (!r) err = errno;
    return r ? std::string(r.get()) : std::string();
  };
  const std::string real_dir = resolve(run.dir);
  if (real_dir.empty()) throw Error("run directory '" + run.dir + "': " + std::strerror(err));
  const std::string real = resolve(path);
  if (real.empty()) throw Error(where + ": cannot read (" + std::strerror(err) + ")");
  const std::string inside = real_dir == "/" ? real_dir : real_dir + "/";
  if (real.compare(0, inside.size(), inside) != 0)
    throw Error(where + ": resolves to '" + real + "', outside the run directory '" + real_dir + "'");
  const std::size_t n = static_cast<std::size_t>(f.n_nodes) * static_cast<std::size_t>(f.n_components);
  // Size and kind checked before reading: a FIFO would block, a huge file would be read whole.
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0) throw Error(where + ": cannot read (" + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode)) throw Error(where + ": not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) != n * 4)
    throw Error(where + ": " + std::to_string(st.st_size) + " bytes, expected " + std::to_string(n * 4) +
                " (n_nodes x n_components float32)");
  const std::string bytes = read_file(real);
  if (bytes.size() != n * 4)  // changed since the stat (a writer still at work)
    throw Error(where + ": " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(n * 4) +
                " (n_nodes x n_components float32)");
  f.coords.resize(n);
  // Little-endian float32 (the "<f4" dtype); every supported target is little-endian.
  std::memcpy(f.coords.data(), bytes.data(), bytes.size());
}

std::vector<const Frame*> RunData::embeddings() const {
  std::vector<const Frame*> out;
  for (const auto& f : frames)
    if (f.is_embedding()) out.push_back(&f);
  return out;
}

std::int64_t RunData::min_epoch() const {
  std::int64_t m = std::numeric_limits<std::int64_t>::max();
  for (const auto* f : embeddings())
    for (auto e : f->window_epochs) m = std::min(m, e);
  return m == std::numeric_limits<std::int64_t>::max() ? 0 : m;
}

std::int64_t RunData::max_epoch() const {
  std::int64_t m = std::numeric_limits<std::int64_t>::min();
  for (const auto* f : embeddings())
    for (auto e : f->window_epochs) m = std::max(m, e);
  return m == std::numeric_limits<std::int64_t>::min() ? 0 : m;
}

std::vector<std::size_t> select_frames(const RunData& run, const std::string& spec) {
  std::vector<std::size_t> emb;
  for (std::size_t i = 0; i < run.frames.size(); ++i)
    if (run.frames[i].is_embedding()) emb.push_back(i);
  if (emb.empty()) throw Error(run.dir + ": no embedding frames");
  if (spec == "all") return emb;
  if (spec == "last" || spec.empty()) return {emb.back()};
  if (spec == "first") return {emb.front()};
  const bool by_epoch = spec.rfind("e:", 0) == 0;
  std::stringstream ss(by_epoch ? spec.substr(2) : spec);
  std::vector<std::size_t> out;
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0')
      throw Error("frame selection '" + spec + "': expected all, first, last, frame numbers '3,5' or epochs 'e:2,4'");
    std::size_t found = run.frames.size();
    for (std::size_t i : emb)  // by epoch: the last frame whose newest epoch is v
      if ((by_epoch ? run.frames[i].epoch : run.frames[i].frame) == v) found = i;
    if (found == run.frames.size())
      throw Error(std::string("no embedding frame with ") + (by_epoch ? "epoch " : "frame number ") + item);
    out.push_back(found);
  }
  return out;
}

}  // namespace mmphate
