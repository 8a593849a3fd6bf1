#include "run_scalars.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace mmphate::view {
namespace {

using nlohmann::json;

bool finite_number(const json& v) { return v.is_number() && std::isfinite(v.get<double>()); }

// "12" -> 12; anything else (sign, spaces, overflow) -> false.
bool parse_epoch(const std::string& s, std::int64_t& out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

std::string describe(const std::string& tag) {
  if (tag == "phase/code")
    return "mmphate phase label of each epoch (diagnostics.phase): 0 unknown, 1 information_processing, "
           "2 compression, 3 stable. Step = epoch.";
  if (tag == "progress/global_step") return "Training step passed with the epoch's snapshot. Step = epoch.";
  if (tag.rfind("metrics/", 0) == 0)
    return "Training metric passed to Monitor::on_epoch_end (frames.jsonl metrics, coalesced_metrics). Step = epoch.";
  return "mmphate diagnostic of the epoch (docs/DIAGNOSTICS.md), computed on the frame's embedding. Step = epoch.";
}

}  // namespace

int phase_code(const std::string& label) {
  if (label == "unknown") return 0;
  if (label == "information_processing") return 1;
  if (label == "compression") return 2;
  if (label == "stable") return 3;
  return -1;
}

RunScalars run_scalars(const RunData& run) {
  RunScalars r;
  if (!run.frames.empty()) r.start_wall_time = run.frames.front().wall_time;

  // Pass 1: the wall time of each epoch's report (later reports win).
  std::map<std::int64_t, double> epoch_wall;
  for (const Frame& f : run.frames) {
    if (!f.is_embedding()) continue;
    for (std::int64_t e : f.coalesced_epochs) epoch_wall[e] = f.wall_time;
    for (const auto& [key, m] : f.coalesced_metrics.items()) {
      std::int64_t e;
      if (parse_epoch(key, e)) epoch_wall[e] = f.wall_time;
    }
    epoch_wall[f.epoch] = f.wall_time;
  }

  // Pass 2: the points, in file order (event_file keeps the last of a tag and step).
  auto add = [&](const std::string& tag, std::int64_t epoch, double fallback_wall, double v) {
    const auto w = epoch_wall.find(epoch);
    r.points.push_back({tag, epoch, w != epoch_wall.end() ? w->second : fallback_wall, v});
    if (!r.descriptions.count(tag)) r.descriptions[tag] = describe(tag);
  };
  for (const Frame& f : run.frames) {
    if (!f.is_embedding()) continue;
    const json& d = f.diagnostics;
    const json* per_epoch =
        d.contains("per_epoch") && d["per_epoch"].is_object() ? &d["per_epoch"] : nullptr;
    auto window_pos = [&](std::int64_t e) -> std::ptrdiff_t {
      for (std::size_t p = 0; p < f.window_epochs.size(); ++p)
        if (f.window_epochs[p] == e) return static_cast<std::ptrdiff_t>(p);
      return -1;
    };

    // Coalesced epochs first: they are older than the frame's own.
    for (const auto& [key, m] : f.coalesced_metrics.items()) {
      std::int64_t e;
      if (!parse_epoch(key, e) || !m.is_object()) continue;
      for (const auto& [name, v] : m.items())
        if (finite_number(v)) add("metrics/" + name, e, f.wall_time, v.get<double>());
    }
    for (std::int64_t e : f.coalesced_epochs) {
      const std::ptrdiff_t p = window_pos(e);
      if (p < 0 || !per_epoch) continue;
      for (const auto& [name, arr] : per_epoch->items())
        if (arr.is_array() && arr.size() == f.window_epochs.size() && finite_number(arr[static_cast<std::size_t>(p)]))
          add("diagnostics/" + name, e, f.wall_time, arr[static_cast<std::size_t>(p)].get<double>());
    }

    for (const auto& [name, v] : f.metrics)
      if (std::isfinite(v)) add("metrics/" + name, f.epoch, f.wall_time, v);
    if (d.contains("quantities") && d["quantities"].is_object())
      for (const auto& [name, v] : d["quantities"].items())
        if (finite_number(v)) add("diagnostics/" + name, f.epoch, f.wall_time, v.get<double>());
    add("progress/global_step", f.epoch, f.wall_time, static_cast<double>(f.global_step));

    // Phase: the labels of the whole window when the frame has them (old epochs' labels
    // settle, and the newest frame covering an epoch wins), else the newest epoch's label.
    if (d.contains("phase") && d["phase"].is_object()) {
      const json& ph = d["phase"];
      const bool aligned = ph.contains("per_epoch") && ph["per_epoch"].is_array() &&
                           ph["per_epoch"].size() == f.window_epochs.size() && !f.window_epochs.empty();
      if (aligned) {
        for (std::size_t p = 0; p < f.window_epochs.size(); ++p) {
          const json& l = ph["per_epoch"][p];
          const int code = l.is_string() ? phase_code(l.get<std::string>()) : -1;
          if (code >= 0) add("phase/code", f.window_epochs[p], f.wall_time, code);
        }
      } else if (ph.contains("label") && ph["label"].is_string()) {
        const int code = phase_code(ph["label"].get<std::string>());
        if (code >= 0) add("phase/code", f.epoch, f.wall_time, code);
      }
    }
  }
  return r;
}

}  // namespace mmphate::view
