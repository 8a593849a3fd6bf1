// The live monitor without torch: snapshots pushed as a training loop would, frames written
// in the background to the run directory and callbacks, coalescing when snapshots outpace the
// updater, config errors that name the key, sinks that fail without throwing, bad snapshots
// and NaN units that become events instead of crashes, early stopping, bounded shutdown.
// The run written by MonitorRun.WritesValidFrames is validated against docs/frame.schema.json
// by the CTest test monitor.schema (tools/validate_frames.py).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "diagnostics/early_stopping.hpp"
#include "diagnostics/frame_diagnostics.hpp"
#include "diagnostics/phase_detector.hpp"
#include "monitor/frame_writer.hpp"
#include "monitor/run_directory.hpp"
#include "mmphate/log.hpp"
#include "mmphate/monitor/monitor.hpp"
#include "testing/synthetic.hpp"
#include "testing/synthetic_phases.hpp"
#include "test_util.hpp"
#include "testing/store_traces.hpp"

using namespace mmphate;
namespace fs = std::filesystem;

namespace {

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new mmphate::testing::SingleThreaded);

constexpr Index kSteps = 6, kUnits = 8, kProbes = 12;

// Epoch e of a drifting trace as the recorder would push it.
Snapshot snapshot(Index e, std::uint64_t seed = 3) {
  static const RowMatrix trace = make_multislice_trace(40 * kSteps, kUnits, kProbes, 2, seed);
  Snapshot s = snapshot_from_trace(trace, e, kSteps, kUnits);
  s.global_step = 100 * (e + 1);
  s.layer = "rnn";
  return s;
}

MonitorConfig small_config(const std::string& path) {
  MonitorConfig cfg;
  cfg.run.path = path;
  cfg.retention.max_epochs = 5;
  cfg.embedding.interslice_knn = 5;
  cfg.embedding.interslice_edges = 8;
  cfg.embedding.n_landmark = 100;
  cfg.embedding.n_svd = 10;
  cfg.updater.incremental.full_below_nodes = 0;
  cfg.updater.shutdown_timeout_ms = 20000;
  cfg.diagnostics.score_queries = 50;
  return cfg;
}

std::string test_dir(const std::string& name) {
  const fs::path p = fs::path(MMPHATE_BINARY_DIR) / "test_runs" / name;
  fs::remove_all(p);
  return p.string();
}

std::vector<nlohmann::json> read_frames(const std::string& dir) {
  std::ifstream in(dir + "/frames.jsonl");
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::vector<nlohmann::json> of_type(const std::vector<nlohmann::json>& frames, const std::string& type,
                                    const std::string& event = "") {
  std::vector<nlohmann::json> out;
  for (const auto& f : frames)
    if (f["type"] == type && (event.empty() || f.value("event", "") == event)) out.push_back(f);
  return out;
}

std::string config_error(const nlohmann::json& j) {
  return mmphate::testing::error_of([&] {
    MonitorConfig cfg;
    apply_monitor_json(cfg, j, "cfg.json");
  });
}

}  // namespace

