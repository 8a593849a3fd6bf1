/// @file
/// SnapshotStore: the bounded history of hidden-state snapshots a training run keeps for
/// MM-PHATE (the "ring buffer" between capture and the background updater).
///
/// One snapshot = the recorded layer's output for the fixed probe set after one epoch,
/// [steps, units, probes] float32. The training thread push()es a finished snapshot (moved
/// in, never copied); the store keeps immutable shared pointers, so the consumer's view()
/// copies pointers only and the training thread holds the lock for a pointer push and the
/// retention bookkeeping, never for data work.
///
/// Retention (RetentionPolicy):
///  * window: keep the last max_epochs epochs;
///  * thin:   keep the whole history at decreasing resolution: every epoch below thin_dense,
///            then epochs thin_dense + j * stride, stride doubling until at most max_epochs
///            remain; the newest epoch is always kept;
///  * memory: after the policy, the oldest snapshots go until the total is within
///            memory_budget_bytes (the newest is always kept);
///  * time steps: each snapshot can be subsampled on push (every step_stride-th step, or
///            step_count evenly spaced steps); the kept original indices travel with it.
/// Every decision is logged and listed in decisions().
///
/// Persistence: save(dir) writes dir/epoch_NNNNNN.npy and dir/index.json, each to a
/// temporary name then renamed, so a killed run never leaves a half-written file that
/// resume(dir) would read: resume() trusts only index.json, and index.json only names finished
/// files. A resumed run pushes on top of the loaded history; pushing an epoch that is not
/// newer than the last replaces the history from that epoch on (training restarted from an
/// earlier checkpoint). (Saves before 2026-12 put the .npy files in dir/snapshots/; their
/// index names them so, and resume() reads them. Indexes without a "layers" entry describe one
/// layer with "layer"/"directions" and resume as such.)
/// resume() is all or nothing: every snapshot loads into a staging store first, and a missing
/// or corrupt file, a malformed index (errors name the entry and key), epochs out of order or
/// a `file` entry outside the folder (absolute, or with '..') leave this store empty. save()
/// deletes only snapshot files it wrote or resumed itself that the new index no longer names.
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mmphate/trace.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

/// One recorded layer's share of a snapshot's units.
struct SnapshotLayer {
  std::string name;    ///< capture slot (module) name
  Index units = 0;     ///< units of this layer, all directions
  int directions = 1;  ///< 2: bidirectional; its units are direction-major within the layer

  bool operator==(const SnapshotLayer& o) const {
    return name == o.name && units == o.units && directions == o.directions;
  }
};

struct Snapshot {
  std::int64_t epoch = 0;
  std::int64_t global_step = 0;
  Index steps = 0, units = 0, probes = 0;
  std::vector<float> values;          ///< [steps, units, probes], C order
  std::vector<std::uint8_t> step_valid;  ///< per step: 0 = padding (never becomes a node); empty = all valid
  std::vector<std::int64_t> step_index;  ///< original time step of each kept step; empty = 0..steps-1
  Index nonfinite = 0;                ///< NaN/Inf values seen (counted on push)
  std::string layer;                  ///< capture slot (module) name, for one recorded layer
  int directions = 1;                 ///< 2 for a bidirectional layer: units are direction-major,
                                      /// unit u belongs to direction u / (units / directions)
  /// Several layers recorded together (one probe pass): their units side by side, in this order
  /// (units sum to `units`). Empty: one layer, described by `layer` and `directions`.
  std::vector<SnapshotLayer> layers;

  /// `layers`, or the one layer `layer`/`directions` describe.
  std::vector<SnapshotLayer> layer_spans() const;

  std::size_t bytes() const { return values.size() * sizeof(float); }
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

enum class RetentionKind { window, thin };
/// automatic: the Monitor chooses `all` or `even` at the first push from its frame budget
/// (updater.frame_budget_s; a store without a planner keeps every step).
enum class StepSampling { automatic, all, stride, even };

struct RetentionPolicy {
  RetentionKind kind = RetentionKind::window;
  int max_epochs = 64;
  int thin_dense = 10;
  std::size_t memory_budget_bytes = std::size_t{1} << 30;
  StepSampling step_sampling = StepSampling::automatic;
  int step_stride = 1;  ///< StepSampling::stride
  int step_count = 0;   ///< StepSampling::even

  void validate() const;
};

struct RetentionDecision {
  std::int64_t epoch;
  std::string action;  ///< "kept", "dropped", "replaced"
  std::string reason;
};

class SnapshotStore {
 public:
  explicit SnapshotStore(RetentionPolicy policy = {});

  /// Training thread. Validates the shape against earlier snapshots (a changed probe batch is
  /// an error naming both shapes) and that `layers` add up to the units, counts NaN/Inf,
  /// applies time-step subsampling and retention.
  void push(Snapshot snapshot);

  struct View {
    std::uint64_t version = 0;
    std::vector<SnapshotPtr> snapshots;  ///< oldest first
  };
  View view() const;

  /// Consumer thread: waits until the version differs from `seen` or the timeout passes.
  /// Returns true when a newer version exists.
  bool wait_for_update(std::uint64_t seen, std::chrono::milliseconds timeout) const;

  std::vector<RetentionDecision> decisions() const;
  std::size_t bytes() const;
  RetentionPolicy policy() const;

  /// Decides StepSampling::automatic at the first push that meets it: called with the
  /// snapshot's recorded steps, units and probes, it sets the policy's step sampling (anything
  /// but automatic; left automatic, every step is kept). Set before the first push.
  using StepPlanner = std::function<void(Index steps, Index units, Index probes, RetentionPolicy& policy)>;
  void set_step_planner(StepPlanner planner);

  void save(const std::string& dir) const;
  /// Loads the history saved in dir into this (empty) store, under this store's policy.
  void resume(const std::string& dir);

  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

 private:
  void retain_locked();
  void decide_locked(std::int64_t epoch, const char* action, const std::string& reason);

  RetentionPolicy policy_;
  StepPlanner planner_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<SnapshotPtr> kept_;
  std::vector<RetentionDecision> decisions_;
  std::uint64_t version_ = 0;
  /// Which snapshot object each saved file holds: a replaced epoch is rewritten on save.
  mutable std::mutex save_mutex_;
  mutable std::map<std::int64_t, std::weak_ptr<const Snapshot>> saved_;
  Index steps_ = -1, units_ = -1, probes_ = -1;  ///< shape after subsampling, fixed by the first push
};

}  // namespace mmphate
