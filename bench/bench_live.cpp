// Live-fidelity benchmark: replays recorded real training runs (bench/real/, traces
// [epochs, steps, units, probes]) through a Monitor with the DEFAULT config, the way a
// training loop feeds it (a recorder hook called from on_epoch_end), and measures what a
// person watching the frames sees:
//   * radius ratio of consecutive frames (collapse / blow-up), distinct positions per frame
//     in the written coordinates (precision);
//   * RMS displacement of the nodes two consecutive frames share, relative to the previous
//     frame's radius, separately for incremental frames and full recomputes (jumps);
//   * community scores (docs/SCORES.md, k = 10) of chosen frames against from-scratch
//     embeddings of the same window: the default preset and the faithful kernel;
//   * frame latency, the updater's CPU per frame, coalesced epochs; phase-label changes of
//     epochs older than the detector's delay.
//
//   bench_live CACHE_DIR [--runs a,b] [--config FILE] [--paced SECONDS] [--compare-every N]
//                        [--no-compare] [--out DIR]
// --paced S: epochs arrive every S seconds while the main thread spins (a training thread's
// load) instead of flush() after each epoch. Prints one JSON line per frame (with --verbose)
// and one summary line per run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmphate/error.hpp"
#include "mmphate/run/frame_reader.hpp"
#include "mmphate/monitor/monitor.hpp"
#include "mmphate/npy.hpp"
#include "mmphate/phate.hpp"
#include "mmphate/scores.hpp"
#include "testing/store_traces.hpp"
#include "util/memory.hpp"

using namespace mmphate;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct RecordedRun {
  std::string name;
  TraceShape shape;
  RowMatrix trace;  // (epochs * steps * units) x probes, as snapshot_from_trace reads it
  std::vector<std::int64_t> labels;
  nlohmann::json meta;
};

RecordedRun load_run(const std::string& dir) {
  RecordedRun r;
  r.name = fs::path(dir).filename().string();
  r.trace = read_trace_npy(dir + "/trace.npy", r.shape);
  if (fs::exists(dir + "/labels.npy")) r.labels = read_npy(dir + "/labels.npy").to_int64();
  if (fs::exists(dir + "/meta.json")) r.meta = nlohmann::json::parse(std::ifstream(dir + "/meta.json"));
  return r;
}

Snapshot snapshot_of(const RecordedRun& r, Index e) {
  Snapshot s = snapshot_from_trace(r.trace, e, r.shape.steps, r.shape.units);
  s.global_step = e;
  s.layer = r.name;
  return s;
}

// The engine's input for a window of epochs, assembled as the monitor's updater does, with
// the step sampling the monitor used (`sampling`: its effective retention policy).
AssembledTrace window_trace(const RecordedRun& r, const std::vector<std::int64_t>& epochs, RetentionPolicy sampling) {
  sampling.kind = RetentionKind::window;
  sampling.max_epochs = std::max<int>(1, static_cast<int>(epochs.size()));
  sampling.memory_budget_bytes = std::numeric_limits<std::size_t>::max();
  SnapshotStore store(sampling);
  for (std::int64_t e : epochs) store.push(snapshot_of(r, e));
  return assemble_trace(store.view());
}

// The retention policy the monitor ran with, from the run folder's config.json (the monitor
// rewrites it when it plans the step sampling at the first snapshot).
RetentionPolicy effective_retention(const std::string& run_dir) {
  MonitorConfig eff;
  apply_monitor_json(eff, nlohmann::json::parse(std::ifstream(run_dir + "/config.json")), run_dir + "/config.json");
  return eff.retention;
}

struct FrameData {
  nlohmann::json j;  // the frame line without its coordinate arrays
  std::vector<std::int64_t> epochs;
  RowMatrix coords;  // grid nodes x dims, NaN absent
};

// Embedding frames of a run folder; coordinates through the run reader (inline or sidecar).
std::vector<FrameData> read_frames(const std::string& run_dir) {
  RunData run;
  run.dir = run_dir;
  std::vector<FrameData> out;
  std::ifstream in(run_dir + "/frames.jsonl");
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("type", "") != "embedding") continue;
    Frame fr = parse_frame(j);
    load_coords(run, fr);
    FrameData f;
    f.epochs = fr.window_epochs;
    const Index n = fr.n_nodes, d = fr.n_components;
    f.coords.resize(n, d);
    for (Index i = 0; i < n * d; ++i) f.coords(i / d, i % d) = fr.coords[static_cast<std::size_t>(i)];
    j.erase("coords");
    j.erase("most_active_class");
    f.j = std::move(j);
    out.push_back(std::move(f));
  }
  return out;
}