TEST(MonitorRun, WritesValidFrames) {
  const char* override_dir = std::getenv("MMPHATE_TEST_RUN_DIR");  // set by the monitor.schema test
  const std::string dir = override_dir ? override_dir : test_dir("monitor_core");
  if (override_dir) fs::remove_all(dir);
  std::vector<nlohmann::json> seen;
  std::mutex seen_mutex;
  {
    Monitor monitor(small_config(dir));
    monitor.add_callback([&](const nlohmann::json& f) {
      std::lock_guard<std::mutex> lock(seen_mutex);
      seen.push_back(f);
    });
    std::vector<std::int64_t> labels;
    for (Index p = 0; p < kProbes; ++p) labels.push_back(p % 3);
    monitor.set_recorder([&monitor](std::int64_t epoch, std::int64_t) { monitor.push(snapshot(epoch)); }, labels);
    for (int e = 0; e < 8; ++e) {
      monitor.on_epoch_end(e, {{"train_loss", 1.0 / (e + 1)}, {"val_loss", std::nan("")}}, 100 * (e + 1));
      ASSERT_TRUE(monitor.flush(std::chrono::seconds(60)));  // one frame per epoch here
    }
    EXPECT_EQ(monitor.stats().frames, 8);
    EXPECT_EQ(monitor.stats().failed_frames, 0);
    EXPECT_EQ(monitor.stats().snapshots, 8);  // a recorder calling push() counts once (was 16)
  }
  const auto frames = read_frames(dir);
  const auto emb = of_type(frames, "embedding");
  ASSERT_EQ(emb.size(), 8u);
  EXPECT_EQ(of_type(frames, "event", "started").size(), 1u);
  const auto finished = of_type(frames, "event", "finished");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0]["data"]["frames"], 8);
  EXPECT_EQ(finished[0]["data"]["lines_lost"], 0);  // what the file sink gave up, reported
  EXPECT_EQ(finished[0]["data"]["lines_rolled_back"], 0);
  EXPECT_EQ(frames.back()["event"], "finished");
  // Window retention: 5 epochs at most, the oldest leave.
  EXPECT_EQ(emb.back()["window"]["epochs"], nlohmann::json({3, 4, 5, 6, 7}));
  EXPECT_EQ(emb.back()["n_nodes"], 5 * kSteps * kUnits);
  EXPECT_EQ(emb.back()["coords"].size(), static_cast<std::size_t>(5 * kSteps * kUnits * 2));
  EXPECT_EQ(emb.back()["metrics"]["train_loss"].get<double>(), 1.0 / 8);
  EXPECT_TRUE(emb.back()["metrics"]["val_loss"].is_null());  // NaN metric -> null
  EXPECT_EQ(emb.back()["global_step"], 800);
  EXPECT_EQ(emb.front()["update"], "full");
  int incremental = 0;
  for (const auto& f : emb) incremental += f["update"] == "incremental";
  EXPECT_GT(incremental, 3);
  for (std::size_t i = 1; i < emb.size(); ++i) {
    EXPECT_GT(emb[i]["frame"].get<int>(), emb[i - 1]["frame"].get<int>());
    EXPECT_EQ(emb[i]["alignment"]["method"], "procrustes");
  }
  for (const auto& c : emb.back()["most_active_class"]) EXPECT_TRUE(c.get<int>() >= 0 && c.get<int>() < 3);
  EXPECT_TRUE(emb.back()["diagnostics"].is_object());
  EXPECT_FALSE(emb.back()["diagnostics"].contains("error"));
  // Early stopping's strict check knows every quantity a frame can carry.
  const auto& names = frame_quantity_names();
  ASSERT_GT(emb.back()["diagnostics"]["quantities"].size(), 3u);
  for (const auto& f : emb)
    for (const auto& q : f["diagnostics"]["quantities"].items())
      EXPECT_NE(std::find(names.begin(), names.end(), q.key()), names.end()) << q.key();
  // The callback saw every line written after it was added (all but `started`).
  EXPECT_EQ(seen.size(), frames.size() - 1);
  // The run directory: config and node index.
  const auto config = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  EXPECT_EQ(config["retention"]["max_epochs"], 5);
  // Every effective setting of the option sections, not the object the program gave.
  EXPECT_EQ(config["diagnostics"]["score_queries"], 50);
  EXPECT_EQ(config["diagnostics"]["knn_k"], 3);
  EXPECT_EQ(config["phases"]["window"], 6);
  EXPECT_EQ(config["early_stopping"]["monitor"], "val_loss");
  EXPECT_EQ(config["early_stopping"]["enabled"], false);
  EXPECT_EQ(monitor_config_to_json(load_monitor_config(dir + "/config.json")), config);
  const auto index = nlohmann::json::parse(std::ifstream(dir + "/node_index.json"));
  EXPECT_EQ(index["units"], kUnits);
  EXPECT_EQ(index["steps"], kSteps);
  EXPECT_EQ(index["classes"], 3);
  EXPECT_EQ(index["units_meta"][0]["layer"], "rnn");
}

TEST(MonitorRun, CoalescesWhenTrainingOutpacesTheUpdater) {
  const std::string dir = test_dir("monitor_coalesce");
  MonitorConfig cfg = small_config(dir);
  cfg.retention.max_epochs = 20;
  {
    Monitor monitor(cfg);
    for (int e = 0; e < 12; ++e) ASSERT_TRUE(monitor.push(snapshot(e)));  // no waiting: faster than any frame
    ASSERT_TRUE(monitor.flush(std::chrono::seconds(60)));
    const MonitorStats st = monitor.stats();
    EXPECT_LT(st.frames, 12);
    EXPECT_GT(st.coalesced_epochs, 0);
    EXPECT_EQ(st.snapshots, 12);
  }
  const auto emb = of_type(read_frames(dir), "embedding");
  ASSERT_FALSE(emb.empty());
  EXPECT_EQ(emb.back()["epoch"], 11);  // the newest state always gets its frame
  bool listed = false;
  for (const auto& f : emb) listed = listed || f.contains("coalesced_epochs");
  EXPECT_TRUE(listed);
}

TEST(MonitorRun, BadSnapshotsAndNaNUnitsBecomeEventsNotCrashes) {
  const std::string dir = test_dir("monitor_bad_input");
  {
    Monitor monitor(small_config(dir));
    ASSERT_TRUE(monitor.push(snapshot(0)));
    Snapshot nan_unit = snapshot(1);
    for (Index p = 0; p < kProbes; ++p) nan_unit.values[static_cast<std::size_t>((2 * kUnits + 3) * kProbes + p)] = NAN;
    ASSERT_TRUE(monitor.push(std::move(nan_unit)));  // drop-node: that node leaves the graph
    Snapshot wrong = snapshot(2);
    wrong.probes = kProbes - 1;
    wrong.values.resize(static_cast<std::size_t>(kSteps * kUnits * (kProbes - 1)));
    EXPECT_FALSE(monitor.push(std::move(wrong)));  // a changed probe set is refused, loudly
    Snapshot empty = snapshot(3);
    empty.values.clear();
    EXPECT_FALSE(monitor.push(std::move(empty)));
    // A recorder that throws does not reach the training loop.
    monitor.set_recorder([](std::int64_t, std::int64_t) { throw std::runtime_error("CUDA out of memory"); }, {});
    EXPECT_NO_THROW(monitor.on_epoch_end(4, {}));
    ASSERT_TRUE(monitor.flush(std::chrono::seconds(60)));
    EXPECT_EQ(monitor.stats().capture_failures, 3);
  }
  const auto frames = read_frames(dir);
  const auto failed = of_type(frames, "event", "frame_failed");
  ASSERT_EQ(failed.size(), 3u);
  EXPECT_NE(failed[0]["message"].get<std::string>().find("snapshot refused"), std::string::npos);
  EXPECT_NE(failed[2]["message"].get<std::string>().find("CUDA out of memory"), std::string::npos);
  const auto emb = of_type(frames, "embedding");
  ASSERT_FALSE(emb.empty());
  const auto& last = emb.back();
  EXPECT_EQ(last["n_present"].get<int>(), last["n_nodes"].get<int>() - 1);
  // The dropped node (epoch 1, step 2, unit 3) has null coordinates.
  const int node = (1 * kSteps + 2) * kUnits + 3;
  EXPECT_TRUE(last["coords"][2 * node].is_null());
  EXPECT_EQ(last["most_active_class"][node], -1);
}

