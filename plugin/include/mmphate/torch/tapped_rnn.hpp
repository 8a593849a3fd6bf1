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

namespace mmphate::torchlayer {

// Where a tapped module leaves its output while armed: [batch, time, units] float32 on the
// CPU (units = directions x hidden_size, direction-major as LibTorch lays them out).
class CaptureSlot {
 public:
  explicit CaptureSlot(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  void arm() { armed_ = true; captured_ = torch::Tensor(); }
  void disarm() { armed_ = false; }
  bool armed() const { return armed_; }
  // Called by the module: output is [batch, time, units] or, when !batch_first, [time, batch, units].
  void offer(const torch::Tensor& output, bool batch_first);
  // The captured [batch, time, units] tensor; throws mmphate::Error naming the module when
  // nothing (or something of the wrong rank) was captured.
  torch::Tensor take();

 private:
  std::string name_;
  bool armed_ = false;
  torch::Tensor captured_;
};

class TappedLSTMImpl : public torch::nn::Module {
 public:
  explicit TappedLSTMImpl(const torch::nn::LSTMOptions& options, const std::string& name = "lstm");
  std::tuple<torch::Tensor, std::tuple<torch::Tensor, torch::Tensor>> forward(
      const torch::Tensor& input, torch::optional<std::tuple<torch::Tensor, torch::Tensor>> hx = {});
  std::shared_ptr<CaptureSlot> slot() const { return slot_; }
  torch::nn::LSTM inner{nullptr};

 private:
  std::shared_ptr<CaptureSlot> slot_;
};
TORCH_MODULE(TappedLSTM);

class TappedGRUImpl : public torch::nn::Module {
 public:
  explicit TappedGRUImpl(const torch::nn::GRUOptions& options, const std::string& name = "gru");
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& input, torch::Tensor hx = {});
  std::shared_ptr<CaptureSlot> slot() const { return slot_; }
  torch::nn::GRU inner{nullptr};

 private:
  std::shared_ptr<CaptureSlot> slot_;
};
TORCH_MODULE(TappedGRU);

class TappedRNNImpl : public torch::nn::Module {
 public:
  explicit TappedRNNImpl(const torch::nn::RNNOptions& options, const std::string& name = "rnn");
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& input, torch::Tensor hx = {});
  std::shared_ptr<CaptureSlot> slot() const { return slot_; }
  torch::nn::RNN inner{nullptr};

 private:
  std::shared_ptr<CaptureSlot> slot_;
};
TORCH_MODULE(TappedRNN);

}  // namespace mmphate::torchlayer
