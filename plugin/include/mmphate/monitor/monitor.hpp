/// @file
/// Monitor: the one object a training loop owns to watch its recurrent network learn.
///
///   mmphate::Monitor monitor("configs/monitor_default.json");   // or a MonitorConfig
///   mmphate::torchlayer::attach(monitor, model, model->lstm->slot(), probes, forward);
///   for (epoch ...) {
///     train ...;
///     monitor.on_epoch_end(epoch, {{"train_loss", l}, {"val_accuracy", a}}, step);
///     if (monitor.should_stop()) break;
///   }
///   monitor.flush();   // optional: wait for the last frame
///
/// on_epoch_end records the probe set's hidden states (a few ms on the training thread) into
/// the SnapshotStore and returns; a background updater thread turns the newest snapshots into
/// an MM-PHATE frame (IncrementalEmbedder) and writes it to the run directory, stdout and
/// callbacks (FrameWriter). When training outpaces the updater, the updater skips to the
/// newest state and lists the skipped epochs in the frame (coalescing); training never waits.
/// No method called from the training loop throws because of the monitor: failures are logged
/// and become `frame_failed` event frames. Construction does throw (bad config, unwritable
/// run directory): that happens before training starts.
/// Destruction waits up to updater.shutdown_timeout_ms for the frames of pushed snapshots,
/// then writes a `finished` event; a frame still computing after that is left to finish on its
/// own (its thread keeps the state alive) rather than hang the program.
/// Signals (updater.handle_signals, on by default): SIGINT / SIGTERM left at their default
/// action make every live monitor do the same within shutdown_timeout_ms, with the signal named
/// in the `finished` event, before the process ends as it would have (a second signal ends it
/// at once). A program with its own handler keeps it; its shutdown path reaches the destructor.
/// Saved snapshots (retention.save_snapshots) are written by their own thread right after each
/// push, not after frames (docs/RELIABILITY.md).
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mmphate/monitor/config.hpp"
#include "mmphate/monitor/frame.hpp"
#include "mmphate/snapshot_store.hpp"

namespace mmphate {

/// Data-parallel training (docs/DISTRIBUTED.md). Every rank builds its Monitor with the same
/// config and this hook, and calls on_epoch_end once per epoch at the same point of its loop.
/// Rank 0 records and writes; other ranks create no run folder, record nothing and compute no
/// frames. on_epoch_end runs `agree_stop` on every rank, once per call, and should_stop()
/// returns its answer (rank 0's decision) on every rank. The torch layer fills this from a c10d
/// ProcessGroup (mmphate/torch/distributed.hpp); the core never links torch.
struct DistributedHook {
  int rank = 0;
  int world_size = 1;
  /// A collective: rank 0 passes its stop decision, every rank gets rank 0's back. Throws on
  /// failure or timeout (then this rank stops and makes no more collective calls).
  std::function<bool(bool rank0_stop)> agree_stop;
};

struct MonitorStats {
  std::int64_t snapshots = 0;      ///< pushed
  std::int64_t frames = 0;         ///< embedding frames written
  std::int64_t full_frames = 0;
  std::int64_t failed_frames = 0;
  std::int64_t coalesced_epochs = 0;
  std::int64_t capture_failures = 0;
  std::int64_t snapshot_save_failures = 0;  ///< retention.save_snapshots: failed saves
  double last_latency_s = 0.0;     ///< push of the newest snapshot -> its frame
  double last_update_s = 0.0;      ///< compute time of the last frame
  std::string phase = "unknown";   ///< newest epoch's phase label (docs/DIAGNOSTICS.md)
};

class Monitor {
 public:
  /// Records a snapshot of `epoch` (installed by the torch layer's attach()).
  using RecordFn = std::function<void(std::int64_t epoch, std::int64_t global_step)>;

  explicit Monitor(MonitorConfig config);
  explicit Monitor(const std::string& config_path);
  /// Data-parallel training: see DistributedHook. Throws mmphate::Error for a hook whose rank is
  /// outside [0, world_size) or that lacks agree_stop with world_size > 1.
  Monitor(MonitorConfig config, DistributedHook distributed);
  Monitor(const std::string& config_path, DistributedHook distributed);
  ~Monitor();

  void set_recorder(RecordFn record, std::vector<std::int64_t> probe_labels);

  /// Training loop, once per epoch. Records a snapshot when capture.every_n_epochs says so (or
  /// `last_epoch`), keeps the metrics for the frames and wakes the updater. Never throws because
  /// of the monitor; it throws mmphate::Error only for a mistake in the loop or config, as
  /// Lightning does: early stopping (strict) on a quantity that is neither among the metrics
  /// nor a frame quantity, and a failed capture when capture.fail_fast is set.
  void on_epoch_end(std::int64_t epoch, const std::map<std::string, double>& metrics = {},
                    std::int64_t global_step = -1, bool last_epoch = false);

  /// For custom capture: hands a finished snapshot to the store. Never throws; returns false
  /// (and logs why) when the snapshot was refused. Distributed, ranks other than 0 drop it
  /// (false): they record nothing.
  bool push(Snapshot snapshot);

  /// Waits until every pushed snapshot is covered by a frame (or failed), at most `timeout`.
  bool flush(std::chrono::milliseconds timeout = std::chrono::minutes(10));

  /// Distributed: the answer of the last on_epoch_end's collective (rank 0's decision), the same
  /// on every rank however often it is called; no collective runs here.
  bool should_stop() const;
  std::string stop_reason() const;
  int rank() const;   ///< 0 unless distributed; only rank 0 records and writes

  void add_callback(FrameCallback callback);  ///< ignored on ranks other than 0 (no frames there)
  const std::string& run_dir() const;   ///< empty when frames.file is off
  const std::string& run_id() const;
  const MonitorConfig& config() const;
  SnapshotStore& store();
  MonitorStats stats() const;

  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

 private:
  struct State;
  std::shared_ptr<State> state_;

  /// Data-parallel training (monitor_distributed.cpp); null when not distributed.
  struct Distributed;
  std::shared_ptr<Distributed> dist_;
  void local_epoch_end(std::int64_t epoch, const std::map<std::string, double>& metrics, std::int64_t global_step,
                       bool last_epoch);
  void distributed_epoch_end(std::int64_t epoch, const std::map<std::string, double>& metrics,
                             std::int64_t global_step, bool last_epoch);
  bool local_should_stop() const;
};

}  // namespace mmphate