TEST(MonitorRun, EarlyStoppingOnAMetricStopsAndSaysWhy) {
  const std::string dir = test_dir("monitor_early_stop");
  MonitorConfig cfg = small_config(dir);
  cfg.early_stopping.enabled = true;
  cfg.early_stopping.monitor = "val_loss";
  cfg.early_stopping.patience = 2;
  {
    Monitor monitor(cfg);
    const double losses[] = {1.0, 0.8, 0.7, 0.75, 0.72, 0.71};
    int stopped_at = -1;
    for (int e = 0; e < 6; ++e) {
      monitor.on_epoch_end(e, {{"val_loss", losses[e]}});
      if (monitor.should_stop()) {
        stopped_at = e;
        break;
      }
    }
    EXPECT_EQ(stopped_at, 4);  // best 0.7 at epoch 2, two checks without improvement
    EXPECT_FALSE(monitor.stop_reason().empty());
  }
  const auto stops = of_type(read_frames(dir), "event", "early_stop");
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0]["epoch"], 4);
}

// Found by fuzzing (tests/fuzz): a 40 000-deep value overflowed the stack (the error message
// dumped it), a budget of 1e300 MB was cast to size_t (UB), and a huge value made a huge message.
// retention.step_sampling "auto" (the default) with a window above updater.frame_budget_s: the
// first snapshot decides evenly spaced steps that fit, said in a window_planned event and in
// config.json; every snapshot (custom recorders push to the store directly) keeps those steps,
// first and last included. An explicit "all" keeps every step whatever the budget.
TEST(MonitorRun, WindowAboveTheFrameBudgetKeepsEvenlySpacedSteps) {
  for (const bool automatic : {true, false}) {
    const std::string dir = test_dir(automatic ? "window_plan_auto" : "window_plan_all");
    MonitorConfig cfg = small_config(dir);
    cfg.retention.max_epochs = 64;
    // The cost model: 64 epochs x 6 steps x 8 units x (8 units + 8 edges) x 160 ns = 7.9 ms a frame.
    cfg.updater.frame_budget_s = 0.004;  // about half: 3 of the 6 steps
    if (!automatic) cfg.retention.step_sampling = StepSampling::all;
    {
      Monitor monitor(cfg);
      monitor.set_recorder([&monitor](std::int64_t epoch, std::int64_t) { monitor.store().push(snapshot(epoch)); }, {});
      for (int e = 0; e < 3; ++e) monitor.on_epoch_end(e, {}, 100 * (e + 1));
      ASSERT_TRUE(monitor.flush(std::chrono::seconds(60)));
      const auto view = monitor.store().view();
      ASSERT_EQ(view.snapshots.size(), 3u);
      for (const auto& sp : view.snapshots) {
        if (!automatic) {
          EXPECT_EQ(sp->steps, kSteps);
          continue;
        }
        EXPECT_GE(sp->steps, 2);
        EXPECT_LT(sp->steps, kSteps);
        EXPECT_EQ(sp->step_index.front(), 0);
        EXPECT_EQ(sp->step_index.back(), kSteps - 1);
      }
    }
    const auto frames = read_frames(dir);
    const auto planned = of_type(frames, "event", "window_planned");
    std::ifstream in(dir + "/config.json");
    const nlohmann::json written = nlohmann::json::parse(in);
    if (!automatic) {
      EXPECT_TRUE(planned.empty());
      EXPECT_EQ(written["retention"]["step_sampling"], "all");
      continue;
    }
    ASSERT_EQ(planned.size(), 1u);
    const Index kept = planned[0]["data"]["kept_steps"].get<Index>();
    EXPECT_NE(planned[0]["message"].get<std::string>().find("updater.frame_budget_s"), std::string::npos);
    EXPECT_LE(planned[0]["data"]["frame_s_estimate"].get<double>(), 0.004);
    EXPECT_EQ(written["retention"]["step_sampling"], "even");
    EXPECT_EQ(written["retention"]["step_count"], kept);
    const auto emb = of_type(frames, "embedding");
    ASSERT_FALSE(emb.empty());
    EXPECT_EQ(emb.back()["n_nodes"].get<Index>(), static_cast<Index>(emb.back()["window"]["epochs"].size()) * kept * kUnits);
  }
}

