#include "mmphate/torch/tapped_rnn.hpp"

#include <torch/cuda.h>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

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
    if (auto* t = dynamic_cast<const TappedLSTMImpl*>(&m)) { info.kind = "TappedLSTM"; info.tapped = true; info.layers = t->options.num_layers(); }
    else if (auto* g = dynamic_cast<const TappedGRUImpl*>(&m)) { info.kind = "TappedGRU"; info.tapped = true; info.layers = g->options.num_layers(); }
    else if (auto* r = dynamic_cast<const TappedRNNImpl*>(&m)) { info.kind = "TappedRNN"; info.tapped = true; info.layers = r->options.num_layers(); }
    else if (auto* l = dynamic_cast<const torch::nn::LSTMImpl*>(&m)) { info.kind = "LSTM"; info.layers = l->options.num_layers(); }
    else if (auto* gu = dynamic_cast<const torch::nn::GRUImpl*>(&m)) { info.kind = "GRU"; info.layers = gu->options.num_layers(); }
    else if (auto* rn = dynamic_cast<const torch::nn::RNNImpl*>(&m)) { info.kind = "RNN"; info.layers = rn->options.num_layers(); }
    else if (dynamic_cast<const torch::nn::LSTMCellImpl*>(&m)) info.kind = "LSTMCell";
    else if (dynamic_cast<const torch::nn::GRUCellImpl*>(&m)) info.kind = "GRUCell";
    else if (dynamic_cast<const torch::nn::RNNCellImpl*>(&m)) info.kind = "RNNCell";
    else continue;
    out.push_back(info);
  }
  return out;
}

