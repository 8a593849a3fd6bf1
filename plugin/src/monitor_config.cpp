#include "mmphate/monitor_config.hpp"

#include <fstream>

#include "config_json.hpp"
#include "mmphate/error.hpp"
#include "mmphate/option_table.hpp"

namespace mmphate {
namespace {

using namespace mmphate::detail;

const std::vector<std::string> kSections{"run",     "capture",     "retention", "updater", "embedding",
                                         "frames",  "diagnostics", "phases",    "early_stopping"};

void apply_run(RunSettings& r, const nlohmann::json& j, const std::string& src) {
  check_keys(j, {"root", "name", "path"}, src);
  if (j.contains("root")) r.root = read_string(j["root"], "run.root", src);
  if (j.contains("name")) r.name = read_string(j["name"], "run.name", src);
  if (j.contains("path")) r.path = j["path"].is_null() ? "" : read_string(j["path"], "run.path", src);
}

void apply_capture(CaptureSettings& c, const nlohmann::json& j, const std::string& src) {
  check_keys(j, {"every_n_epochs", "probes_per_class", "probe_seed"}, src);
  if (j.contains("every_n_epochs")) c.every_n_epochs = read_int32(j["every_n_epochs"], "capture.every_n_epochs", src);
  if (j.contains("probes_per_class"))
    c.probes_per_class = read_int32(j["probes_per_class"], "capture.probes_per_class", src);
  if (j.contains("probe_seed")) c.probe_seed = read_uint(j["probe_seed"], "capture.probe_seed", src);
}

const char* to_string(RetentionKind k) { return k == RetentionKind::window ? "window" : "thin"; }
const char* to_string(StepSampling s) {
  return s == StepSampling::all ? "all" : s == StepSampling::stride ? "stride" : "even";
}

void apply_retention(RetentionPolicy& p, bool& save, const nlohmann::json& j, const std::string& src) {
  check_keys(j, {"policy", "max_epochs", "thin_dense", "memory_budget_mb", "step_sampling", "step_stride", "step_count",
                 "save_snapshots"},
             src);
  if (j.contains("policy")) {
    const std::string v = read_string(j["policy"], "retention.policy", src);
    if (v == "window") p.kind = RetentionKind::window;
    else if (v == "thin") p.kind = RetentionKind::thin;
    else throw Error(src + ": key 'retention.policy' = \"" + v + "\": allowed values: window, thin");
  }
  if (j.contains("max_epochs")) p.max_epochs = read_int32(j["max_epochs"], "retention.max_epochs", src);
  if (j.contains("thin_dense")) p.thin_dense = read_int32(j["thin_dense"], "retention.thin_dense", src);
  if (j.contains("memory_budget_mb")) {
    const double mb = read_number(j["memory_budget_mb"], "retention.memory_budget_mb", src);
    if (!(mb > 0)) throw type_error(src, "retention.memory_budget_mb", j["memory_budget_mb"], "a number > 0");
    p.memory_budget_bytes = static_cast<std::size_t>(mb * 1024.0 * 1024.0);
  }
  if (j.contains("step_sampling")) {
    const std::string v = read_string(j["step_sampling"], "retention.step_sampling", src);
    if (v == "all") p.step_sampling = StepSampling::all;
    else if (v == "stride") p.step_sampling = StepSampling::stride;
    else if (v == "even") p.step_sampling = StepSampling::even;
    else throw Error(src + ": key 'retention.step_sampling' = \"" + v + "\": allowed values: all, stride, even");
  }
  if (j.contains("step_stride")) p.step_stride = read_int32(j["step_stride"], "retention.step_stride", src);
  if (j.contains("step_count")) p.step_count = read_int32(j["step_count"], "retention.step_count", src);
  if (j.contains("save_snapshots")) save = read_bool(j["save_snapshots"], "retention.save_snapshots", src);
}

void apply_updater(UpdaterSettings& u, const nlohmann::json& j, const std::string& src) {
  check_keys(j, {"enabled", "incremental", "full_every", "full_below_nodes", "max_new_share", "max_eps_change",
                 "warm_mds_iter", "mds_anchor", "align", "align_sample", "knn_margin", "power_floor", "shutdown_timeout_ms",
                 "priority", "max_cpu_share"},
             src);
  IncrementalOptions& o = u.incremental;
  if (j.contains("enabled")) u.enabled = read_bool(j["enabled"], "updater.enabled", src);
  if (j.contains("incremental")) o.incremental = read_bool(j["incremental"], "updater.incremental", src);
  if (j.contains("full_every")) o.full_every = read_int32(j["full_every"], "updater.full_every", src);
  if (j.contains("full_below_nodes")) o.full_below_nodes = read_int(j["full_below_nodes"], "updater.full_below_nodes", src);
  if (j.contains("max_new_share")) o.max_new_share = read_number(j["max_new_share"], "updater.max_new_share", src);
  if (j.contains("max_eps_change")) o.max_eps_change = read_number(j["max_eps_change"], "updater.max_eps_change", src);
  if (j.contains("warm_mds_iter")) o.warm_mds_iter = read_int32(j["warm_mds_iter"], "updater.warm_mds_iter", src);
  if (j.contains("mds_anchor")) o.mds_anchor = read_number(j["mds_anchor"], "updater.mds_anchor", src);
  if (j.contains("align")) o.align = read_bool(j["align"], "updater.align", src);
  if (j.contains("align_sample")) o.align_sample = read_int(j["align_sample"], "updater.align_sample", src);
  if (j.contains("knn_margin")) o.knn_margin = read_int32(j["knn_margin"], "updater.knn_margin", src);
  if (j.contains("power_floor")) o.power_floor = read_number(j["power_floor"], "updater.power_floor", src);
  if (j.contains("shutdown_timeout_ms"))
    u.shutdown_timeout_ms = read_int32(j["shutdown_timeout_ms"], "updater.shutdown_timeout_ms", src);
  if (j.contains("max_cpu_share")) u.max_cpu_share = read_number(j["max_cpu_share"], "updater.max_cpu_share", src);
  if (j.contains("priority")) {
    u.priority = read_string(j["priority"], "updater.priority", src);
    if (u.priority != "low" && u.priority != "idle" && u.priority != "normal")
      throw Error(src + ": key 'updater.priority' = \"" + u.priority + "\": allowed values: low, idle, normal");
  }
}

void apply_embedding(Options& o, const nlohmann::json& j, const std::string& src) {
  if (!j.is_object()) throw Error(src + ": section 'embedding' must be a JSON object");
  nlohmann::json rest = j;
  if (rest.contains("preset")) {
    const std::string p = read_string(rest["preset"], "embedding.preset", src);
    const Options keep_threads = o;
    if (p == "scalable") o = MonitorConfig::default_embedding();
    else if (p == "reference") o = Options::mphate();
    else throw Error(src + ": key 'embedding.preset' = \"" + p + "\": allowed values: scalable, reference");
    o.threads = keep_threads.threads;
    rest.erase("preset");
  }
  cli::apply_options_json(o, rest, src + " (section embedding)");
}

void apply_frames(FrameSettings& f, const nlohmann::json& j, const std::string& src) {
  check_keys(j, {"file", "stdout", "decimals", "binary_above_nodes", "retry_attempts", "retry_backoff_ms"}, src);
  if (j.contains("file")) f.file = read_bool(j["file"], "frames.file", src);
  if (j.contains("stdout")) f.stdout_lines = read_bool(j["stdout"], "frames.stdout", src);
  if (j.contains("decimals")) f.decimals = read_int32(j["decimals"], "frames.decimals", src);
  if (j.contains("binary_above_nodes"))
    f.binary_above_nodes = read_int(j["binary_above_nodes"], "frames.binary_above_nodes", src);
  if (j.contains("retry_attempts")) f.retry_attempts = read_int32(j["retry_attempts"], "frames.retry_attempts", src);
  if (j.contains("retry_backoff_ms"))
    f.retry_backoff_ms = read_int32(j["retry_backoff_ms"], "frames.retry_backoff_ms", src);
}

void require(bool ok, const std::string& key, const std::string& value, const std::string& allowed) {
  require_option(ok, "monitor config", key, value, allowed);
}

}  // namespace

Options MonitorConfig::default_embedding() {
  Options o = Options::mmphate_scalable();
  o.nan_policy = NanPolicy::drop_node;
  o.threads = 1;
  return o;
}

void MonitorConfig::validate() const {
  require(run.path.empty() ? !run.root.empty() : true, "run.root", "\"\"", "a directory name");
  require(run.path.empty() ? !run.name.empty() && run.name.find('/') == std::string::npos : true, "run.name",
          "\"" + run.name + "\"", "a non-empty name without '/'");
  require(capture.every_n_epochs >= 1, "capture.every_n_epochs", std::to_string(capture.every_n_epochs), ">= 1");
  require(capture.probes_per_class >= 1, "capture.probes_per_class", std::to_string(capture.probes_per_class), ">= 1");
  require(updater.priority == "low" || updater.priority == "idle" || updater.priority == "normal", "updater.priority",
          "\"" + updater.priority + "\"", "low, idle or normal");
  require(updater.max_cpu_share > 0 && updater.max_cpu_share <= 1, "updater.max_cpu_share",
          std::to_string(updater.max_cpu_share), "in (0, 1]");
  require(updater.shutdown_timeout_ms >= 0, "updater.shutdown_timeout_ms", std::to_string(updater.shutdown_timeout_ms),
          ">= 0");
  require(frames.decimals >= 0 && frames.decimals <= 12, "frames.decimals", std::to_string(frames.decimals), "0 to 12");
  require(frames.binary_above_nodes >= 0, "frames.binary_above_nodes", std::to_string(frames.binary_above_nodes),
          ">= 0 (0: always a sidecar)");
  require(frames.retry_attempts >= 0, "frames.retry_attempts", std::to_string(frames.retry_attempts), ">= 0");
  require(frames.retry_backoff_ms >= 0, "frames.retry_backoff_ms", std::to_string(frames.retry_backoff_ms), ">= 0");
  retention.validate();
  updater.incremental.validate();
  embedding.validate();
  if (embedding.n_components != 2 && embedding.n_components != 3)
    throw Error("invalid monitor config embedding.n_components = " + std::to_string(embedding.n_components) +
                ": allowed 2 or 3 (frames are drawn)");
}

void apply_monitor_json(MonitorConfig& cfg, const nlohmann::json& config, const std::string& source) {
  check_keys(config, kSections, source);
  auto section = [&](const char* name) { return source + " (section " + name + ")"; };
  if (config.contains("run")) apply_run(cfg.run, config["run"], section("run"));
  if (config.contains("capture")) apply_capture(cfg.capture, config["capture"], section("capture"));
  if (config.contains("retention"))
    apply_retention(cfg.retention, cfg.save_snapshots, config["retention"], section("retention"));
  if (config.contains("updater")) apply_updater(cfg.updater, config["updater"], section("updater"));
  if (config.contains("embedding")) apply_embedding(cfg.embedding, config["embedding"], source);
  if (config.contains("frames")) apply_frames(cfg.frames, config["frames"], section("frames"));
  auto object_section = [&](const char* name) {
    if (!config[name].is_object()) throw Error(section(name) + ": expected a JSON object");
    return config[name];
  };
  if (config.contains("diagnostics")) cfg.diagnostics = object_section("diagnostics");
  if (config.contains("phases")) cfg.phases = object_section("phases");
  if (config.contains("early_stopping")) cfg.early_stopping = object_section("early_stopping");
  validate_from(cfg, source);
}

MonitorConfig load_monitor_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open monitor config '" + path + "'");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw Error("monitor config '" + path + "' is not valid JSON: " + e.what());
  }
  MonitorConfig cfg;
  apply_monitor_json(cfg, j, path);
  return cfg;
}

