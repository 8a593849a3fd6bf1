// Recorder: runs the fixed probe set through the model after an epoch and pushes the tapped
// layer's hidden states into a SnapshotStore as one [steps, units, probes] snapshot.
//
// record(epoch): switches the model to eval() and back to its previous mode (also when the
// forward throws), disables gradients, arms the slot, calls the user's probe forward, copies
// the captured output to CPU float32 and hands it to the store (moved, not copied).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "mmphate/snapshot_store.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

namespace mmphate::torchlayer {

// The fixed probe set (METHOD.md's trace set): inputs [S, ...] and one label per probe.
// Variable-length probes: `lengths` (one per probe) marks the steps at or beyond the shortest
// probe as padding; padding steps are stored but never become graph nodes (a node needs the
// unit's response to every probe).
struct ProbeSet {
  torch::Tensor inputs;
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> lengths;

  // `per_class` probes of every class, chosen with a seeded shuffle, in class order.
  static ProbeSet stratified(const torch::Tensor& inputs, const torch::Tensor& labels, int per_class,
                             std::uint64_t seed);
};

class Recorder {
 public:
  using ProbeForward = std::function<void(const torch::Tensor& probes)>;

  // `forward` runs the model on the probe inputs (its result is ignored: the tap captures).
  Recorder(std::shared_ptr<torch::nn::Module> model, std::shared_ptr<CaptureSlot> slot, ProbeSet probes,
           ProbeForward forward, SnapshotStore& store);

  void record(std::int64_t epoch, std::int64_t global_step = 0);

  // Optional finer schedule: records when global_step is a multiple of every_n_steps (> 0).
  // Each such snapshot is keyed one after the newest held, so keys keep increasing.
  void set_every_n_steps(std::int64_t n);
  bool maybe_record(std::int64_t global_step);

  const ProbeSet& probes() const { return probes_; }

 private:
  std::shared_ptr<torch::nn::Module> model_;
  std::shared_ptr<CaptureSlot> slot_;
  ProbeSet probes_;
  ProbeForward forward_;
  SnapshotStore& store_;
  std::int64_t every_n_steps_ = 0;
  std::int64_t records_ = 0;
};

}  // namespace mmphate::torchlayer
