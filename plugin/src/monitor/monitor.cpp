#include "mmphate/monitor/monitor.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <limits>
#include <filesystem>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/config_json.hpp"
#include "mmphate/allocator.hpp"
#include "diagnostics/frame_diagnostics.hpp"
#include "diagnostics/early_stopping.hpp"
#include "mmphate/error.hpp"
#include "monitor/frame_json.hpp"
#include "monitor/frame_writer.hpp"
#include "monitor/run_directory.hpp"
#include "incremental/embedder.hpp"
#include "mmphate/log.hpp"
#include "util/parallel.hpp"
#include "monitor/window_plan.hpp"
#include "diagnostics/phase_detector.hpp"
#include "monitor/monitor_distributed.hpp"
#include "monitor/signal_flush.hpp"

namespace mmphate {
namespace {

using Clock = std::chrono::steady_clock;

// Per-epoch bookkeeping (metrics, push times, steps, final phase labels) keeps at most this
// many epochs: far more than any window, bounded for runs of millions of epochs.
constexpr std::size_t kBoundedHistory = 4096;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string make_run_id() {
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld-%08x", static_cast<long long>(unix_now()), rd());
  return buf;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::string join_epochs(const std::vector<std::int64_t>& e) {
  std::ostringstream os;
  for (std::size_t i = 0; i < e.size(); ++i) os << (i ? ", " : "") << e[i];
  return os.str();
}

}  // namespace

// Everything the updater thread touches lives here, shared with the thread, so a thread left
// running past the shutdown timeout never outlives what it uses.
struct Monitor::State {
  MonitorConfig cfg;
  std::string run_dir, run_id;
  std::unique_ptr<FrameWriter> writer;
  std::unique_ptr<SnapshotStore> store;
  std::unique_ptr<IncrementalEmbedder> embedder;
  DiagnosticsOptions diag_opt;
  PhaseDetector phases;
  EarlyStopping early;
  Clock::time_point start = Clock::now();

  RecordFn record;
  std::vector<std::int64_t> probe_labels;

  std::mutex mutex;  // guards everything below
  std::condition_variable wake, progressed;
  bool stop = false;
  bool busy = false;     // the updater is writing events or computing a frame
  bool exited = false;   // the updater thread has returned
  bool abandon = false;  // shutdown timed out: finish the frame in flight, then exit
  bool flushing = false; // a flush() waits: no resting between frames
  bool finished = false; // the finished event is written (once)
  bool saver_exited = true;  // the snapshot saver thread has returned (or never ran)
  std::uint64_t saved_version = 0;  // store version the last snapshot save covered
  std::int64_t save_failures = 0;   // failed saves in a row (logged once)
  int signal_id = -1;
  std::string last_capture_error;  // a capture failure that repeats is logged once
  std::int64_t capture_error_repeats = 0;
  std::map<std::int64_t, std::map<std::string, double>> metrics;  // by epoch (bounded)
  std::map<std::int64_t, Clock::time_point> pushed_at;            // by epoch (bounded)
  std::map<std::int64_t, std::int64_t> step_of;                   // by epoch
  std::uint64_t pushed_version = 0;  // store version after the newest push
  std::uint64_t done_version = 0;    // store version the last frame (or failure) covered
  std::int64_t last_framed_epoch = std::numeric_limits<std::int64_t>::min();
  std::deque<nlohmann::json> events;  // queued by the training thread, written by the updater
  std::atomic<std::int64_t> next_frame{0};
  std::atomic<bool> should_stop{false};
  std::string stop_reason;
  MonitorStats stats;
  Phase announced_phase = Phase::unknown;  // the phase the last phase_change event announced
  std::map<std::int64_t, Phase> final_labels;  // epochs whose phase label is final (bounded)
  bool node_index_written = false;
  Index node_index_units = -1, node_index_steps = -1;

