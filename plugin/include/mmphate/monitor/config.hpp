/// @file
/// MonitorConfig: every setting of a live monitor, with the JSON config file format
/// (configs/monitor_*.json, documented key by key in docs/MONITOR.md).
///
/// A config file is a JSON object of sections; every key is optional and defaults to the value
/// below. Unknown sections and keys (in every section, diagnostics, phases and early_stopping
/// included) are errors that name the full key ("phases.window") and list the allowed ones
/// (a typo must not be silently ignored); wrong types and out-of-range values are errors that
/// name the key, the value and what is allowed.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "mmphate/monitor/diagnostics_options.hpp"
#include "mmphate/monitor/updater_options.hpp"
#include "mmphate/options.hpp"
#include "mmphate/snapshot_store.hpp"

namespace mmphate {

struct RunSettings {
  std::string root = "runs";   ///< run directories go to <root>/<name>/version_<n>/
  std::string name = "mmphate";
  std::string path;            ///< non-empty: use exactly this directory instead
};

struct CaptureSettings {
  int every_n_epochs = 1;      ///< record a snapshot every N epochs (the last epoch always)
  int probes_per_class = 8;    ///< probe set: this many inputs of every class (torch layer)
  std::uint64_t probe_seed = 0;
  /// false: a failed capture is logged (once in full, then counted) and training goes on.
  /// true: on_epoch_end rethrows the first capture failure, for loops that prefer to fail fast.
  bool fail_fast = false;
};

struct UpdaterSettings {
  bool enabled = true;         ///< false: snapshots are kept (and saved) but no frames computed
  IncrementalOptions incremental;
  int shutdown_timeout_ms = 60000;  ///< the destructor waits this long for a frame in flight
  /// SIGINT/SIGTERM at their default action: write the pending frames and a `finished` event
  /// (within shutdown_timeout_ms), then end the process as the signal would have.
  bool handle_signals = true;
  /// CPU priority of the updater thread: "low" (nice 19: training first, frames use spare
  /// cycles), "idle" (SCHED_IDLE: only cycles nothing else wants) or "normal".
  std::string priority = "low";
  /// Upper bound on the share of one core the updater may take while training runs: after a
  /// frame that took d seconds it rests d * (1 / share - 1) (snapshots coalesce meanwhile).
  /// On machines whose cores share execution units or memory bandwidth, a busy updater slows
  /// training even on an otherwise idle core; this bounds that. flush() ends the rest.
  double max_cpu_share = 1.0;
  /// Seconds of updater CPU a frame may take at the fullest window. When the window the
  /// retention policy reaches would cost more (frames cost about 160 ns per kernel entry on one
  /// core: nodes x (units + interslice edges)) and retention.step_sampling is "auto", the
  /// monitor keeps evenly spaced steps of each epoch so that it fits, and says so at the first
  /// snapshot (log, `window_planned` event, config.json). 0: never plan.
  double frame_budget_s = 4.0;
};

struct FrameSettings {
  bool file = true;            ///< frames.jsonl in the run directory
  bool stdout_lines = false;   ///< also print every frame line on stdout
  int decimals = 4;            ///< fixed decimals of inline coordinates
  Index binary_above_nodes = 50000;  ///< larger frames put coordinates in a float32 sidecar
  int retry_attempts = 5;      ///< a failed write is retried this many times ...
  int retry_backoff_ms = 200;  ///< ... waiting this long, doubled each time
};

/// What the monitor sets process-wide so that a training loop written as the README shows keeps
/// its speed (docs/MONITOR.md, "Process settings"; measured in docs/PERFORMANCE.md).
struct ProcessSettings {
  /// "torch": attach() shrinks OpenBLAS's thread pool (which LibTorch's CPU matrix products use,
  /// and which torch::set_num_threads does not size) to torch's intra-op thread count, unless
  /// OPENBLAS_NUM_THREADS / GOTO_NUM_THREADS is set. "keep": leave it alone.
  std::string blas_threads = "torch";
  /// "keep_mapped": freed memory stays mapped (glibc mallopt: no per-block mmap, trim above 1 GiB),
  /// so the updater's large, short-lived buffers do not page-fault and unmap every frame.
  /// "default": glibc's own settings.
  std::string allocator = "keep_mapped";
};

struct MonitorConfig {
  RunSettings run;
  CaptureSettings capture;
  RetentionPolicy retention;
  bool save_snapshots = false;  ///< keep the snapshot history in <run>/snapshots (resumable)
  UpdaterSettings updater;
  Options embedding = default_embedding();
  FrameSettings frames;
  ProcessSettings process;
  DiagnosticsOptions diagnostics;       ///< docs/DIAGNOSTICS.md
  PhaseDetectorOptions phases;
  EarlyStoppingOptions early_stopping;

  /// The scalable preset with settings suited to a live run: NaN nodes dropped (a diverging
  /// unit must not stop the frames), one engine thread (training keeps the others).
  static Options default_embedding();

  /// Every section, the diagnostics, phases and early_stopping options included; the error
  /// names the full key ("invalid ... phases.window = 2: allowed ...").
  void validate() const;
};

/// Applies a config object onto cfg (keys not given keep their value) and validates the result.
/// `source` names the file in messages.
void apply_monitor_json(MonitorConfig& cfg, const nlohmann::json& config, const std::string& source);
MonitorConfig load_monitor_config(const std::string& path);
/// Every setting, defaults filled in (what the run directory's config.json holds);
/// apply_monitor_json of it onto a default MonitorConfig gives the same config back.
nlohmann::json monitor_config_to_json(const MonitorConfig& cfg);

}  // namespace mmphate
