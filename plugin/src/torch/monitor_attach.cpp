#include "mmphate/torch/monitor_attach.hpp"

#include "mmphate/error.hpp"

namespace mmphate::torchlayer {

void attach(Monitor& monitor, std::shared_ptr<torch::nn::Module> model, std::shared_ptr<CaptureSlot> slot,
            ProbeSet probes, Recorder::ProbeForward forward) {
  if (!model || !slot) throw Error("attach: the model and the capture slot must not be null");
  if (!probes.inputs.defined() || probes.inputs.size(0) < 1) throw Error("attach: the probe set is empty");
  std::vector<std::int64_t> labels = probes.labels;
  auto recorder = std::make_shared<Recorder>(std::move(model), std::move(slot), std::move(probes), std::move(forward),
                                             monitor.store());
  monitor.set_recorder([recorder](std::int64_t epoch, std::int64_t step) { recorder->record(epoch, step); },
                       std::move(labels));
}

}  // namespace mmphate::torchlayer