  FrameHeader header(std::int64_t epoch, std::int64_t step) {
    FrameHeader h;
    h.run_id = run_id;
    h.frame = next_frame++;
    h.epoch = epoch;
    h.global_step = std::max<std::int64_t>(step, 0);
    h.wall_time = unix_now();
    h.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    return h;
  }
  void emit_event(std::int64_t epoch, std::int64_t step, const std::string& event, const std::string& message,
                  const nlohmann::json& data = nlohmann::json::object()) {
    writer->emit(event_frame_json(header(epoch, step), event, message, data));
  }
  void queue_event(std::int64_t epoch, std::int64_t step, const std::string& event, const std::string& message,
                   const nlohmann::json& data) {  // caller holds mutex
    events.push_back({{"epoch", epoch}, {"step", step}, {"event", event}, {"message", message}, {"data", data}});
    wake.notify_all();
  }
  bool saving() const { return cfg.save_snapshots && !run_dir.empty(); }
  // The store's step planner (retention.step_sampling "auto"): at the first snapshot, keep
  // every step or, when the fullest window would exceed updater.frame_budget_s, evenly spaced
  // steps that fit (monitor/window_plan.hpp); the choice goes to the log, a window_planned
  // event and config.json.
  void plan_steps(Index steps, Index units, Index probes, RetentionPolicy& policy) {
    const detail::WindowPlan plan = detail::plan_window(cfg, steps, units, probes);
    policy.step_sampling = plan.sampled ? StepSampling::even : StepSampling::all;
    if (plan.sampled) policy.step_count = static_cast<int>(plan.kept_steps);
    {
      std::lock_guard<std::mutex> lock(mutex);
      cfg.retention.step_sampling = policy.step_sampling;
      cfg.retention.step_count = policy.step_count;
      if (!plan.message.empty())
        queue_event(0, 0, "window_planned", plan.message,
                    {{"steps", plan.steps}, {"kept_steps", plan.kept_steps}, {"epochs", plan.epochs},
                     {"window_nodes", plan.nodes}, {"frame_s_estimate", plan.frame_s},
                     {"frame_s_estimate_every_step", plan.frame_s_all}, {"frame_budget_s", cfg.updater.frame_budget_s}});
    }
    if (!plan.message.empty()) logger()->warn("monitor: {}", plan.message);
    if (run_dir.empty()) return;
    try {
      write_file_atomic(run_dir + "/config.json", monitor_config_to_json(cfg).dump(2) + "\n");
    } catch (const std::exception& e) {
      logger()->error("monitor: could not rewrite config.json with the planned step sampling: {}", e.what());
    }
  }
  // A snapshot of `epoch` reached the store (now at `version`): wake the updater and the saver.
  // A custom recorder's push() already noted it: count it once.
  void note_pushed(std::int64_t epoch, std::uint64_t version) {
    std::lock_guard<std::mutex> lock(mutex);
    if (version <= pushed_version) return;
    pushed_at[epoch] = Clock::now();
    while (pushed_at.size() > kBoundedHistory) pushed_at.erase(pushed_at.begin());
    pushed_version = version;
    ++stats.snapshots;
    wake.notify_all();
  }
  void check_early_stop(std::int64_t epoch, std::int64_t step, const std::map<std::string, double>& q);
  void check_strict_monitor(const std::map<std::string, double>& metrics) const;
  void note_capture_failure(std::int64_t epoch, std::int64_t step, const std::string& what);
  // One frame of the newest snapshots, in named steps (compute_frame calls them in order).
  struct EpochInputs {  // what the training thread left for the newest epoch of a view
    std::int64_t epoch = 0, step = 0;
    Clock::time_point pushed;
    std::map<std::string, double> metrics;
    std::vector<std::int64_t> coalesced;  // epochs that arrived since the last frame, not framed
    nlohmann::json coalesced_metrics = nlohmann::json::object();
  };
  void compute_frame(const SnapshotStore::View& view);
  EpochInputs take_epoch_inputs(const SnapshotStore::View& view);
  void write_node_index(const Snapshot& newest);
  std::string write_sidecar(const RowMatrix& grid, std::int64_t frame);
  std::optional<FrameDiagnostics> add_diagnostics(nlohmann::json& frame, const RowMatrix& grid,
                                                  const FrameEmbedding& fe, std::int64_t epoch,
                                                  std::map<std::string, double>& quantities);
  void count_frame(const EpochInputs& in, const FrameEmbedding& fe, double update_s, double latency,
                   const std::map<std::string, double>& quantities);
  std::optional<PhaseChange> update_phase_labels(nlohmann::json& frame, const FrameDiagnostics* d,
                                                 const std::vector<std::int64_t>& window_epochs, std::int64_t epoch,
                                                 const std::map<std::string, double>& quantities);
  void loop();
  void save_loop();
  // Waits until frames (and saved snapshots) cover store version min(target, newest pushed).
  bool wait_caught_up(std::uint64_t target, std::chrono::milliseconds timeout);
  // Flushes up to `target`, then writes the `finished` event once and stops the threads.
  void finish(std::uint64_t target, std::chrono::milliseconds timeout, const std::string& message,
              const nlohmann::json& extra);
};

// Caller holds mutex. The event is queued: only the updater thread writes frames.
void Monitor::State::check_early_stop(std::int64_t epoch, std::int64_t step, const std::map<std::string, double>& q) {
  if (!early.options().enabled || early.should_stop() || q.count(early.options().monitor) == 0) return;
  const StopDecision d = early.check(epoch, q);
  if (!d.stop) return;
  stop_reason = d.reason;
  should_stop = true;
  logger()->warn("early stopping at epoch {}: {}", epoch, d.reason);
  queue_event(epoch, step, "early_stop", d.reason, d.to_json());
}

// Lightning's strict mode: a monitored quantity that is neither a metric of this epoch nor a
// frame quantity is a mistake in the loop or the config (a misspelt "val_los" never fired).
void Monitor::State::check_strict_monitor(const std::map<std::string, double>& metrics) const {
  const EarlyStoppingOptions& o = early.options();
  if (!o.enabled || !o.strict || metrics.count(o.monitor)) return;
  const auto& frame_names = frame_quantity_names();
  if (std::find(frame_names.begin(), frame_names.end(), o.monitor) != frame_names.end()) return;
  std::string have;
  for (const auto& [k, v] : metrics) have += (have.empty() ? "" : ", ") + k;
  std::string frame_list;
  for (const auto& n : frame_names) frame_list += (frame_list.empty() ? "" : ", ") + n;
  throw Error("early_stopping.monitor = \"" + o.monitor + "\" is not among this epoch's metrics (" +
              (have.empty() ? std::string("none") : have) + ") nor the frame quantities (" + frame_list +
              "); fix the name, or set early_stopping.strict: false for a metric some epochs lack");
}

// Caller holds mutex. A capture that fails every epoch (a model moved to CUDA, a shape change)
// is logged in full once, then counted; the event is written when the cause changes.
void Monitor::State::note_capture_failure(std::int64_t epoch, std::int64_t step, const std::string& what) {
  ++stats.capture_failures;
  if (what == last_capture_error) {
    ++capture_error_repeats;
    logger()->debug("monitor: recording epoch {} failed again ({} times): {}", epoch, capture_error_repeats + 1, what);
    return;
  }
  last_capture_error = what;
  capture_error_repeats = 0;
  logger()->error("monitor: recording epoch {} failed: {} (a repeat of this failure is only counted: "
                  "stats().capture_failures)",
                  epoch, what);
  queue_event(epoch, step, "frame_failed", "capture failed: " + what, {{"capture_failures", stats.capture_failures}});
}

// Phases: embedding-based quantities are re-estimated on every frame (coordinates are
// normalised per frame), so the newest frame's whole per-epoch curve is labelled afresh; a
// quantity without a curve (a training metric) goes through the streaming detector. Adds the
// frame's `diagnostics.phase` and returns the phase change to announce, if any.
std::optional<PhaseChange> Monitor::State::update_phase_labels(nlohmann::json& frame, const FrameDiagnostics* d,
                                                              const std::vector<std::int64_t>& window_epochs,
                                                              std::int64_t epoch,
                                                              const std::map<std::string, double>& quantities) {
  if (!phases.options().enabled) return std::nullopt;
  std::optional<PhaseChange> change;
  {
    const std::string& name = phases.options().quantity;
    std::vector<PhaseUpdate> labels;
    // Re-estimated curves change old epochs' values from frame to frame; labels freeze once
    // an epoch is `final_after` epochs old, so a label a person has seen never flips back.
    // The streaming detector never revises a label: final at once.
    int final_after = 0;
    if (const std::vector<double>* curve = d ? d->per_epoch(name) : nullptr) {
      // The full-precision curve (the frame's copy is rounded).
      if (curve->size() == window_epochs.size()) labels = label_phases(window_epochs, *curve, phases.options());
      final_after = phases.options().patience + 1;
    } else if (auto q = quantities.find(name); q != quantities.end()) {
      labels.push_back(phases.update(epoch, q->second));
    }
    if (!labels.empty()) {
      const std::int64_t newest_epoch = labels.back().epoch;
      std::vector<std::int64_t> newly_final;
      for (auto& u : labels) {
        auto f = final_labels.find(u.epoch);
        if (f != final_labels.end()) {
          u.phase = f->second;
        } else if (newest_epoch - u.epoch >= final_after) {
          final_labels[u.epoch] = u.phase;
          newly_final.push_back(u.epoch);
        }
      }
      while (final_labels.size() > kBoundedHistory) final_labels.erase(final_labels.begin());
      const PhaseUpdate& newest = labels.back();
      Phase final_phase = Phase::unknown;
      std::int64_t final_epoch = -1;
      if (!final_labels.empty()) {
        final_phase = final_labels.rbegin()->second;
        final_epoch = final_labels.rbegin()->first;
      }
      nlohmann::json per_epoch = nlohmann::json::array();
      for (const auto& u : labels) per_epoch.push_back(to_string(u.phase));
      frame["diagnostics"]["phase"] = {{"quantity", name},
                                       {"label", to_string(newest.phase)},
                                       {"trend", to_string(newest.trend)},
                                       {"per_epoch", per_epoch},
                                       {"final_after", final_after},
                                       {"final_label", to_string(final_phase)},
                                       {"final_epoch", final_epoch},
                                       {"evidence", detail::number_or_null(newest.evidence)}};
      // phase_change events follow the final labels only.
      for (std::int64_t e : newly_final) {
        const Phase p = final_labels[e];
        if (p == Phase::unknown || p == announced_phase) continue;
        PhaseChange c;
        c.epoch = epoch;
        c.onset_epoch = e;
        c.from = announced_phase;
        c.to = p;
        c.evidence = newest.evidence;
        c.slope = newest.slope;
        change = c;
        announced_phase = p;
      }
      std::lock_guard<std::mutex> lock(mutex);
      stats.phase = to_string(final_after > 0 ? final_phase : newest.phase);
    }
  }
  return change;
}

// Coalescing: the epochs of the view newer than the last frame, other than the newest, are
// listed in this frame (with their metrics) instead of getting frames of their own.
Monitor::State::EpochInputs Monitor::State::take_epoch_inputs(const SnapshotStore::View& view) {
  const SnapshotPtr& newest = view.snapshots.back();
  EpochInputs in;
  in.epoch = newest->epoch;
  in.step = newest->global_step;
  in.pushed = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& s : view.snapshots)
      if (s->epoch > last_framed_epoch && s->epoch != in.epoch) {
        in.coalesced.push_back(s->epoch);
        auto m = metrics.find(s->epoch);
        if (m != metrics.end()) in.coalesced_metrics[std::to_string(s->epoch)] = metrics_json(m->second);
      }
    if (auto m = metrics.find(in.epoch); m != metrics.end()) in.metrics = m->second;
    if (auto p = pushed_at.find(in.epoch); p != pushed_at.end()) in.pushed = p->second;
    if (auto s = step_of.find(in.epoch); s != step_of.end()) in.step = s->second;
  }
  if (!in.coalesced.empty())
    logger()->info("updater: epochs {} arrived while the previous frame was computed; embedding epoch {} directly",
                   join_epochs(in.coalesced), in.epoch);
  return in;
}

