#include "mmphate/torch/monitor_attach.hpp"

#include <cstdlib>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

// OpenBLAS's pool controls; weak so the layer links against any BLAS.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace mmphate::torchlayer {

int align_blas_threads() {
  if (!openblas_set_num_threads || !openblas_get_num_threads) return 0;
  const int pool = openblas_get_num_threads();
  if (std::getenv("OPENBLAS_NUM_THREADS") || std::getenv("GOTO_NUM_THREADS")) return pool;  // the user sized it
  const int torch_threads = std::max(1, at::get_num_threads());
  if (pool <= torch_threads) return pool;
  openblas_set_num_threads(torch_threads);
  logger()->info("monitor: OpenBLAS's thread pool follows torch::get_num_threads(): {} thread(s), was {} "
                 "(process.blas_threads: \"keep\" leaves it)",
                 torch_threads, pool);
  return torch_threads;
}

void attach(Monitor& monitor, std::shared_ptr<torch::nn::Module> model, std::shared_ptr<CaptureSlot> slot,
            ProbeSet probes, Recorder::ProbeForward forward) {
  if (!model || !slot) throw Error("attach: the model and the capture slot must not be null");
  attach(monitor, std::move(model), std::vector<std::shared_ptr<CaptureSlot>>{std::move(slot)}, std::move(probes),
         std::move(forward));
}

void attach(Monitor& monitor, std::shared_ptr<torch::nn::Module> model,
            std::vector<std::shared_ptr<CaptureSlot>> slots, ProbeSet probes, Recorder::ProbeForward forward) {
  if (!model) throw Error("attach: the model must not be null");
  if (slots.empty()) throw Error("attach: no capture slot given (pass at least one tapped layer's slot)");
  for (const auto& s : slots)
    if (!s) throw Error("attach: a capture slot is null");
  if (!probes.inputs.defined() || probes.inputs.size(0) < 1) throw Error("attach: the probe set is empty");
  // Data-parallel: only rank 0 records (docs/DISTRIBUTED.md); other ranks keep their model and
  // process settings untouched and never run the probes.
  if (monitor.rank() != 0) return;
  std::vector<std::int64_t> labels = probes.labels;
  // Built (and so validated) before anything process-wide changes.
  auto recorder = std::make_shared<Recorder>(std::move(model), std::move(slots), std::move(probes), std::move(forward),
                                             monitor.store());
  if (monitor.config().process.blas_threads == "torch") align_blas_threads();
  monitor.set_recorder([recorder](std::int64_t epoch, std::int64_t step) { recorder->record(epoch, step); },
                       std::move(labels));
}

}  // namespace mmphate::torchlayer