double rms_radius(const RowMatrix& X) {
  Eigen::RowVectorXd c = Eigen::RowVectorXd::Zero(X.cols());
  Index n = 0;
  for (Index i = 0; i < X.rows(); ++i)
    if (std::isfinite(X(i, 0))) {
      c += X.row(i);
      ++n;
    }
  if (n == 0) return 0;
  c /= static_cast<double>(n);
  double s = 0;
  for (Index i = 0; i < X.rows(); ++i)
    if (std::isfinite(X(i, 0))) s += (X.row(i) - c).squaredNorm();
  return std::sqrt(s / static_cast<double>(n));
}

Index distinct_positions(const RowMatrix& X) {
  std::set<std::vector<double>> seen;
  for (Index i = 0; i < X.rows(); ++i)
    if (std::isfinite(X(i, 0))) seen.insert(std::vector<double>(X.row(i).data(), X.row(i).data() + X.cols()));
  return static_cast<Index>(seen.size());
}

Index present(const RowMatrix& X) {
  Index n = 0;
  for (Index i = 0; i < X.rows(); ++i) n += std::isfinite(X(i, 0)) ? 1 : 0;
  return n;
}

// RMS displacement of the nodes both frames hold, relative to the previous frame's radius.
double shared_displacement(const FrameData& prev, const FrameData& cur, Index per_epoch) {
  std::map<std::int64_t, Index> pos_prev;
  for (std::size_t p = 0; p < prev.epochs.size(); ++p) pos_prev[prev.epochs[p]] = static_cast<Index>(p);
  double sq = 0;
  Index n = 0;
  for (std::size_t p = 0; p < cur.epochs.size(); ++p) {
    auto it = pos_prev.find(cur.epochs[p]);
    if (it == pos_prev.end()) continue;
    for (Index i = 0; i < per_epoch; ++i) {
      const Index a = it->second * per_epoch + i, b = static_cast<Index>(p) * per_epoch + i;
      if (!std::isfinite(prev.coords(a, 0)) || !std::isfinite(cur.coords(b, 0))) continue;
      sq += (prev.coords.row(a) - cur.coords.row(b)).squaredNorm();
      ++n;
    }
  }
  const double r = rms_radius(prev.coords);
  return n > 0 && r > 0 ? std::sqrt(sq / static_cast<double>(n)) / r : std::nan("");
}

struct Scores {
  double intra = std::nan(""), inter = std::nan("");
};

Scores scores_of(const PreparedTrace& pt, const RowMatrix& grid_or_rows, bool grid) {
  RowMatrix Y(pt.index.size(), grid_or_rows.cols());
  for (Index r = 0; r < pt.index.size(); ++r) Y.row(r) = grid_or_rows.row(grid ? pt.index.full_id[r] : r);
  for (Index r = 0; r < Y.rows(); ++r)
    if (!std::isfinite(Y(r, 0))) Y.row(r).setZero();
  ScoreOptions so;
  so.ks = {10};
  so.max_queries = 5000;
  so.threads = 2;
  const CommunityScores s = community_scores(pt.features, pt.index, Y, so);
  return {s.intra_step[0], s.inter_step[0]};
}

double quantile(std::vector<double> v, double q) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(std::lround(q * static_cast<double>(v.size() - 1)))];
}
double max_of(const std::vector<double>& v) { return quantile(v, 1.0); }

nlohmann::json num(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

}  // namespace