// node_index.json, (re)written when the grid's shape is new.
void Monitor::State::write_node_index(const Snapshot& newest) {
  if (run_dir.empty() || (node_index_written && node_index_units == newest.units && node_index_steps == newest.steps))
    return;
  write_file_atomic(run_dir + "/node_index.json", node_index_json(newest, probe_labels).dump(1) + "\n");
  node_index_written = true;
  node_index_units = newest.units;
  node_index_steps = newest.steps;
}

// Large frames carry their coordinates in a float32 sidecar: its name relative to the run
// directory, or empty for inline coordinates.
std::string Monitor::State::write_sidecar(const RowMatrix& grid, std::int64_t frame) {
  if (run_dir.empty() || grid.rows() <= cfg.frames.binary_above_nodes) return {};
  char name[64];
  std::snprintf(name, sizeof name, "frames/frame_%06lld.f32", static_cast<long long>(frame));
  write_file_atomic(run_dir + "/" + name, coordinates_f32(grid));
  return name;
}

// The frame's `diagnostics`; its quantities join `quantities` (for phases and early stopping).
// Never lets a failure cost the frame: the error goes into the frame instead.
std::optional<FrameDiagnostics> Monitor::State::add_diagnostics(nlohmann::json& frame, const RowMatrix& grid,
                                                                const FrameEmbedding& fe, std::int64_t epoch,
                                                                std::map<std::string, double>& quantities) {
  std::optional<FrameDiagnostics> diag;
  try {
    diag = compute_frame_diagnostics(grid, fe.window.nodes.shape, fe.window.epochs, &fe.window.K, &fe.window.nodes,
                                     diag_opt, &fe.window.features);
    frame["diagnostics"] = diag->to_json();
    for (const auto& [k, v] : diag->quantities()) quantities[k] = v;
    frame["timings_s"]["diagnostics"] = diag->seconds;
  } catch (const std::exception& e) {
    logger()->error("diagnostics of epoch {} failed: {}", epoch, e.what());
    frame["diagnostics"] = {{"error", e.what()}};
  }
  return diag;
}

