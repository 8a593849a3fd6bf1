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
void attach(Monitor& monitor, std::shared_ptr<torch::nn::Module> model, std::shared_ptr<CaptureSlot> slot,
            ProbeSet probes, Recorder::ProbeForward forward);

}  // namespace mmphate::torchlayer
