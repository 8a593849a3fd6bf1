// Fuzz harness of the monitor config reader (plugin/src/monitor/config.cpp): a config file
// read and validated by load_monitor_config (its diagnostics / phases / early_stopping
// sections typed and validated there too), and the config.json a run directory gets
// (monitor_config_to_json) read back, which must give the same config.
#include "fuzz.hpp"
#include "diagnostics/frame_diagnostics.hpp"
#include "diagnostics/early_stopping.hpp"
#include "mmphate/error.hpp"
#include "mmphate/monitor/config.hpp"
#include "diagnostics/phase_detector.hpp"

namespace mmphate::fuzz {
namespace {

std::vector<std::string> seeds() {
  std::vector<std::string> s;
  for (const char* name : {"monitor_default.json", "monitor_reference.json", "monitor_area2_bump.json",
                           "monitor_uci_har_3d.json"})
    s.push_back(read_file(std::string(MMPHATE_SOURCE_DIR) + "/configs/" + name));
  s.push_back(monitor_config_to_json(MonitorConfig{}).dump());
  s.push_back(R"({"run": {"path": "/tmp/x"}, "retention": {"policy": "thin", "thin_dense": 4, "step_sampling": "even",)"
              R"( "step_count": 3}, "diagnostics": {"estimator": "knn", "knn_k": 3, "histogram_range": [0, 1]},)"
              R"( "phases": {"enabled": true, "window": 3, "patience": 2}, "early_stopping": {"enabled": true,)"
              R"( "monitor": "loss", "mode": "min", "baseline": null, "patience": 2}})");
  return s;
}

void run(const std::string& input, const std::string& scratch) {
  const std::string path = scratch + "/monitor.json";
  write_file(path, input);
  const MonitorConfig cfg = load_monitor_config(path);
  // The typed option sections are validated at load: what the Monitor's constructor checks
  // again must pass, and a section read alone must give the same options.
  try {
    cfg.diagnostics.validate();
    cfg.phases.validate();
    cfg.early_stopping.validate();
  } catch (const Error& err) {
    throw Broken(std::string("load_monitor_config accepted invalid options: ") + err.what());
  }
  DiagnosticsOptions d;
  apply_diagnostics_json(d, to_json(cfg.diagnostics), "diagnostics");
  PhaseDetectorOptions p;
  apply_phase_detector_json(p, to_json(cfg.phases), "phases");
  EarlyStoppingOptions e;
  apply_early_stopping_json(e, to_json(cfg.early_stopping), "early_stopping");
  if (to_json(d) != to_json(cfg.diagnostics) || to_json(p) != to_json(cfg.phases) ||
      to_json(e) != to_json(cfg.early_stopping))
    throw Broken("an option section does not round-trip on its own");

  const nlohmann::json j = monitor_config_to_json(cfg);
  MonitorConfig back;
  try {
    apply_monitor_json(back, j, "round trip");
  } catch (const Error& err) {
    throw Broken(std::string("the config.json of a valid config is refused: ") + err.what());
  }
  if (monitor_config_to_json(back) != j) throw Broken("monitor_config_to_json does not round-trip: " + j.dump());
}

}  // namespace

const Target& target() {
  static const Target t{"monitor_config", seeds, run, {"\"run\"", "\"embedding\"", "\"preset\"", ": ", ", "}, true, nullptr, 2000};
  return t;
}

}  // namespace mmphate::fuzz