// Statistics, then early stopping on the frame's quantities.
void Monitor::State::count_frame(const EpochInputs& in, const FrameEmbedding& fe, double update_s, double latency,
                                 const std::map<std::string, double>& quantities) {
  std::lock_guard<std::mutex> lock(mutex);
  ++stats.frames;
  if (fe.full) ++stats.full_frames;
  stats.coalesced_epochs += static_cast<std::int64_t>(in.coalesced.size());
  stats.last_latency_s = latency;
  stats.last_update_s = update_s;
  last_framed_epoch = in.epoch;
  check_early_stop(in.epoch, in.step, quantities);
}

void Monitor::State::compute_frame(const SnapshotStore::View& view) {
  const EpochInputs in = take_epoch_inputs(view);
  const auto t0 = Clock::now();
  const double cpu0 = thread_cpu_seconds();
  FrameEmbedding fe = embedder->update(view);
  write_node_index(*view.snapshots.back());
  const RowMatrix grid = grid_coordinates(fe);
  const std::vector<int> classes = grid_most_active_class(fe, probe_labels);
  FrameHeader h = header(in.epoch, in.step);
  const std::string sidecar = write_sidecar(grid, h.frame);
  nlohmann::json frame = embedding_frame_json(h, fe, grid, classes, cfg.frames.decimals, sidecar);
  frame["metrics"] = metrics_json(in.metrics);
  if (!in.coalesced.empty()) {
    frame["coalesced_epochs"] = in.coalesced;
    frame["coalesced_metrics"] = in.coalesced_metrics;
  }
  std::map<std::string, double> quantities = in.metrics;
  const std::optional<FrameDiagnostics> diag = add_diagnostics(frame, grid, fe, in.epoch, quantities);
  const std::optional<PhaseChange> change =
      update_phase_labels(frame, diag ? &*diag : nullptr, fe.window.epochs, in.epoch, quantities);
  const double update_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double latency = std::chrono::duration<double>(Clock::now() - in.pushed).count();
  frame["latency_s"] = latency;
  frame["cpu_s"] = std::max(thread_cpu_seconds() - cpu0, 0.0);
  writer->emit(frame);
  if (change)
    emit_event(in.epoch, in.step, "phase_change",
               std::string("phase: ") + to_string(change->from) + " -> " + to_string(change->to) + " (" +
                   phases.options().quantity + ")",
               change->to_json());
  count_frame(in, fe, update_s, latency, quantities);
  logger()->info("frame {}: epoch {}, {} nodes, {} in {:.2f} s ({})", h.frame, in.epoch, fe.window.nodes.size(),
                 fe.full ? "full" : "incremental", update_s, fe.reason);
}