TEST(MonitorConfig, HostileFilesAreCleanErrors) {
  const fs::path dir = test_dir("monitor_hostile_config");
  fs::create_directories(dir);
  const std::string path = (dir / "config.json").string();
  auto file_error = [&](const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return mmphate::testing::error_of([&] { load_monitor_config(path); });
  };
  std::string e = file_error(R"({"updater": {"full_below_nodes": )" + std::string(40000, '[') +
                             std::string(40000, ']') + "}}");
  EXPECT_NE(e.find("nested deeper than 100 levels"), std::string::npos) << e;
  e = file_error(R"({"retention": {"memory_budget_mb": 1e300}})");
  EXPECT_NE(e.find("memory_budget_mb"), std::string::npos) << e;
  EXPECT_NE(e.find("<= 1e12"), std::string::npos) << e;
  e = file_error(R"({"frames": {"decimals": ")" + std::string(100000, 'x') + "\"}}");
  EXPECT_NE(e.find("frames.decimals"), std::string::npos) << e;
  EXPECT_LT(e.size(), 400u) << "the value is cut in the message";
  e = file_error(R"({"frames": {"decimals": -1e400}})");
  EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;
  fs::remove_all(dir);
}

TEST(MonitorConfig, ErrorsNameTheKeyAndWhatIsAllowed) {
  std::string e = config_error({{"updater", {{"full_evry", 3}}}});
  EXPECT_NE(e.find("full_evry"), std::string::npos) << e;
  EXPECT_NE(e.find("full_every"), std::string::npos) << e;  // the allowed keys are listed
  e = config_error({{"retenton", {}}});
  EXPECT_NE(e.find("retenton"), std::string::npos) << e;
  EXPECT_NE(e.find("retention"), std::string::npos) << e;
  e = config_error({{"retention", {{"policy", "ring"}}}});
  EXPECT_NE(e.find("window, thin"), std::string::npos) << e;
  e = config_error({{"frames", {{"decimals", "four"}}}});
  EXPECT_NE(e.find("frames.decimals"), std::string::npos) << e;
  e = config_error({{"embedding", {{"knn_method", "fast"}}}});
  EXPECT_NE(e.find("knn_method"), std::string::npos) << e;
  e = config_error({{"embedding", {{"n_components", 4}}}});
  EXPECT_NE(e.find("n_components"), std::string::npos) << e;
  e = config_error({{"updater", {{"max_new_share", 2.0}}}});
  EXPECT_NE(e.find("max_new_share"), std::string::npos) << e;
  e = config_error({{"updater", {{"priority", "realtime"}}}});
  EXPECT_NE(e.find("low, idle, normal"), std::string::npos) << e;
  e = config_error({{"updater", {{"max_cpu_share", 0}}}});
  EXPECT_NE(e.find("max_cpu_share"), std::string::npos) << e;
  e = config_error({{"updater", {{"mds_anchor", -0.5}}}});
  EXPECT_NE(e.find("mds_anchor = -0.5"), std::string::npos) << e;
  EXPECT_NE(e.find("[0, 100]"), std::string::npos) << e;
  // Size-like updater options have upper bounds (an absurd value is an error, not hours).
  for (const char* key : {"knn_margin", "warm_mds_iter", "full_every"}) {
    e = config_error({{"updater", {{key, 2000000000}}}});
    EXPECT_NE(e.find(key), std::string::npos) << e;
    EXPECT_NE(e.find("must be in ["), std::string::npos) << e;
  }
  e = config_error({{"process", {{"blas_threads", "all"}}}});
  EXPECT_NE(e.find("process.blas_threads"), std::string::npos) << e;
  EXPECT_NE(e.find("torch, keep"), std::string::npos) << e;
  e = config_error({{"process", {{"allocater", "default"}}}});
  EXPECT_NE(e.find("allocator"), std::string::npos) << e;
  e = config_error({{"updater", {{"handle_signals", "yes"}}}});
  EXPECT_NE(e.find("handle_signals"), std::string::npos) << e;
  e = config_error({{"capture", {{"every_n_epochs", 0}}}});
  EXPECT_NE(e.find("every_n_epochs"), std::string::npos) << e;
  // The diagnostics sections are typed: a typo is refused when the config is read (it used to
  // pass until the monitor started), a bad value set in code when the monitor starts.
  e = config_error({{"early_stopping", {{"patiense", 3}}}});
  EXPECT_NE(e.find("patiense"), std::string::npos) << e;
  MonitorConfig cfg = small_config(test_dir("monitor_bad_diag"));
  cfg.early_stopping.patience = -1;
  e = mmphate::testing::error_of([&] { Monitor m(cfg); });
  EXPECT_NE(e.find("early_stopping.patience = -1"), std::string::npos) << e;
  // Every shipped config loads, and its round trip through config.json is stable.
  int shipped_configs = 0;
  for (const auto& entry : fs::directory_iterator(std::string(MMPHATE_SOURCE_DIR) + "/configs")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("monitor_", 0) != 0) continue;
    SCOPED_TRACE(name);
    ++shipped_configs;
    const MonitorConfig shipped = load_monitor_config(entry.path().string());
    MonitorConfig again;
    apply_monitor_json(again, monitor_config_to_json(shipped), "round trip");
    EXPECT_EQ(monitor_config_to_json(again), monitor_config_to_json(shipped));
  }
  EXPECT_GE(shipped_configs, 4);
  const MonitorConfig three_d =
      load_monitor_config(std::string(MMPHATE_SOURCE_DIR) + "/configs/monitor_uci_har_3d.json");
  EXPECT_EQ(three_d.embedding.n_components, 3);
  EXPECT_EQ(three_d.retention.kind, RetentionKind::thin);
}

