#include "mmphate/monitor_config.hpp"

#include <fstream>
#include <functional>
#include <iterator>
#include <utility>
#include <vector>

#include "config_json.hpp"
#include "mmphate/error.hpp"
#include "mmphate/option_table.hpp"

namespace mmphate {
namespace {

using namespace mmphate::detail;

const std::vector<std::string> kSections{"run",         "capture", "retention", "updater",       "embedding", "frames",
                                         "diagnostics", "phases",  "early_stopping", "process"};

// The keys of one config section, each named once: the table gives check_keys its allowed
// list (in table order) and reads every key present, with "section.key" in error messages.
class Section {
 public:
  using Reader = std::function<void(const nlohmann::json& value, const std::string& path)>;
  Section(const nlohmann::json& j, std::string name, const std::string& src) : j_(j), name_(std::move(name)), src_(src) {}

  // target = read(value, path, src), e.g. field("full_every", o.full_every, read_int32).
  template <class T, class R>
  Section& field(const char* key, T& target, R (*read)(const nlohmann::json&, const std::string&, const std::string&)) {
    const std::string& src = src_;
    return custom(key, [&target, read, &src](const nlohmann::json& v, const std::string& path) {
      target = static_cast<T>(read(v, path, src));
    });
  }
  Section& custom(const char* key, Reader read) {
    keys_.push_back(key);
    readers_.push_back(std::move(read));
    return *this;
  }
  void apply() const {
    check_keys(j_, keys_, src_);
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (j_.contains(keys_[i])) readers_[i](j_[keys_[i]], name_ + "." + keys_[i]);
  }

