/// @file
/// Recorder: runs the fixed probe set through the model after an epoch and pushes the tapped
/// layers' hidden states into a SnapshotStore as one [steps, units, probes] snapshot.
///
/// record(epoch): switches the model to eval() and back to its previous mode (also when the
/// forward throws), disables gradients, arms the slots, calls the user's probe forward once,
/// copies the captured outputs to CPU float32 and hands them to the store (moved, not copied).
/// Several slots (layers) share the one probe pass: their units sit side by side in the
/// snapshot, in the order given, and Snapshot::layers says which units are whose.
///
/// Errors are mmphate::Error with one line naming the layer: a LibTorch error in the probe
/// pass (a model moved to another device or dtype than the probes, say) is reported by its
/// message without the C++ backtrace, as "the probe pass failed on layer 'lstm': <cause>".
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "mmphate/snapshot_store.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

namespace mmphate::torchlayer {

/// The fixed probe set (docs/METHOD.md section 1): inputs [S, ...] and one label per probe.
/// Variable-length probes: `lengths` (one per probe) marks the steps at or beyond the shortest
/// probe as padding; padding steps are stored but never become graph nodes (a node needs the
/// unit's response to every probe).
struct ProbeSet {
  torch::Tensor inputs;
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> lengths;

  /// `per_class` probes of every class, chosen with a seeded shuffle, in class order.
  static ProbeSet stratified(const torch::Tensor& inputs, const torch::Tensor& labels, int per_class,
                             std::uint64_t seed);
};

class Recorder {
 public:
  using ProbeForward = std::function<void(const torch::Tensor& probes)>;

  /// `forward` runs the model on the probe inputs (its result is ignored: the tap captures).
  Recorder(std::shared_ptr<torch::nn::Module> model, std::shared_ptr<CaptureSlot> slot, ProbeSet probes,
           ProbeForward forward, SnapshotStore& store);
  /// Several layers in one probe pass and one snapshot; their slots need distinct names and
  /// equal time steps.
  Recorder(std::shared_ptr<torch::nn::Module> model, std::vector<std::shared_ptr<CaptureSlot>> slots,
           ProbeSet probes, ProbeForward forward, SnapshotStore& store);

  void record(std::int64_t epoch, std::int64_t global_step = 0);

  /// Optional finer schedule: records when global_step is a multiple of every_n_steps (> 0).
  /// Each such snapshot is keyed one after the newest held, so keys keep increasing.
  void set_every_n_steps(std::int64_t n);
  bool maybe_record(std::int64_t global_step);

  const ProbeSet& probes() const { return probes_; }
  const std::vector<std::shared_ptr<CaptureSlot>>& slots() const { return slots_; }

 private:
  std::string probe_pass_error(const std::string& cause) const;

  std::shared_ptr<torch::nn::Module> model_;
  std::vector<std::shared_ptr<CaptureSlot>> slots_;
  std::string label_;  ///< "layer 'lstm'" or "layers 'a', 'b'", for messages
  ProbeSet probes_;
  ProbeForward forward_;
  SnapshotStore& store_;
  std::int64_t every_n_steps_ = 0;
  std::int64_t records_ = 0;
};

}  // namespace mmphate::torchlayer