// diagnostics, phases and early_stopping are read with the same key tables as the other
// sections: a typo or a bad value is an error of load_monitor_config naming the full key.
TEST(MonitorConfig, OptionSectionsAreCheckedAtLoad) {
  const fs::path dir = test_dir("monitor_option_sections");
  fs::create_directories(dir);
  const std::string path = (dir / "monitor.json").string();
  auto load_error = [&](const nlohmann::json& j) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << j.dump();
    return mmphate::testing::error_of([&] { load_monitor_config(path); });
  };
  auto has = [](const std::string& e, const std::string& part) { return e.find(part) != std::string::npos; };
  // Typos: the full key and the allowed keys.
  std::string e = load_error({{"diagnostics", {{"knn", 3}}}});
  EXPECT_TRUE(has(e, "unknown key 'diagnostics.knn'") && has(e, "knn_k") && has(e, path)) << e;
  e = load_error({{"phases", {{"delay_epochs", 2}}}});
  EXPECT_TRUE(has(e, "unknown key 'phases.delay_epochs'") && has(e, "min_relative_delta")) << e;
  e = load_error({{"early_stopping", {{"enabled", true}, {"patiense", 3}}}});
  EXPECT_TRUE(has(e, "unknown key 'early_stopping.patiense'") && has(e, "divergence_threshold")) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << "one line";
  // Out of range: the full key, the value and the allowed range.
  e = load_error({{"diagnostics", {{"knn_k", 0}}}});
  EXPECT_TRUE(has(e, "invalid diagnostics option diagnostics.knn_k = 0: allowed integers >= 1")) << e;
  e = load_error({{"diagnostics", {{"digits", 18}}}});
  EXPECT_TRUE(has(e, "diagnostics.digits = 18") && has(e, "[1, 17]")) << e;
  e = load_error({{"phases", {{"window", 2}}}});
  EXPECT_TRUE(has(e, "invalid phase detector option phases.window = 2: allowed integers in [3, 10000]")) << e;
  e = load_error({{"phases", {{"min_t", -1.5}}}});
  EXPECT_TRUE(has(e, "phases.min_t = -1.5") && has(e, "finite values >= 0")) << e;
  e = load_error({{"early_stopping", {{"min_delta", -1}}}});
  EXPECT_TRUE(has(e, "invalid early stopping option early_stopping.min_delta = -1: allowed finite values >= 0")) << e;
  e = load_error({{"early_stopping", {{"patience", -2}}}});
  EXPECT_TRUE(has(e, "early_stopping.patience = -2") && has(e, "integers >= 0")) << e;
  // Values outside a closed set, and wrong types.
  e = load_error({{"early_stopping", {{"mode", "auto"}}}});
  EXPECT_TRUE(has(e, "early_stopping.mode = 'auto'") && has(e, "min | max")) << e;
  e = load_error({{"diagnostics", {{"estimator", "kde"}}}});
  EXPECT_TRUE(has(e, "diagnostics.estimator = 'kde'") && has(e, "knn | histogram")) << e;
  e = load_error({{"phases", {{"patience", "3"}}}});
  EXPECT_TRUE(has(e, "key 'phases.patience' = \"3\": expected an integer")) << e;
  e = load_error({{"early_stopping", {{"baseline", "none"}}}});
  EXPECT_TRUE(has(e, "early_stopping.baseline") && has(e, "a number or null")) << e;
  e = load_error({{"phases", 3}});
  EXPECT_TRUE(has(e, "section phases") && has(e, "expected a JSON object")) << e;
  // The typed values of a good file.
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      << R"({"diagnostics": {"estimator": "histogram"}, "phases": {"window": 9}, )"
      << R"("early_stopping": {"enabled": true, "mode": "max", "baseline": 0.5}})";
  const MonitorConfig cfg = load_monitor_config(path);
  EXPECT_EQ(cfg.diagnostics.estimator, EntropyEstimator::histogram);
  EXPECT_EQ(cfg.diagnostics.knn_k, DiagnosticsOptions{}.knn_k);
  EXPECT_EQ(cfg.phases.window, 9);
  EXPECT_TRUE(cfg.early_stopping.enabled);
  EXPECT_EQ(cfg.early_stopping.mode, StopMode::max);
  EXPECT_DOUBLE_EQ(cfg.early_stopping.baseline, 0.5);
  EXPECT_TRUE(std::isnan(cfg.early_stopping.stopping_threshold));
  fs::remove_all(dir);
}

