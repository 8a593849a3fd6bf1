// Tapped recurrent modules: drop-in replacements for torch::nn::RNN, LSTM and GRU that,
// while a recording is armed, hand the layer's full output sequence to a CaptureSlot.
//
// LibTorch has no forward hooks, so capture means wrapping. Each Tapped*Impl registers the
// real module as the submodule "inner": parameters, to(device), train()/eval(),
// serialization and optimizers all see it (parameter names gain the prefix "inner."). The
// forward signature and outputs are the wrapped module's, unchanged; when the slot is not
// armed the only cost is one boolean test.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace mmphate::torchlayer {

// Where a tapped module leaves its output while armed: [batch, time, units] float32 on the
// CPU (units = directions x hidden_size, direction-major as LibTorch lays them out).
//
// Any module can be tapped: the Tapped* modules below call offer() themselves; a custom RNN
// calls slot->offer(extract(output), batch_first) in its own forward (the "generic tap");
// a step-by-step cell loop (LSTMCell, GRUCell, RNNCell) calls offer_step(h_t) once per step
// and take() stacks the steps into [batch, time, units]. For stacked networks, build the
// stack from single-layer tapped modules, one slot per layer (the fused multi-layer module
// only exposes its last layer's outputs).
class CaptureSlot {
 public:
  explicit CaptureSlot(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  void arm() { armed_ = true; captured_ = torch::Tensor(); steps_.clear(); }
  void disarm() { armed_ = false; }
  bool armed() const { return armed_; }
  // Called by the module: output is [batch, time, units] or, when !batch_first, [time, batch, units].
  void offer(const torch::Tensor& output, bool batch_first, int directions = 1);
  // 2 when the captured layer is bidirectional (units are direction-major).
  int directions() const { return directions_; }
  // Called by a cell loop once per time step with the step's hidden state [batch, units].
  void offer_step(const torch::Tensor& hidden);
  // The captured [batch, time, units] tensor; throws mmphate::Error naming the module when
  // nothing (or something of the wrong rank) was captured.
  torch::Tensor take();

 private:
  std::string name_;
  bool armed_ = false;
  torch::Tensor captured_;
  std::vector<torch::Tensor> steps_;
  int directions_ = 1;
  bool from_cuda_ = false;
};

// The recurrent submodules of a model (plain or tapped RNN/LSTM/GRU and their cells), by
// their dotted names, so a user can see what to replace with a Tapped* module or tap.
struct RecurrentModuleInfo {
  std::string name;  // e.g. "encoder.lstm"
  std::string kind;  // "LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "TappedLSTM", ...
  bool tapped = false;
};
std::vector<RecurrentModuleInfo> find_recurrent_modules(const torch::nn::Module& model);

// The wrapper, shared by the three module kinds: `Inner` is torch::nn::LSTM, GRU or RNN.
// forward() takes and returns exactly what Inner's forward does.
template <class Inner, class InnerOptions>
class TappedImpl : public torch::nn::Module {
 public:
  TappedImpl(const InnerOptions& options, const std::string& name)
      : slot_(std::make_shared<CaptureSlot>(name)) {
    inner = register_module("inner", Inner(options));
  }

  template <class... Hidden>
  auto forward(const torch::Tensor& input, Hidden&&... hx) {
    auto out = inner->forward(input, std::forward<Hidden>(hx)...);
    if (slot_->armed())
      slot_->offer(std::get<0>(out), inner->options.batch_first(), inner->options.bidirectional() ? 2 : 1);
    return out;
  }

  std::shared_ptr<CaptureSlot> slot() const { return slot_; }
  Inner inner{nullptr};

 private:
  std::shared_ptr<CaptureSlot> slot_;
};

class TappedLSTMImpl : public TappedImpl<torch::nn::LSTM, torch::nn::LSTMOptions> {
 public:
  explicit TappedLSTMImpl(const torch::nn::LSTMOptions& options, const std::string& name = "lstm")
      : TappedImpl(options, name) {}
};
TORCH_MODULE(TappedLSTM);

class TappedGRUImpl : public TappedImpl<torch::nn::GRU, torch::nn::GRUOptions> {
 public:
  explicit TappedGRUImpl(const torch::nn::GRUOptions& options, const std::string& name = "gru")
      : TappedImpl(options, name) {}
};
TORCH_MODULE(TappedGRU);

class TappedRNNImpl : public TappedImpl<torch::nn::RNN, torch::nn::RNNOptions> {
 public:
  explicit TappedRNNImpl(const torch::nn::RNNOptions& options, const std::string& name = "rnn")
      : TappedImpl(options, name) {}
};
TORCH_MODULE(TappedRNN);

}  // namespace mmphate::torchlayer