// Lowers the calling thread's CPU priority (Linux: per-thread nice / SCHED_IDLE), so that a
// training loop using every core keeps them and frames come from spare cycles.
static void lower_thread_priority(const std::string& priority) {
  if (priority == "normal") return;
  if (priority == "idle") {
    sched_param param{};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0) return;
  }
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19) != 0)
    logger()->warn("monitor: could not lower the updater thread's priority");
}

void Monitor::State::loop() {
  const BlasPoolFrozen leave_torch_blas_alone;
  // The whole frame (the incremental path's Eigen products too, not only embed_kernel) runs on
  // the embedding's thread count, on this thread only.
  const EngineThreads engine_threads(cfg.embedding.threads);
  lower_thread_priority(cfg.updater.priority);
  std::uint64_t seen = 0;
  for (;;) {
    std::deque<nlohmann::json> queued;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [&] { return stop || pushed_version != seen || !events.empty(); });
      queued.swap(events);
      if (stop && ((pushed_version == seen && queued.empty()) || abandon)) break;
      stopping = stop;
      busy = true;
    }
    for (const auto& e : queued)
      emit_event(e["epoch"].get<std::int64_t>(), e["step"].get<std::int64_t>(), e["event"].get<std::string>(),
                 e["message"].get<std::string>(), e["data"]);
    const SnapshotStore::View view = store->view();
    if (stopping) seen = view.version;  // finishing: the events only, no new frame
    if (view.version == seen) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        busy = false;
      }
      progressed.notify_all();
      continue;
    }
    seen = view.version;
    const auto frame_start = Clock::now();
    if (cfg.updater.enabled && !view.snapshots.empty()) {
      try {
        compute_frame(view);
      } catch (const std::exception& e) {
        const std::int64_t epoch = view.snapshots.back()->epoch;
        logger()->error("the frame of epoch {} failed: {}", epoch, e.what());
        {
          std::lock_guard<std::mutex> lock(mutex);
          ++stats.failed_frames;
        }
        emit_event(epoch, view.snapshots.back()->global_step, "frame_failed", e.what());
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      done_version = seen;
      busy = false;
    }
    progressed.notify_all();
    if (cfg.updater.max_cpu_share < 1.0) {
      const double rest = std::chrono::duration<double>(Clock::now() - frame_start).count() *
                          (1.0 / cfg.updater.max_cpu_share - 1.0);
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait_for(lock, std::chrono::duration<double>(rest), [&] { return stop || flushing; });
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    exited = true;
  }
  progressed.notify_all();
}