// monitor_config_to_json (the run's config.json) holds every effective key, defaults filled
// in, and reading it back gives the same config.
TEST(MonitorConfig, JsonRoundTripOfEveryKey) {
  const nlohmann::json defaults = monitor_config_to_json(MonitorConfig{});
  EXPECT_EQ(defaults["diagnostics"], to_json(DiagnosticsOptions{}));
  EXPECT_EQ(defaults["phases"], to_json(PhaseDetectorOptions{}));
  EXPECT_EQ(defaults["early_stopping"], to_json(EarlyStoppingOptions{}));
  EXPECT_EQ(defaults["diagnostics"].size(), 16u);
  EXPECT_EQ(defaults["phases"].size(), 7u);
  EXPECT_EQ(defaults["early_stopping"].size(), 11u);
  EXPECT_EQ(defaults["phases"]["quantity"], "intra_step_entropy");
  EXPECT_TRUE(defaults["early_stopping"]["baseline"].is_null());
  EXPECT_EQ(defaults["capture"]["every_n_epochs"], 1);
  EXPECT_EQ(defaults["process"]["allocator"], "keep_mapped");
  MonitorConfig back;
  apply_monitor_json(back, defaults, "round trip");
  EXPECT_EQ(monitor_config_to_json(back), defaults);

  const nlohmann::json custom = {
      {"run", {{"path", "/tmp/somewhere"}}},
      {"capture", {{"every_n_epochs", 3}, {"probe_seed", 7}, {"fail_fast", true}}},
      {"retention", {{"policy", "thin"}, {"thin_dense", 4}, {"memory_budget_mb", 256}, {"step_sampling", "even"},
                     {"step_count", 5}, {"save_snapshots", true}}},
      {"updater", {{"full_every", 8}, {"mds_anchor", 0.5}, {"priority", "idle"}, {"max_cpu_share", 0.25}}},
      {"embedding", {{"preset", "reference"}}},
      {"frames", {{"stdout", true}, {"decimals", 6}, {"retry_attempts", 2}}},
      {"diagnostics", {{"estimator", "histogram"}, {"histogram_bins", 12}, {"seed", 99}, {"all_matrices", true}}},
      {"phases", {{"enabled", false}, {"quantity", "spectral_inter_step_entropy"}, {"window", 8}, {"min_t", 2.5}}},
      {"early_stopping", {{"enabled", true}, {"monitor", "val_acc"}, {"mode", "max"}, {"baseline", 0.9},
                          {"divergence_threshold", 0.1}, {"strict", false}}},
      {"process", {{"blas_threads", "keep"}, {"allocator", "default"}}}};
  MonitorConfig cfg;
  apply_monitor_json(cfg, custom, "custom.json");
  const nlohmann::json j = monitor_config_to_json(cfg);
  for (const auto& [section, keys] : custom.items())
    for (const auto& [key, value] : keys.items())
      if (section != "embedding") EXPECT_EQ(j[section][key], value) << section << "." << key;
  EXPECT_EQ(j["diagnostics"]["knn_k"], 3);  // a default filled in
  EXPECT_TRUE(j["early_stopping"]["stopping_threshold"].is_null());
  MonitorConfig again;
  apply_monitor_json(again, j, "round trip");
  EXPECT_EQ(monitor_config_to_json(again), j);
  EXPECT_EQ(again.diagnostics.seed, 99u);
  EXPECT_EQ(again.phases.window, 8);
  EXPECT_FALSE(again.phases.enabled);
  EXPECT_EQ(again.early_stopping.mode, StopMode::max);
  EXPECT_DOUBLE_EQ(again.early_stopping.divergence_threshold, 0.1);
  EXPECT_FALSE(again.early_stopping.strict);
  EXPECT_EQ(again.retention.memory_budget_bytes, std::size_t{256} << 20);
}

TEST(MonitorRun, UnwritableRunDirectoryIsAClearErrorAtStart) {
  MonitorConfig cfg = small_config("/dev/null/run");
  const std::string e = mmphate::testing::error_of([&] { Monitor m(cfg); });
  EXPECT_NE(e.find("/dev/null/run"), std::string::npos) << e;
  // Versioned directories count up.
  RunSettings run;
  run.root = test_dir("monitor_versions");
  run.name = "demo";
  EXPECT_EQ(fs::path(create_run_directory(run)).filename(), "version_0");
  EXPECT_EQ(fs::path(create_run_directory(run)).filename(), "version_1");
}

// run.path names one run: a second Monitor there would mix two runs in one frames.jsonl
// (frame numbers restarting halfway), so it is refused at start, naming the path.
TEST(MonitorRun, ReusingRunPathIsRefused) {
  const std::string dir = test_dir("monitor_reuse");
  { Monitor first(small_config(dir)); }
  const std::string e = mmphate::testing::error_of([&] { Monitor second(small_config(dir)); });
  EXPECT_NE(e.find(dir), std::string::npos) << e;
  EXPECT_NE(e.find("already holds a run"), std::string::npos) << e;
  EXPECT_EQ(of_type(read_frames(dir), "event", "started").size(), 1u);  // the first run untouched
}