int main(int argc, char** argv) {
  std::string cache, config, out_root = "/tmp/mmphate_bench_live";
  std::set<std::string> only;
  double paced = 0;
  int compare_every = 5;
  bool compare = true, verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--runs") {
      std::stringstream ss(val());
      for (std::string n; std::getline(ss, n, ',');) only.insert(n);
    } else if (a == "--config") config = val();
    else if (a == "--paced") paced = std::stod(val());
    else if (a == "--compare-every") compare_every = std::stoi(val());
    else if (a == "--no-compare") compare = false;
    else if (a == "--out") out_root = val();
    else if (a == "--verbose") verbose = true;
    else if (cache.empty() && a[0] != '-') cache = a;
    else {
      std::cerr << "usage: bench_live CACHE_DIR [--runs a,b] [--config FILE] [--paced S] [--compare-every N] "
                   "[--no-compare] [--out DIR] [--verbose]\n";
      return 2;
    }
  }
  if (cache.empty()) cache = "bench/real/cache";
  std::vector<std::string> dirs;
  if (!fs::is_directory(cache)) {
    std::cerr << "bench_live: " << cache << " is not a directory (record the runs with bench/real/record.sh)\n";
    return 2;
  }
  // The scale runs (bench/real/README.md) replay for many minutes: only when named in --runs.
  const std::set<std::string> scale_runs = {"lstm256_fmnist"};
  for (const auto& e : fs::directory_iterator(cache)) {
    const std::string name = e.path().filename().string();
    if (fs::exists(e.path() / "trace.npy") && (only.empty() ? !scale_runs.count(name) : only.count(name) > 0))
      dirs.push_back(e.path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) {
    std::cerr << "bench_live: no recorded run in " << cache << " (bash bench/real/record.sh records them)\n";
    return 1;
  }
  logger()->set_level(spdlog::level::warn);
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& dir : dirs) {
    const RecordedRun run = load_run(dir);
    MonitorConfig cfg = config.empty() ? MonitorConfig{} : load_monitor_config(config);
    cfg.run.path = out_root + "/" + run.name;
    fs::remove_all(cfg.run.path);
    double wall_train = 0;
    {
      Monitor monitor(cfg);
      monitor.set_recorder([&](std::int64_t epoch, std::int64_t) { monitor.store().push(snapshot_of(run, epoch)); },
                           run.labels);
      const auto t0 = Clock::now();
      for (Index e = 0; e < run.shape.epochs; ++e) {
        std::map<std::string, double> metrics;
        if (run.meta.contains("curve") && e < static_cast<Index>(run.meta["curve"].size()))
          for (const auto& [k, v] : run.meta["curve"][static_cast<std::size_t>(e)].items())
            if (k != "epoch" && v.is_number()) metrics[k] = v.get<double>();
        const auto te = Clock::now();
        monitor.on_epoch_end(e, metrics, e, e + 1 == run.shape.epochs);
        if (paced > 0) {
          volatile double sink = 0;  // the training thread's load
          while (std::chrono::duration<double>(Clock::now() - te).count() < paced) sink = sink + 1.0;
        } else {
          monitor.flush();
        }
      }
      monitor.flush();
      wall_train = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    const std::vector<FrameData> frames = read_frames(cfg.run.path);
    const RetentionPolicy sampling = effective_retention(cfg.run.path);
    const Index kept_steps = window_trace(run, {0}, sampling).shape.steps;  // the store's sampling rule
    const Index per_epoch = kept_steps * run.shape.units;
    std::vector<double> ratio, disp_inc, disp_full, distinct_share, latency, cpu, gap_live, gap_default_faithful;
    Index coalesced = 0, full_frames = 0;
    // Phase labels: an epoch's label once older than the delay must not change.
    std::map<std::int64_t, std::string> label_of;
    Index label_flips = 0;
    Options scratch_default = cfg.embedding, faithful = Options::mphate();
    scratch_default.threads = 2;
    faithful.threads = 2;
    faithful.nan_policy = NanPolicy::drop_node;
    nlohmann::json compared = nlohmann::json::array();
    for (std::size_t f = 0; f < frames.size(); ++f) {
      const FrameData& fr = frames[f];
      const bool full = fr.j.value("update", "") == "full";
      full_frames += full ? 1 : 0;
      const double r = rms_radius(fr.coords);
      const Index np = present(fr.coords);
      distinct_share.push_back(np > 0 ? static_cast<double>(distinct_positions(fr.coords)) / static_cast<double>(np) : 0);
      double rr = std::nan(""), d = std::nan("");
      if (f > 0) {
        const double r0 = rms_radius(frames[f - 1].coords);
        rr = std::max(r / r0, r0 / r);
        ratio.push_back(rr);
        d = shared_displacement(frames[f - 1], fr, per_epoch);
        (full ? disp_full : disp_inc).push_back(d);
      }
      latency.push_back(fr.j.value("latency_s", std::nan("")));
      if (fr.j.contains("cpu_s")) cpu.push_back(fr.j["cpu_s"].get<double>());
      if (fr.j.contains("coalesced_epochs")) coalesced += static_cast<Index>(fr.j["coalesced_epochs"].size());
      const auto& diag = fr.j["diagnostics"];
      if (diag.contains("phase") && diag["phase"].contains("per_epoch")) {
        const auto& pe = diag["phase"]["per_epoch"];
        const int delay = diag["phase"].value("final_after", 0);
        for (std::size_t p = 0; p < pe.size() && p < fr.epochs.size(); ++p) {
          const std::int64_t ep = fr.epochs[p];
          const bool final_now = delay > 0 && fr.epochs.back() - ep >= delay;
          const std::string lab = pe[p].is_string() ? pe[p].get<std::string>() : "";
          auto it = label_of.find(ep);
          if (it != label_of.end() && it->second != lab) ++label_flips;
          if (final_now) label_of[ep] = lab;
        }
      }
      nlohmann::json line = {{"run", run.name},      {"frame", f},          {"epoch", fr.epochs.back()},
                             {"update", full ? "full" : "incremental"},    {"radius", r},
                             {"radius_ratio", num(rr)}, {"displacement", num(d)},
                             {"distinct_share", distinct_share.back()},    {"latency_s", num(latency.back())}};
      const bool do_compare = compare && (f + 1 == frames.size() || (compare_every > 0 && f % compare_every == static_cast<std::size_t>(compare_every - 1)));
      if (do_compare) {
        const AssembledTrace at = window_trace(run, fr.epochs, sampling);
        const PreparedTrace pt = prepare_trace(at.raw, at.shape, scratch_default, &at.node_valid);
        const Scores live = scores_of(pt, fr.coords, true);
        const EmbedResult sd = run_multislice(pt, scratch_default);
        const Scores s_def = scores_of(pt, sd.embedding, false);
        Scores s_fa;
        try {
          const EmbedResult sf = run_multislice(pt, faithful);
          s_fa = scores_of(pt, sf.embedding, false);
        } catch (const std::exception& e) {
          std::cerr << "faithful embedding of " << run.name << " frame " << f << " failed: " << e.what() << "\n";
        }
        gap_live.push_back(std::max(s_def.intra - live.intra, s_def.inter - live.inter));
        gap_default_faithful.push_back(std::max(s_fa.intra - s_def.intra, s_fa.inter - s_def.inter));
        line["scores"] = {{"live", {num(live.intra), num(live.inter)}},
                          {"scratch_default", {num(s_def.intra), num(s_def.inter)}},
                          {"scratch_faithful", {num(s_fa.intra), num(s_fa.inter)}}};
        compared.push_back(line["scores"]);
      }
      if (verbose) std::cout << line.dump() << std::endl;
    }
    nlohmann::json summary = {
        {"run", run.name},
        {"shape", {run.shape.epochs, run.shape.steps, run.shape.units, run.shape.probes}},
        {"kept_steps", kept_steps},
        {"frames", frames.size()},
        {"full_frames", full_frames},
        {"coalesced_epochs", coalesced},
        {"max_radius_ratio", num(max_of(ratio))},
        {"min_distinct_share", num(quantile(distinct_share, 0.0))},
        {"displacement_incremental", {{"median", num(quantile(disp_inc, 0.5))}, {"max", num(max_of(disp_inc))}}},
        {"displacement_full", {{"median", num(quantile(disp_full, 0.5))}, {"max", num(max_of(disp_full))}}},
        {"latency_s", {{"median", num(quantile(latency, 0.5))}, {"max", num(max_of(latency))}}},
        {"cpu_s", {{"median", num(quantile(cpu, 0.5))}, {"max", num(max_of(cpu))}}},
        {"score_gap_live_vs_scratch_max", num(max_of(gap_live))},
        {"score_gap_default_vs_faithful_max", num(max_of(gap_default_faithful))},
        {"final_label_changes", label_flips},
        {"replay_seconds", wall_train},
        {"peak_rss_mb_so_far", peak_rss_mb()},  // the process's (VmHWM): one run per process for a run's own
        {"compared", compared}};
    std::cout << summary.dump() << std::endl;
    all.push_back(summary);
  }
  return 0;
}