// Snapshots reach the disk on their own thread, within one save of their push, whatever the
// updater is doing (a frame can take seconds; a kill -9 must not cost the history).
void Monitor::State::save_loop() {
  const std::string dir = run_dir + "/snapshots";
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [&] { return stop || pushed_version != seen; });
      if (pushed_version == seen) break;  // stopping, nothing new
      seen = pushed_version;
    }
    std::string error;
    try {
      store->save(dir);
    } catch (const std::exception& e) {
      error = e.what();
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      saved_version = seen;
      if (!error.empty()) {
        ++stats.snapshot_save_failures;
        // A failure that repeats (a full disk) is logged once, and its end once.
        if (save_failures++ == 0) logger()->error("saving snapshots to '{}' failed: {} (retried at every push)", dir, error);
      } else if (save_failures > 0) {
        logger()->info("saving snapshots works again after {} failed attempt(s)", save_failures);
        save_failures = 0;
      }
    }
    progressed.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    saver_exited = true;
  }
  progressed.notify_all();
}

bool Monitor::State::wait_caught_up(std::uint64_t target, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex);
  flushing = true;
  wake.notify_all();
  const bool done = progressed.wait_for(lock, timeout, [&] {
    const std::uint64_t t = std::min(target, pushed_version);
    return done_version >= t && (!saving() || saved_version >= t || saver_exited) && events.empty() && !busy;
  });
  flushing = false;
  return done;
}

