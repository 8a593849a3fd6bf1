/// @file
/// Umbrella header of mmphate::torch: everything of <mmphate/mmphate.hpp> plus the LibTorch
/// capture layer (README.md, "Capturing hidden states" and "Watching a training run"):
///  * TappedRNN / TappedLSTM / TappedGRU and CaptureSlot (drop-in recurrent modules that hand
///    their output sequence to a recording), find_recurrent_modules;
///  * ProbeSet and Recorder (probe pass after an epoch into a SnapshotStore);
///  * attach(monitor, model, slot, probes, forward) and align_blas_threads().
/// Names of the capture layer are in namespace mmphate::torchlayer.
#pragma once

#include "mmphate/mmphate.hpp"
#include "mmphate/torch/tapped_rnn.hpp"
#include "mmphate/torch/recorder.hpp"
#include "mmphate/torch/monitor_attach.hpp"