 private:
  const nlohmann::json& j_;
  std::string name_;
  const std::string& src_;
  std::vector<std::string> keys_;
  std::vector<Reader> readers_;
};

// A string key with a closed set of values: "a, b, c" in the error names them.
template <class T>
Section::Reader choice(T& target, const std::vector<std::pair<std::string, T>>& values, const std::string& src) {
  return [&target, values, &src](const nlohmann::json& v, const std::string& path) {
    const std::string s = read_string(v, path, src);
    std::vector<std::string> names;
    for (const auto& [name, value] : values) {
      if (name == s) {
        target = value;
        return;
      }
      names.push_back(name);
    }
    throw Error(src + ": key '" + path + "' = \"" + s + "\": allowed values: " + join_keys(names));
  };
}

void apply_run(RunSettings& r, const nlohmann::json& j, const std::string& src) {
  Section(j, "run", src)
      .field("root", r.root, read_string)
      .field("name", r.name, read_string)
      .custom("path", [&](const nlohmann::json& v, const std::string& path) {
        r.path = v.is_null() ? "" : read_string(v, path, src);
      })
      .apply();
}

void apply_capture(CaptureSettings& c, const nlohmann::json& j, const std::string& src) {
  Section(j, "capture", src)
      .field("every_n_epochs", c.every_n_epochs, read_int32)
      .field("probes_per_class", c.probes_per_class, read_int32)
      .field("fail_fast", c.fail_fast, read_bool)
      .field("probe_seed", c.probe_seed, read_uint)
      .apply();
}

const char* to_string(RetentionKind k) { return k == RetentionKind::window ? "window" : "thin"; }
const char* to_string(StepSampling s) {
  return s == StepSampling::all ? "all" : s == StepSampling::stride ? "stride" : "even";
}

void apply_retention(RetentionPolicy& p, bool& save, const nlohmann::json& j, const std::string& src) {
  Section(j, "retention", src)
      .custom("policy", choice<RetentionKind>(p.kind, {{"window", RetentionKind::window}, {"thin", RetentionKind::thin}}, src))
      .field("max_epochs", p.max_epochs, read_int32)
      .field("thin_dense", p.thin_dense, read_int32)
      .custom("memory_budget_mb",
              [&](const nlohmann::json& v, const std::string& path) {
                const double mb = read_number(v, path, src);
                // Bounded above: a larger value does not fit size_t bytes (the cast was UB).
                if (!(mb > 0 && mb <= 1e12)) throw type_error(src, path, v, "a number > 0 and <= 1e12");
                p.memory_budget_bytes = static_cast<std::size_t>(mb * 1024.0 * 1024.0);
              })
      .custom("step_sampling", choice<StepSampling>(p.step_sampling,
                                                    {{"all", StepSampling::all},
                                                     {"stride", StepSampling::stride},
                                                     {"even", StepSampling::even}},
                                                    src))
      .field("step_stride", p.step_stride, read_int32)
      .field("step_count", p.step_count, read_int32)
      .field("save_snapshots", save, read_bool)
      .apply();
}

void apply_updater(UpdaterSettings& u, const nlohmann::json& j, const std::string& src) {
  IncrementalOptions& o = u.incremental;
  Section(j, "updater", src)
      .field("enabled", u.enabled, read_bool)
      .field("incremental", o.incremental, read_bool)
      .field("full_every", o.full_every, read_int32)
      .field("full_below_nodes", o.full_below_nodes, read_int)
      .field("max_new_share", o.max_new_share, read_number)
      .field("max_eps_change", o.max_eps_change, read_number)
      .field("warm_mds_iter", o.warm_mds_iter, read_int32)
      .field("mds_anchor", o.mds_anchor, read_number)
      .field("align", o.align, read_bool)
      .field("warm_full", o.warm_full, read_bool)
      .field("max_energy_change", o.max_energy_change, read_number)
      .field("align_sample", o.align_sample, read_int)
      .field("knn_margin", o.knn_margin, read_int32)
      .field("power_floor", o.power_floor, read_number)
      .field("shutdown_timeout_ms", u.shutdown_timeout_ms, read_int32)
      .field("handle_signals", u.handle_signals, read_bool)
      .custom("priority", choice<std::string>(u.priority, {{"low", "low"}, {"idle", "idle"}, {"normal", "normal"}}, src))
      .field("max_cpu_share", u.max_cpu_share, read_number)
      .apply();
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
  Section(j, "frames", src)
      .field("file", f.file, read_bool)
      .field("stdout", f.stdout_lines, read_bool)
      .field("decimals", f.decimals, read_int32)
      .field("binary_above_nodes", f.binary_above_nodes, read_int)
      .field("retry_attempts", f.retry_attempts, read_int32)
      .field("retry_backoff_ms", f.retry_backoff_ms, read_int32)
      .apply();
}

void apply_process(ProcessSettings& p, const nlohmann::json& j, const std::string& src) {
  Section(j, "process", src)
      .custom("blas_threads", choice<std::string>(p.blas_threads, {{"torch", "torch"}, {"keep", "keep"}}, src))
      .custom("allocator",
              choice<std::string>(p.allocator, {{"keep_mapped", "keep_mapped"}, {"default", "default"}}, src))
      .apply();
}

void require(bool ok, const std::string& key, const std::string& value, const std::string& allowed) {
  require_option(ok, "monitor config", key, value, allowed);
}

}  // namespace

Options MonitorConfig::default_embedding() {
  Options o = Options::mmphate_scalable();
  o.nan_policy = NanPolicy::drop_node;
  o.threads = 1;
  // PHATE's 2000 landmarks cost 5-12 s of one core per frame on a 27k-node window, so a live
  // run got a frame for every ~6th epoch; 1000 (still ~1 per 27 nodes there) cost 0.6-2.4 s
  // (docs/PERFORMANCE.md, bench_live).
  o.n_landmark = 1000;
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
  // Retries run on the updater thread with a doubling wait: bounded so a frame cannot stall it for hours.
  require(frames.retry_attempts >= 0 && frames.retry_attempts <= 100, "frames.retry_attempts",
          std::to_string(frames.retry_attempts), "0 to 100");
  require(frames.retry_backoff_ms >= 0 && frames.retry_backoff_ms <= 60000, "frames.retry_backoff_ms",
          std::to_string(frames.retry_backoff_ms), "0 to 60000");
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
  if (config.contains("process")) apply_process(cfg.process, config["process"], section("process"));
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
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open monitor config '" + path + "'");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Depth-limited: a deeply nested value once overflowed the stack in an error message's dump().
  const nlohmann::json j = parse_untrusted_json(text, "monitor config '" + path + "'");
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
                  {"probe_seed", cfg.capture.probe_seed},
                  {"fail_fast", cfg.capture.fail_fast}};
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
                  {"warm_full", o.warm_full},
                  {"max_energy_change", o.max_energy_change},
                  {"align_sample", o.align_sample},
                  {"knn_margin", o.knn_margin},
                  {"power_floor", o.power_floor},
                  {"shutdown_timeout_ms", cfg.updater.shutdown_timeout_ms},
                  {"handle_signals", cfg.updater.handle_signals},
                  {"priority", cfg.updater.priority},
                  {"max_cpu_share", cfg.updater.max_cpu_share}};
  j["embedding"] = cli::options_to_json(cfg.embedding);
  j["frames"] = {{"file", cfg.frames.file},
                 {"stdout", cfg.frames.stdout_lines},
                 {"decimals", cfg.frames.decimals},
                 {"binary_above_nodes", cfg.frames.binary_above_nodes},
                 {"retry_attempts", cfg.frames.retry_attempts},
                 {"retry_backoff_ms", cfg.frames.retry_backoff_ms}};
  j["process"] = {{"blas_threads", cfg.process.blas_threads}, {"allocator", cfg.process.allocator}};
  j["diagnostics"] = cfg.diagnostics;
  j["phases"] = cfg.phases;
  j["early_stopping"] = cfg.early_stopping;
  return j;
}

}  // namespace mmphate