void Monitor::State::finish(std::uint64_t target, std::chrono::milliseconds timeout, const std::string& message,
                            const nlohmann::json& extra) {
  const bool caught_up = wait_caught_up(target, timeout);
  nlohmann::json event;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (finished) return;
    finished = true;
    stop = true;
    abandon = !caught_up;
    const FrameWriter::Stats w = writer->stats();
    nlohmann::json data = {{"frames", stats.frames},
                           {"failed_frames", stats.failed_frames},
                           {"coalesced_epochs", stats.coalesced_epochs},
                           {"snapshots", stats.snapshots},
                           {"capture_failures", stats.capture_failures},
                           {"snapshot_save_failures", stats.snapshot_save_failures},
                           {"lines_lost", w.lost},
                           {"lines_rolled_back", w.rolled_back},
                           {"lines_pending", w.pending}};
    data.update(extra);
    const std::int64_t epoch = last_framed_epoch == std::numeric_limits<std::int64_t>::min() ? 0 : last_framed_epoch;
    const std::string text = caught_up ? message : message + "; a frame still computing was left to finish";
    if (caught_up) queue_event(epoch, 0, "finished", text, data);
    else event = event_frame_json(header(epoch, 0), "finished", text, data);
  }
  wake.notify_all();
  if (caught_up) {
    // The threads only have the final event (and a last save) left: wait for them, bounded,
    // so everything is on disk when this returns.
    std::unique_lock<std::mutex> lock(mutex);
    progressed.wait_for(lock, std::chrono::seconds(10), [&] { return exited && saver_exited; });
  } else {
    // The updater is inside a frame: write the event from here rather than lose it.
    logger()->warn("monitor: a frame is still being computed after {} ms; not waiting for it", timeout.count());
    writer->emit(event);
  }
}

Monitor::Monitor(MonitorConfig config) {
  config.validate();
  state_ = std::make_shared<State>();
  State& s = *state_;
  s.cfg = std::move(config);
  // Validated with the rest of the config above (config.validate()).
  s.diag_opt = s.cfg.diagnostics;
  s.phases = PhaseDetector(s.cfg.phases);
  s.early = EarlyStopping(s.cfg.early_stopping);
  s.run_id = make_run_id();
  if (s.cfg.process.allocator == "keep_mapped") keep_freed_memory_mapped();
  if (s.cfg.frames.file || s.cfg.save_snapshots) {
    s.run_dir = create_run_directory(s.cfg.run);
    write_file_atomic(s.run_dir + "/config.json", monitor_config_to_json(s.cfg).dump(2) + "\n");
  }
  s.writer = std::make_unique<FrameWriter>(s.cfg.frames, s.cfg.frames.file ? s.run_dir + "/frames.jsonl" : "");
  s.store = std::make_unique<SnapshotStore>(s.cfg.retention);
  s.store->set_step_planner([weak = std::weak_ptr<State>(state_)](Index steps, Index units, Index probes,
                                                                  RetentionPolicy& policy) {
    if (const std::shared_ptr<State> st = weak.lock()) st->plan_steps(steps, units, probes, policy);
  });
  s.embedder = std::make_unique<IncrementalEmbedder>(s.cfg.embedding, s.cfg.updater.incremental);
  s.emit_event(0, 0, "started", "monitor started" + (s.run_dir.empty() ? std::string() : " in " + s.run_dir),
               {{"config", monitor_config_to_json(s.cfg)}});
  logger()->info("monitor: run {} writing to {}", s.run_id, s.run_dir.empty() ? "(no file)" : s.run_dir);
  std::shared_ptr<State> keep = state_;
  std::thread([keep] { keep->loop(); }).detach();
  if (s.saving()) {
    s.saver_exited = false;
    std::thread([keep] { keep->save_loop(); }).detach();
  }
  if (s.cfg.updater.handle_signals) {
    const std::weak_ptr<State> weak = state_;
    s.signal_id = detail::register_signal_flush([weak](int signo) {
      const std::shared_ptr<State> st = weak.lock();
      if (!st) return;
      std::uint64_t target;
      {
        std::lock_guard<std::mutex> lock(st->mutex);
        target = st->pushed_version;  // what was pushed when the signal came; not what follows
        st->stop_reason = std::string("interrupted by ") + (signo == SIGINT ? "SIGINT" : "SIGTERM");
        st->should_stop = true;
      }
      st->finish(target, std::chrono::milliseconds(st->cfg.updater.shutdown_timeout_ms),
                 std::string("monitor finished on ") + (signo == SIGINT ? "SIGINT" : "SIGTERM"),
                 {{"signal", signo == SIGINT ? "SIGINT" : "SIGTERM"}});
    });
  }
}

Monitor::Monitor(const std::string& config_path) : Monitor(load_monitor_config(config_path)) {}

