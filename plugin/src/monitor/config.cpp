#include "mmphate/monitor/config.hpp"

#include <fstream>
#include <functional>
#include <iterator>
#include <utility>
#include <vector>

#include "util/config_json.hpp"
#include "mmphate/error.hpp"

namespace mmphate {
namespace {

using namespace mmphate::detail;

constexpr const char* kWhat = "monitor config";

const KeyTable<RunSettings>& run_keys() {
  using S = RunSettings;
  static const KeyTable<S>& t = *new KeyTable<S>(KeyTable<S>(kWhat)
      .value("root", &S::root, [](const S& s, const std::string& v) { return !s.path.empty() || !v.empty(); },
             "a directory name")
      .value("name", &S::name,
             [](const S& s, const std::string& v) {
               return !s.path.empty() || (!v.empty() && v.find('/') == std::string::npos);
             },
             "a non-empty name without '/'")
      .custom({"path", "",
               [](S& s, const nlohmann::json& v, const std::string& path, const std::string& src) {
                 s.path = v.is_null() ? "" : read_string(v, path, src);
               },
               [](const S& s) { return nlohmann::json(s.path); }, nullptr, nullptr, "", nullptr}));
  return t;
}

const KeyTable<CaptureSettings>& capture_keys() {
  using S = CaptureSettings;
  static const KeyTable<S>& t = *new KeyTable<S>(KeyTable<S>(kWhat)
      .value("every_n_epochs", &S::every_n_epochs, at_least(1), ">= 1")
      .value("probes_per_class", &S::probes_per_class, at_least(1), ">= 1")
      .value("fail_fast", &S::fail_fast)
      .value("probe_seed", &S::probe_seed));
  return t;
}

// Over the whole config: save_snapshots is a MonitorConfig field. The ranges of the retention
// policy are RetentionPolicy::validate()'s (snapshot_store.cpp).
const KeyTable<MonitorConfig>& retention_keys() {
  using S = MonitorConfig;
  static const KeyTable<S>& t = *new KeyTable<S>(KeyTable<S>(kWhat)
      .choice("policy", [](auto& c) -> auto& { return c.retention.kind; },
              {{"window", RetentionKind::window}, {"thin", RetentionKind::thin}})
      .value("max_epochs", [](auto& c) -> auto& { return c.retention.max_epochs; })
      .value("thin_dense", [](auto& c) -> auto& { return c.retention.thin_dense; })
      .custom({"memory_budget_mb", "",
               [](S& c, const nlohmann::json& v, const std::string& path, const std::string& src) {
                 const double mb = read_number(v, path, src);
                 // Bounded above: a larger value does not fit size_t bytes (the cast was UB).
                 if (!(mb > 0 && mb <= 1e12)) throw type_error(src, path, v, "a number > 0 and <= 1e12");
                 c.retention.memory_budget_bytes = static_cast<std::size_t>(mb * 1024.0 * 1024.0);
               },
               [](const S& c) {
                 return nlohmann::json(static_cast<double>(c.retention.memory_budget_bytes) / (1024.0 * 1024.0));
               },
               nullptr, nullptr, "", nullptr})
      .choice("step_sampling", [](auto& c) -> auto& { return c.retention.step_sampling; },
              {{"auto", StepSampling::automatic}, {"all", StepSampling::all}, {"stride", StepSampling::stride},
               {"even", StepSampling::even}})
      .value("step_stride", [](auto& c) -> auto& { return c.retention.step_stride; })
      .value("step_count", [](auto& c) -> auto& { return c.retention.step_count; })
      .value("save_snapshots", &S::save_snapshots));
  return t;
}

// The incremental options' ranges are IncrementalOptions::validate()'s (incremental/embedder.cpp).
#define INCREMENTAL(field) [](auto& u) -> auto& { return u.incremental.field; }

const KeyTable<UpdaterSettings>& updater_keys() {
  using S = UpdaterSettings;
  static const KeyTable<S>& t = *new KeyTable<S>(KeyTable<S>(kWhat)
      .value("enabled", &S::enabled)
      .value("incremental", INCREMENTAL(incremental))
      .value("full_every", INCREMENTAL(full_every))
      .value("full_below_nodes", INCREMENTAL(full_below_nodes))
      .value("max_new_share", INCREMENTAL(max_new_share))
      .value("max_eps_change", INCREMENTAL(max_eps_change))
      .value("warm_mds_iter", INCREMENTAL(warm_mds_iter))
      .value("mds_anchor", INCREMENTAL(mds_anchor))
      .value("max_move_full", INCREMENTAL(max_move_full))
      .value("max_move_incremental", INCREMENTAL(max_move_incremental))
      .value("move_keep_neighbours", INCREMENTAL(move_keep_neighbours))
      .value("align", INCREMENTAL(align))
      .value("warm_full", INCREMENTAL(warm_full))
      .value("max_energy_change", INCREMENTAL(max_energy_change))
      .value("align_sample", INCREMENTAL(align_sample))
      .value("knn_margin", INCREMENTAL(knn_margin))
      .value("power_floor", INCREMENTAL(power_floor))
      .value("max_t_step", INCREMENTAL(max_t_step))
      .value("join_landmarks", INCREMENTAL(join_landmarks))
      .value("shutdown_timeout_ms", &S::shutdown_timeout_ms, at_least(0), ">= 0")
      .value("handle_signals", &S::handle_signals)
      .choice("priority", &S::priority, {{"low", "low"}, {"idle", "idle"}, {"normal", "normal"}})
      .value("max_cpu_share", &S::max_cpu_share, [](double v) { return v > 0 && v <= 1; }, "in (0, 1]")
      .value("frame_budget_s", &S::frame_budget_s, between(0, 86400), "0 (no planning) to 86400"));
  return t;
}

#undef INCREMENTAL

const KeyTable<FrameSettings>& frames_keys() {
  using S = FrameSettings;
  static const KeyTable<S>& t = *new KeyTable<S>(KeyTable<S>(kWhat)
      .value("file", &S::file)
      .value("stdout", &S::stdout_lines)
      .value("decimals", &S::decimals, between(0, 12), "0 to 12")
      .value("binary_above_nodes", &S::binary_above_nodes, at_least(0), ">= 0 (0: always a sidecar)")
      // Retries run on the updater thread with a doubling wait: bounded so a frame cannot stall it for hours.
      .value("retry_attempts", &S::retry_attempts, between(0, 100), "0 to 100")
      .value("retry_backoff_ms", &S::retry_backoff_ms, between(0, 60000), "0 to 60000"));
  return t;
}

const KeyTable<ProcessSettings>& process_keys() {
  using S = ProcessSettings;
  static const KeyTable<S>& t = *new KeyTable<S>(KeyTable<S>(kWhat)
      .choice("blas_threads", &S::blas_threads, {{"torch", "torch"}, {"keep", "keep"}})
      .choice("allocator", &S::allocator, {{"keep_mapped", "keep_mapped"}, {"default", "default"}}));
  return t;
}

void read_embedding(Options& o, const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": section 'embedding' must be a JSON object");
  nlohmann::json rest = j;
  if (rest.contains("preset")) {
    const std::string p = read_string(rest["preset"], "embedding.preset", source);
    const Options keep_threads = o;
    if (p == "scalable") o = MonitorConfig::default_embedding();
    else if (p == "reference") o = Options::mphate();
    else throw Error(source + ": key 'embedding.preset' = \"" + p + "\": allowed values: scalable, reference");
    o.threads = keep_threads.threads;
    rest.erase("preset");
  }
  option_keys().read(o, rest, "embedding.", source + " (section embedding)");
}

// One section of the config file: its name (once), how it is read from JSON, checked and
// written back. Every section is a KeyTable; embedding (the engine's Options) also takes a preset.
struct Section {
  std::string name;
  std::function<void(MonitorConfig&, const nlohmann::json&, const std::string& source)> read;
  std::function<void(const MonitorConfig&)> validate;
  std::function<nlohmann::json(const MonitorConfig&)> write;
};

// The section `name` is the table `keys` over get(cfg); `extra` is the struct's own validate().
template <class T, class Get, class Extra = std::nullptr_t>
Section table_section(const char* name, const KeyTable<T>& keys, Get get, Extra extra = nullptr) {
  const std::string prefix = std::string(name) + ".";
  return Section{name,
                 [&keys, get, prefix, name](MonitorConfig& c, const nlohmann::json& j, const std::string& source) {
                   keys.read(std::invoke(get, c), j, prefix, source + " (section " + name + ")");
                 },
                 [&keys, get, prefix, extra](const MonitorConfig& c) {
                   keys.validate(std::invoke(get, c), prefix);
                   if constexpr (!std::is_null_pointer_v<Extra>) extra(std::invoke(get, c));
                 },
                 [&keys, get](const MonitorConfig& c) { return keys.write(std::invoke(get, c)); }};
}

// In file order; the first error found is reported.
const std::vector<Section>& sections() {
  using C = MonitorConfig;
  static const std::vector<Section>& s = *new std::vector<Section>{
      table_section("run", run_keys(), &C::run),
      table_section("capture", capture_keys(), &C::capture),
      table_section("retention", retention_keys(), [](auto& c) -> auto& { return c; },
                    [](const C& c) { c.retention.validate(); }),
      table_section("updater", updater_keys(), &C::updater,
                    [](const UpdaterSettings& u) { u.incremental.validate(); }),
      Section{"embedding", [](C& c, const nlohmann::json& j, const std::string& source) { read_embedding(c.embedding, j, source); },
              [](const C& c) {
                c.embedding.validate();
                if (c.embedding.n_components != 2 && c.embedding.n_components != 3)
                  throw Error("invalid monitor config embedding.n_components = " +
                              std::to_string(c.embedding.n_components) + ": allowed 2 or 3 (frames are drawn)");
              },
              [](const C& c) { return option_keys().write(c.embedding); }},
      table_section("frames", frames_keys(), &C::frames),
      table_section("diagnostics", diagnostics_keys(), &C::diagnostics),
      table_section("phases", phase_detector_keys(), &C::phases),
      table_section("early_stopping", early_stopping_keys(), &C::early_stopping),
      table_section("process", process_keys(), &C::process),
  };
  return s;
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
  for (const Section& s : sections()) s.validate(*this);
}

void apply_monitor_json(MonitorConfig& cfg, const nlohmann::json& config, const std::string& source) {
  std::vector<std::string> names;
  for (const Section& s : sections()) names.push_back(s.name);
  check_keys(config, names, source);
  for (const Section& s : sections())
    if (config.contains(s.name)) s.read(cfg, config[s.name], source);
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
  nlohmann::json j = nlohmann::json::object();
  for (const Section& s : sections()) j[s.name] = s.write(cfg);
  return j;
}

}  // namespace mmphate