nlohmann::json monitor_config_to_json(const MonitorConfig& cfg) {
  const IncrementalOptions& o = cfg.updater.incremental;
  nlohmann::json j;
  j["run"] = {{"root", cfg.run.root}, {"name", cfg.run.name}, {"path", cfg.run.path}};
  j["capture"] = {{"every_n_epochs", cfg.capture.every_n_epochs},
                  {"probes_per_class", cfg.capture.probes_per_class},
                  {"probe_seed", cfg.capture.probe_seed}};
  j["retention"] = {{"policy", to_string(cfg.retention.kind)},
                    {"max_epochs", cfg.retention.max_epochs},
                    {"thin_dense", cfg.retention.thin_dense},
                    {"memory_budget_mb", static_cast<double>(cfg.retention.memory_budget_bytes) / (1024.0 * 1024.0)},
                    {"step_sampling", to_string(cfg.retention.step_sampling)},
                    {"step_stride", cfg.retention.step_stride},
                    {"step_count", cfg.retention.step_count},
                    {"save_snapshots", cfg.save_snapshots}};
  j["updater"] = {{"enabled", cfg.updater.enabled},
                  {"incremental", o.incremental},
                  {"full_every", o.full_every},
                  {"full_below_nodes", o.full_below_nodes},
                  {"max_new_share", o.max_new_share},
                  {"max_eps_change", o.max_eps_change},
                  {"warm_mds_iter", o.warm_mds_iter},
                  {"mds_anchor", o.mds_anchor},
                  {"align", o.align},
                  {"align_sample", o.align_sample},
                  {"knn_margin", o.knn_margin},
                  {"power_floor", o.power_floor},
                  {"shutdown_timeout_ms", cfg.updater.shutdown_timeout_ms},
                  {"priority", cfg.updater.priority},
                  {"max_cpu_share", cfg.updater.max_cpu_share}};
  j["embedding"] = cli::options_to_json(cfg.embedding);
  j["frames"] = {{"file", cfg.frames.file},
                 {"stdout", cfg.frames.stdout_lines},
                 {"decimals", cfg.frames.decimals},
                 {"binary_above_nodes", cfg.frames.binary_above_nodes},
                 {"retry_attempts", cfg.frames.retry_attempts},
                 {"retry_backoff_ms", cfg.frames.retry_backoff_ms}};
  j["diagnostics"] = cfg.diagnostics;
  j["phases"] = cfg.phases;
  j["early_stopping"] = cfg.early_stopping;
  return j;
}

}  // namespace mmphate
