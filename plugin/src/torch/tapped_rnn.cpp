#include "mmphate/torch/tapped_rnn.hpp"

#include <torch/cuda.h>

#include "mmphate/error.hpp"

namespace mmphate::torchlayer {

void CaptureSlot::offer(const torch::Tensor& output, bool batch_first, int directions) {
  if (!armed_) return;
  directions_ = directions;
  torch::Tensor seq = batch_first ? output : output.transpose(0, 1);
  // Always a copy (an in-place op on the output later must not change the capture).
  // Non-blocking from CUDA; take() synchronises before anyone reads it.
  from_cuda_ = from_cuda_ || seq.is_cuda();
  captured_ = seq.detach().to(torch::kCPU, torch::kFloat32, /*non_blocking=*/true, /*copy=*/true).contiguous();
}

void CaptureSlot::offer_step(const torch::Tensor& hidden) {
  if (!armed_) return;
  if (hidden.dim() != 2)
    throw Error("module '" + name_ + "': offer_step expects one step's hidden state [batch, units], got " +
                std::to_string(hidden.dim()) + " dimensions");
  from_cuda_ = from_cuda_ || hidden.is_cuda();
  steps_.push_back(hidden.detach().to(torch::kCPU, torch::kFloat32, /*non_blocking=*/true, /*copy=*/true));
}

torch::Tensor CaptureSlot::take() {
  if (from_cuda_) {
    torch::cuda::synchronize();  // the non-blocking device-to-host copies must have landed
    from_cuda_ = false;
  }
  if (!captured_.defined() && !steps_.empty()) {
    captured_ = torch::stack(steps_, 1).contiguous();  // [batch, time, units]
    steps_.clear();
  }
  if (!captured_.defined())
    throw Error("module '" + name_ + "' produced no output while recording: is it called by the probe forward?");
  if (captured_.dim() != 3)
    throw Error("module '" + name_ + "' output has " + std::to_string(captured_.dim()) +
                " dimensions; expected [batch, time, units]");
  torch::Tensor out = captured_;
  captured_ = torch::Tensor();
  return out;
}

std::vector<RecurrentModuleInfo> find_recurrent_modules(const torch::nn::Module& model) {
  std::vector<RecurrentModuleInfo> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const torch::nn::Module& m = *item.value();
    RecurrentModuleInfo info;
    info.name = item.key();
    if (dynamic_cast<const TappedLSTMImpl*>(&m)) { info.kind = "TappedLSTM"; info.tapped = true; }
    else if (dynamic_cast<const TappedGRUImpl*>(&m)) { info.kind = "TappedGRU"; info.tapped = true; }
    else if (dynamic_cast<const TappedRNNImpl*>(&m)) { info.kind = "TappedRNN"; info.tapped = true; }
    else if (dynamic_cast<const torch::nn::LSTMImpl*>(&m)) info.kind = "LSTM";
    else if (dynamic_cast<const torch::nn::GRUImpl*>(&m)) info.kind = "GRU";
    else if (dynamic_cast<const torch::nn::RNNImpl*>(&m)) info.kind = "RNN";
    else if (dynamic_cast<const torch::nn::LSTMCellImpl*>(&m)) info.kind = "LSTMCell";
    else if (dynamic_cast<const torch::nn::GRUCellImpl*>(&m)) info.kind = "GRUCell";
    else if (dynamic_cast<const torch::nn::RNNCellImpl*>(&m)) info.kind = "RNNCell";
    else continue;
    // The module wrapped inside a tapped one is reported with its wrapper only.
    if (!out.empty() && out.back().tapped && info.name == out.back().name + ".inner") continue;
    out.push_back(info);
  }
  return out;
}

}  // namespace mmphate::torchlayer
