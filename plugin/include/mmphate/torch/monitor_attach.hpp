/// @file
/// Connects a model's tapped recurrent layers to a Monitor: afterwards monitor.on_epoch_end()
/// records the probe set's hidden states of those layers (Recorder: eval, no grad, mode
/// restored; one probe pass) into the monitor's SnapshotStore, one snapshot per epoch.
///
/// Several layers (slots of separate tapped modules, or slots() of a fused multi-layer module
/// built with LayerCapture::all) go into one joint multislice graph: every slice (epoch, time
/// step) holds the units of all the layers, as M-PHATE embeds a multi-layer network, so one run
/// folder gets one frame per epoch and node_index.json's units_meta names each unit's layer.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "mmphate/monitor/monitor.hpp"
#include "mmphate/torch/recorder.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

namespace mmphate::torchlayer {

/// The recorder is owned by the monitor's record hook; `forward` runs the model on the probes.
/// With the config's process.blas_threads = "torch" (default) it also calls align_blas_threads().
/// On a distributed monitor's ranks other than 0 it checks the arguments and does nothing else.
void attach(Monitor& monitor, std::shared_ptr<torch::nn::Module> model, std::shared_ptr<CaptureSlot> slot,
            ProbeSet probes, Recorder::ProbeForward forward);
/// Several layers, one Monitor: attach(monitor, model.ptr(), {model->l0->slot(), model->l1->slot()}, ...)
/// or attach(monitor, model.ptr(), model->lstm->slots(), ...). Slots need distinct names.
void attach(Monitor& monitor, std::shared_ptr<torch::nn::Module> model,
            std::vector<std::shared_ptr<CaptureSlot>> slots, ProbeSet probes, Recorder::ProbeForward forward);

/// Shrinks OpenBLAS's process-wide thread pool to torch::get_num_threads() unless the
/// environment sizes it (OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS). LibTorch's CPU matrix
/// products run on that pool, which torch::set_num_threads does not size: a loop that asked
/// torch for one thread still ran every product on all cores, and its pool's spinning workers
/// competed with the updater (2.2x slower training with one monitor, docs/PERFORMANCE.md).
/// The pool's size changes how products split their sums, so a program that compares runs with
/// and without a monitor bit for bit calls this itself before training. Returns the pool size.
int align_blas_threads();

}  // namespace mmphate::torchlayer