// Saved snapshots do not wait for frames: each reaches <run>/snapshots/ right after its push,
// while the updater rests between frames (before, they were saved only after a frame).
TEST(MonitorRun, SnapshotsAreSavedAtPushNotAfterFrames) {
  const std::string dir = test_dir("monitor_durable");
  MonitorConfig cfg = small_config(dir);
  cfg.save_snapshots = true;
  cfg.retention.max_epochs = 40;
  cfg.updater.max_cpu_share = 0.002;  // after its first frame the updater rests for seconds
  cfg.updater.shutdown_timeout_ms = 0;
  Monitor monitor(cfg);
  monitor.push(snapshot(0));
  for (int i = 0; i < 500 && monitor.stats().frames == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(monitor.stats().frames, 1);
  for (int e = 1; e < 6; ++e) monitor.push(snapshot(e));
  std::size_t saved = 0;
  for (int i = 0; i < 100 && saved < 6; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    SnapshotStore back;
    try {
      back.resume(dir + "/snapshots");
      saved = back.view().snapshots.size();
    } catch (const Error&) {
    }
  }
  EXPECT_EQ(saved, 6u);
  EXPECT_EQ(monitor.stats().frames, 1);  // no frame since: the updater is resting
  EXPECT_TRUE(fs::exists(dir + "/snapshots/index.json"));  // not snapshots/snapshots/
}

// Lightning's strict: a monitored quantity that is neither a metric nor a frame quantity is an
// error at the first epoch end, naming it and what is available (a misspelt "val_los" used to be
// accepted and never fire).
TEST(MonitorRun, MisspeltEarlyStoppingQuantityIsAnErrorAtEpochEnd) {
  MonitorConfig cfg = small_config(test_dir("monitor_strict"));
  cfg.early_stopping.enabled = true;
  cfg.early_stopping.monitor = "val_los";
  {
    Monitor monitor(cfg);
    const std::string e = mmphate::testing::error_of([&] { monitor.on_epoch_end(0, {{"val_loss", 1.0}}); });
    EXPECT_NE(e.find("\"val_los\""), std::string::npos) << e;
    EXPECT_NE(e.find("val_loss"), std::string::npos) << e;            // the metrics it had
    EXPECT_NE(e.find("intra_step_entropy"), std::string::npos) << e;  // the frame quantities
    EXPECT_NE(e.find("strict"), std::string::npos) << e;
  }
  cfg.run.path = test_dir("monitor_strict_off");
  cfg.early_stopping.strict = false;
  {
    Monitor monitor(cfg);
    EXPECT_NO_THROW(monitor.on_epoch_end(0, {{"val_loss", 1.0}}));
  }
  cfg.run.path = test_dir("monitor_strict_frame");
  cfg.early_stopping.monitor = "intra_step_entropy";
  cfg.early_stopping.strict = true;
  {
    Monitor monitor(cfg);
    EXPECT_NO_THROW(monitor.on_epoch_end(0, {{"val_loss", 1.0}}));  // comes with the frames
  }
}

// A capture that fails every epoch is logged and written as an event once, and counted; with
// capture.fail_fast the first failure reaches the loop.
TEST(MonitorRun, RepeatedCaptureFailureIsReportedOnceAndCounted) {
  const std::string dir = test_dir("monitor_capture_fails");
  MonitorConfig cfg = small_config(dir);
  {
    Monitor monitor(cfg);
    monitor.set_recorder([](std::int64_t, std::int64_t) { throw std::runtime_error("probe pass on the wrong device"); },
                         {});
    for (int e = 0; e < 5; ++e) EXPECT_NO_THROW(monitor.on_epoch_end(e));
    ASSERT_TRUE(monitor.flush(std::chrono::seconds(10)));
    EXPECT_EQ(monitor.stats().capture_failures, 5);
    EXPECT_EQ(monitor.stats().failed_frames, 0);  // no frame was attempted
  }
  const auto frames = read_frames(dir);
  EXPECT_EQ(of_type(frames, "event", "frame_failed").size(), 1u);
  EXPECT_EQ(of_type(frames, "event", "finished")[0]["data"]["capture_failures"], 5);
  cfg.run.path = test_dir("monitor_capture_fail_fast");
  cfg.capture.fail_fast = true;
  Monitor monitor(cfg);
  monitor.set_recorder([](std::int64_t, std::int64_t) { throw std::runtime_error("probe pass on the wrong device"); },
                       {});
  EXPECT_THROW(monitor.on_epoch_end(0), std::runtime_error);
}

TEST(FrameWriter, FailingSinksAreRetriedAndNeverThrow) {
  FrameSettings fs_settings;
  fs_settings.retry_attempts = 2;
  fs_settings.retry_backoff_ms = 1;
  FrameWriter full(fs_settings, "/dev/full");  // every write fails with ENOSPC
  int calls = 0;
  full.add_callback([&](const nlohmann::json&) {
    ++calls;
    throw std::runtime_error("consumer bug");
  });
  EXPECT_NO_THROW(full.emit({{"frame", 0}}));
  EXPECT_NO_THROW(full.emit({{"frame", 1}}));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(full.pending(), 2u);         // kept for a later attempt
  EXPECT_GE(full.failures(), 2 * 3 + 2);  // 3 attempts per emit, plus the callback failures
  // A sink that recovers writes what it kept, in order.
  const std::string dir = test_dir("frame_writer");
  fs::create_directories(dir);
  const std::string path = dir + "/frames.jsonl";
  fs::create_directory(path);  // a directory where the file should be: writes fail
  FrameWriter flaky(fs_settings, path);
  flaky.emit({{"frame", 0}});
  EXPECT_EQ(flaky.pending(), 1u);
  fs::remove(path);
  flaky.emit({{"frame", 1}});
  EXPECT_EQ(flaky.pending(), 0u);
  EXPECT_EQ(flaky.written(), 2);
  const auto lines = read_frames(dir);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["frame"], 0);
  EXPECT_EQ(lines[1]["frame"], 1);
}

// A file that stops growing mid-line (RLIMIT_FSIZE with SIGXFSZ ignored: write() takes the
// bytes up to the limit, then fails with EFBIG, as on a full disk). The partial line is
// truncated away, the retry after the limit is lifted writes it whole, and every line of the
// file parses (before: the retried line followed the fragment, one invalid line, "0 failed").
TEST(FrameWriter, ShortWritesAreRolledBackAndRetriedWhole) {
  const std::string dir = test_dir("frame_writer_short");
  fs::create_directories(dir);
  const std::string path = dir + "/frames.jsonl";
  FrameSettings fs_settings;
  fs_settings.retry_attempts = 1;
  fs_settings.retry_backoff_ms = 1;
  FrameWriter writer(fs_settings, path);
  const nlohmann::json big = {{"frame", 1}, {"payload", std::string(500, 'x')}};
  writer.emit({{"frame", 0}});
  const auto before = fs::file_size(path);

  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = static_cast<rlim_t>(before + 40);  // room for 40 bytes of the next line
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  writer.emit(big);
  const auto during = fs::file_size(path);
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_EQ(during, before);  // the fragment is gone
  EXPECT_EQ(writer.pending(), 1u);
  FrameWriter::Stats st = writer.stats();
  EXPECT_GE(st.rolled_back, 2);  // first attempt and its retry
  EXPECT_GE(st.failures, 2);
  EXPECT_EQ(st.lost, 0);

  writer.emit({{"frame", 2}});
  st = writer.stats();
  EXPECT_EQ(st.pending, 0);
  EXPECT_EQ(st.written, 3);
  const auto lines = read_frames(dir);  // throws on an invalid line
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["frame"], 0);
  EXPECT_EQ(lines[1], big);
  EXPECT_EQ(lines[2]["frame"], 2);
}