Monitor::~Monitor() {
  State& s = *state_;
  detail::unregister_signal_flush(s.signal_id);
  s.finish(std::numeric_limits<std::uint64_t>::max(), std::chrono::milliseconds(s.cfg.updater.shutdown_timeout_ms),
           "monitor finished", nlohmann::json::object());
}

void Monitor::set_recorder(RecordFn record, std::vector<std::int64_t> probe_labels) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->record = std::move(record);
  state_->probe_labels = std::move(probe_labels);
}

bool Monitor::push(Snapshot snapshot) {
  if (dist_ && dist_->hook.rank != 0) return false;  // only rank 0 records (docs/DISTRIBUTED.md)
  State& s = *state_;
  const std::int64_t epoch = snapshot.epoch, step = snapshot.global_step;
  try {
    s.store->push(std::move(snapshot));
  } catch (const std::exception& e) {
    logger()->error("monitor: snapshot of epoch {} refused: {}", epoch, e.what());
    std::lock_guard<std::mutex> lock(s.mutex);
    ++s.stats.capture_failures;
    s.queue_event(epoch, step, "frame_failed", std::string("snapshot refused: ") + e.what(), nlohmann::json::object());
    return false;
  }
  s.note_pushed(epoch, s.store->view().version);
  return true;
}

void Monitor::on_epoch_end(std::int64_t epoch, const std::map<std::string, double>& metrics, std::int64_t global_step,
                           bool last_epoch) {
  if (dist_) return distributed_epoch_end(epoch, metrics, global_step, last_epoch);  // monitor_distributed.cpp
  local_epoch_end(epoch, metrics, global_step, last_epoch);
}

void Monitor::local_epoch_end(std::int64_t epoch, const std::map<std::string, double>& metrics,
                              std::int64_t global_step, bool last_epoch) {
  State& s = *state_;
  RecordFn record;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.early.options().strict) s.check_strict_monitor(metrics);  // throws: a misconfigured loop
    s.metrics[epoch] = metrics;
    while (s.metrics.size() > kBoundedHistory) s.metrics.erase(s.metrics.begin());
    if (global_step >= 0) s.step_of[epoch] = global_step;
    while (s.step_of.size() > kBoundedHistory) s.step_of.erase(s.step_of.begin());
    try {
      s.check_early_stop(epoch, global_step, metrics);
    } catch (const std::exception& e) {
      logger()->error("early stopping check failed: {}", e.what());
    }
    record = s.record;
  }
  const bool due = last_epoch || epoch % s.cfg.capture.every_n_epochs == 0;
  if (!due || !record) return;
  const std::uint64_t before = s.store->view().version;
  try {
    record(epoch, std::max<std::int64_t>(global_step, 0));
  } catch (const std::exception& e) {
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      s.note_capture_failure(epoch, global_step, e.what());
    }
    if (s.cfg.capture.fail_fast) throw;
    return;
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      s.note_capture_failure(epoch, global_step, "a non-standard exception");
    }
    if (s.cfg.capture.fail_fast) throw;
    return;
  }
  const std::uint64_t after = s.store->view().version;
  if (after == before) return;
  s.note_pushed(epoch, after);
}

bool Monitor::flush(std::chrono::milliseconds timeout) {
  return state_->wait_caught_up(std::numeric_limits<std::uint64_t>::max(), timeout);
}

bool Monitor::should_stop() const { return dist_ ? dist_->stop.load() : local_should_stop(); }
bool Monitor::local_should_stop() const { return state_->should_stop.load(); }
std::string Monitor::stop_reason() const {
  if (dist_) {
    std::string r = dist_->reason();  // a distributed cause (rank 0's decision, a failed collective)
    if (!r.empty()) return r;
  }
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->stop_reason;
}
void Monitor::add_callback(FrameCallback callback) {
  if (dist_ && dist_->hook.rank != 0) return;  // no frames on this rank
  state_->writer->add_callback(std::move(callback));
}
const std::string& Monitor::run_dir() const { return state_->run_dir; }
const std::string& Monitor::run_id() const { return state_->run_id; }
const MonitorConfig& Monitor::config() const { return state_->cfg; }
SnapshotStore& Monitor::store() { return *state_->store; }
MonitorStats Monitor::stats() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->stats;
}

}  // namespace mmphate
