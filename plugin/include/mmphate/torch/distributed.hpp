/// @file
/// The monitor under data-parallel training with a c10d ProcessGroup (Gloo, NCCL, ...):
///
///   auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, gloo_options);
///   mmphate::Monitor monitor(config, mmphate::torchlayer::distributed({pg}));  // on every rank
///   mmphate::torchlayer::attach(monitor, model.ptr(), slot, probes, forward);  // records on rank 0 only
///   for (epoch ...) {
///     train ...;                                    // gradients all-reduced through pg
///     monitor.on_epoch_end(epoch, metrics, step);   // every rank, same point: one broadcast
///     if (monitor.should_stop()) break;             // rank 0's decision, on every rank
///   }
///
/// Rank 0 records and writes the run; other ranks create no run folder and do no probe pass
/// and no frame work. on_epoch_end broadcasts rank 0's stop decision (one int32) from rank 0
/// on every call; should_stop() only reads the answer. A broadcast that fails (a rank died) or
/// does not finish within `timeout` (a rank hangs) stops that rank with a one-line error in
/// stop_reason() and the log, and the monitor makes no more collective calls. docs/DISTRIBUTED.md.
#pragma once
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/torch.h>

#include <chrono>

#include "mmphate/monitor/monitor.hpp"

namespace mmphate::torchlayer {

struct DistributedOptions {
  /// The group training all-reduces through (or a separate one of the same ranks). Held by
  /// the monitor until it is destroyed.
  c10::intrusive_ptr<c10d::ProcessGroup> process_group;
  /// How long on_epoch_end waits for rank 0's decision: as long as rank 0 may lag behind the
  /// other ranks at an epoch end (validation, checkpoints). Default: c10d's default timeout.
  std::chrono::milliseconds timeout = kProcessGroupDefaultTimeout;
  /// Where the broadcast's tensor lives: default CPU, the current CUDA device for "nccl".
  c10::optional<torch::Device> device;
};

/// Checks the options (throws mmphate::Error naming the problem) and returns the Monitor's hook.
mmphate::DistributedHook distributed(DistributedOptions options);

}  // namespace mmphate::torchlayer