// Lines beyond the pending bound of a sink that never recovers are counted as lost.
TEST(FrameWriter, LinesDroppedBeyondThePendingBoundAreCounted) {
  FrameSettings fs_settings;
  fs_settings.retry_attempts = 0;
  fs_settings.retry_backoff_ms = 0;
  const auto level = logger()->level();
  logger()->set_level(spdlog::level::off);
  {
    FrameWriter full(fs_settings, "/dev/full");
    for (int i = 0; i < 10003; ++i) full.emit({{"frame", i}});
    const FrameWriter::Stats st = full.stats();
    EXPECT_EQ(st.pending, 10000);
    EXPECT_EQ(st.lost, 3);
    EXPECT_EQ(st.written, 0);
  }
  logger()->set_level(level);
}

TEST(MonitorRun, ShutdownDoesNotHangOnASlowFrame) {
  MonitorConfig cfg = small_config(test_dir("monitor_shutdown"));
  cfg.retention.max_epochs = 40;
  cfg.updater.shutdown_timeout_ms = 0;
  cfg.updater.incremental.incremental = false;
  const auto t0 = std::chrono::steady_clock::now();
  {
    Monitor monitor(cfg);
    for (int e = 0; e < 30; ++e) monitor.push(snapshot(e));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 5.0);
}

TEST(MonitorRun, CpuShareRestsBetweenFramesAndFlushEndsTheRest) {
  MonitorConfig cfg = small_config(test_dir("monitor_cpu_share"));
  cfg.updater.max_cpu_share = 0.0005;  // after a frame of ~10 ms: a rest of ~20 s
  Monitor monitor(cfg);
  ASSERT_TRUE(monitor.push(snapshot(0)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // frame 0 done, now resting
  EXPECT_EQ(monitor.stats().frames, 1);
  ASSERT_TRUE(monitor.push(snapshot(1)));
  ASSERT_TRUE(monitor.push(snapshot(2)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(monitor.stats().frames, 1);  // still resting: training gets the core
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(monitor.flush(std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  const MonitorStats st = monitor.stats();
  EXPECT_EQ(st.frames, 2);  // epochs 1 and 2 arrived during the rest: one frame, epoch 1 coalesced
  EXPECT_EQ(st.coalesced_epochs, 1);
}

// Phase labels of the re-embedded curve are final once an epoch is `final_after` epochs old:
// in the LSTM demo the labels of epochs 6-17 flipped between compression and stable from one
// frame to the next, and none of 5 phase_change events survived. Rise-then-collapse trace:
// the labels may still find both phases, but a final label never changes and every
// phase_change event names a final label.
TEST(MonitorRun, PhaseLabelsBecomeFinalAndNeverChange) {
  const std::string dir = test_dir("monitor_phase_final");
  MonitorConfig cfg = small_config(dir);
  cfg.retention.max_epochs = 24;
  const TraceShape shape{24, 4, 12, 16};
  const RowMatrix trace = make_phase_trace(shape, rise_then_collapse(shape.epochs, 10, 0.2, 2.0), 3, 0.05, 5);
  std::map<std::int64_t, std::string> final_label;
  int checked = 0;
  {
    Monitor monitor(cfg);
    for (Index e = 0; e < shape.epochs; ++e) {
      monitor.push(snapshot_from_trace(trace, e, shape.steps, shape.units));
      monitor.flush();
    }
  }
  for (const auto& f : of_type(read_frames(dir), "embedding")) {
    const auto& ph = f["diagnostics"]["phase"];
    ASSERT_TRUE(ph.contains("final_after"));
    const int delay = ph["final_after"].get<int>();
    ASSERT_GT(delay, 0);
    const auto epochs = f["window"]["epochs"].get<std::vector<std::int64_t>>();
    const std::int64_t newest = epochs.back();
    for (std::size_t p = 0; p < epochs.size(); ++p) {
      if (newest - epochs[p] < delay) continue;
      const std::string label = ph["per_epoch"][p].get<std::string>();
      auto it = final_label.find(epochs[p]);
      if (it == final_label.end()) final_label[epochs[p]] = label;
      else EXPECT_EQ(it->second, label) << "epoch " << epochs[p] << " at frame of epoch " << newest;
      ++checked;
    }
  }
  EXPECT_GT(checked, 150);
  for (const auto& ev : of_type(read_frames(dir), "event", "phase_change")) {
    const std::int64_t onset = ev["data"]["onset_epoch"].get<std::int64_t>();
    ASSERT_TRUE(final_label.count(onset)) << "phase_change at a label that is not final";
    EXPECT_EQ(final_label[onset], ev["data"]["to"].get<std::string>());
  }
}