namespace detail {

void warn_last_layer_only(const char* kind, const std::string& name, std::int64_t layers) {
  logger()->warn("{} '{}' fuses {} layers and records only its last one ('{}'); construct it with "
                 "mmphate::torchlayer::LayerCapture::all and attach slots() to record every layer",
                 kind, name, layers, name + ".l" + std::to_string(layers - 1));
}

void throw_layer_not_captured(const char* kind, const std::string& name, std::int64_t layer, std::int64_t layers) {
  if (layer < 0 || layer >= layers)
    throw Error(std::string(kind) + " '" + name + "': no layer " + std::to_string(layer) + " (it has " +
                std::to_string(layers) + ", 0-based)");
  throw Error(std::string(kind) + " '" + name + "': layer " + std::to_string(layer) + " of " +
              std::to_string(layers) + " is inside the fused module; construct it with "
              "mmphate::torchlayer::LayerCapture::all to record inner layers");
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward_by_layer(
    const torch::nn::detail::RNNOptionsBase& o, const std::vector<torch::Tensor>& weights, bool training,
    const torch::Tensor& input, const torch::Tensor& h0, const torch::Tensor& c0,
    const std::vector<std::shared_ptr<CaptureSlot>>& slots, const char* kind, const std::string& name) {
  const bool lstm = c10::get_if<torch::enumtype::kLSTM>(&o.mode()) != nullptr;
  const bool gru = c10::get_if<torch::enumtype::kGRU>(&o.mode()) != nullptr;
  const bool relu = c10::get_if<torch::enumtype::kRNN_RELU>(&o.mode()) != nullptr;
  const std::int64_t layers = o.num_layers(), dirs = o.bidirectional() ? 2 : 1;
  const std::string who = std::string(kind) + " '" + name + "'";
  if (input.dim() != 3)
    throw Error(who + ": recording every layer needs batched input ([batch, time, features] or [time, batch, "
                      "features]), got " + std::to_string(input.dim()) + " dimensions");
  if (weights.empty() || weights.size() % static_cast<std::size_t>(layers * dirs) != 0)
    throw Error(who + ": " + std::to_string(weights.size()) + " weight tensors do not split into " +
                std::to_string(layers) + " layers x " + std::to_string(dirs) + " directions");
  const std::size_t per_layer = weights.size() / static_cast<std::size_t>(layers);
  const std::int64_t batch = input.size(o.batch_first() ? 0 : 1);
  const std::int64_t out_hidden = o.proj_size() > 0 ? o.proj_size() : o.hidden_size();
  // The fused module's defaults: zero initial states of every layer.
  const torch::Tensor h = h0.defined() ? h0 : torch::zeros({layers * dirs, batch, out_hidden}, input.options());
  const torch::Tensor c = !lstm ? torch::Tensor()
                          : c0.defined() ? c0
                                         : torch::zeros({layers * dirs, batch, o.hidden_size()}, input.options());
  if (h.dim() != 3 || h.size(0) != layers * dirs || (lstm && (c.dim() != 3 || c.size(0) != layers * dirs)))
    throw Error(who + ": the initial hidden state must hold " + std::to_string(layers * dirs) +
                " layer-directions [layers * directions, batch, hidden], got " + c10::str(h.sizes()));

  torch::Tensor x = input, out;
  std::vector<torch::Tensor> hs, cs;
  for (std::int64_t l = 0; l < layers; ++l) {
    CaptureSlot* slot = static_cast<std::size_t>(l) < slots.size() ? slots[static_cast<std::size_t>(l)].get() : nullptr;
    try {
      const std::vector<torch::Tensor> w(weights.begin() + static_cast<std::ptrdiff_t>(l * per_layer),
                                         weights.begin() + static_cast<std::ptrdiff_t>((l + 1) * per_layer));
      const torch::Tensor hl = h.narrow(0, l * dirs, dirs);
      if (lstm) {
        auto r = torch::lstm(x, {hl, c.narrow(0, l * dirs, dirs)}, w, o.bias(), 1, 0.0, training, o.bidirectional(),
                             o.batch_first());
        out = std::get<0>(r);
        hs.push_back(std::get<1>(r));
        cs.push_back(std::get<2>(r));
      } else {
        auto r = gru ? torch::gru(x, hl, w, o.bias(), 1, 0.0, training, o.bidirectional(), o.batch_first())
                 : relu ? torch::rnn_relu(x, hl, w, o.bias(), 1, 0.0, training, o.bidirectional(), o.batch_first())
                        : torch::rnn_tanh(x, hl, w, o.bias(), 1, 0.0, training, o.bidirectional(), o.batch_first());
        out = std::get<0>(r);
        hs.push_back(std::get<1>(r));
      }
      if (slot) slot->offer(out, o.batch_first(), static_cast<int>(dirs));
    } catch (...) {
      if (slot) slot->note_failure();  // the layer that threw is the one a failed recording names
      throw;
    }
    // The fused kernel drops out between layers, never after the last.
    x = l + 1 < layers && training && o.dropout() > 0 ? torch::dropout(out, o.dropout(), true) : out;
  }
  return {out, torch::cat(hs, 0), lstm ? torch::cat(cs, 0) : torch::Tensor()};
}

}  // namespace detail

std::tuple<torch::Tensor, std::tuple<torch::Tensor, torch::Tensor>> TappedLSTMImpl::forward(
    const torch::Tensor& input, torch::optional<std::tuple<torch::Tensor, torch::Tensor>> hx) {
  try {
    if (by_layer()) {
      torch::Tensor h0, c0;
      if (hx) std::tie(h0, c0) = *hx;
      auto r = run_by_layer(input, h0, c0);
      return {std::get<0>(r), {std::get<1>(r), std::get<2>(r)}};
    }
    auto out = inner->forward(input, std::move(hx));
    offer_output(std::get<0>(out));
    return out;
  } catch (...) {
    note_failure();
    throw;
  }
}

std::tuple<torch::Tensor, torch::Tensor> TappedGRUImpl::forward(const torch::Tensor& input, torch::Tensor hx) {
  return forward_one_state(input, std::move(hx));
}

std::tuple<torch::Tensor, torch::Tensor> TappedRNNImpl::forward(const torch::Tensor& input, torch::Tensor hx) {
  return forward_one_state(input, std::move(hx));
}

}  // namespace mmphate::torchlayer
