// Connects a model's tapped recurrent layer to a Monitor: afterwards monitor.on_epoch_end()
// records the probe set's hidden states of that layer (Recorder: eval, no grad, mode restored)
// into the monitor's SnapshotStore.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "mmphate/monitor.hpp"
#include "mmphate/torch/recorder.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

namespace mmphate::torchlayer {

// The recorder is owned by the monitor's record hook; `forward` runs the model on the probes.
// With the config's process.blas_threads = "torch" (default) it also calls align_blas_threads().
// On a distributed monitor's ranks other than 0 it checks the arguments and does nothing else.
void attach(Monitor& monitor, std::shared_ptr<torch::nn::Module> model, std::shared_ptr<CaptureSlot> slot,
            ProbeSet probes, Recorder::ProbeForward forward);

// Shrinks OpenBLAS's process-wide thread pool to torch::get_num_threads() unless the
// environment sizes it (OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS). LibTorch's CPU matrix
// products run on that pool, which torch::set_num_threads does not size: a loop that asked
// torch for one thread still ran every product on all cores, and its pool's spinning workers
// competed with the updater (2.2x slower training with one monitor, docs/PERFORMANCE.md).
// The pool's size changes how products split their sums, so a program that compares runs with
// and without a monitor bit for bit calls this itself before training. Returns the pool size.
int align_blas_threads();

}  // namespace mmphate::torchlayer
