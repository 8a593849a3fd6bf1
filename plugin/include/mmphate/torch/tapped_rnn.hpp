/// @file
/// Tapped recurrent modules: drop-in replacements for torch::nn::RNN, LSTM and GRU that,
/// while a recording is armed, hand the layer's full output sequence to a CaptureSlot.
///
/// LibTorch has no forward hooks, so capture means wrapping. Each Tapped*Impl owns the real
/// module (`inner`) and registers inner's parameters on itself under their own names, without
/// registering inner as a submodule: a tapped model's parameters, checkpoints and optimizer
/// state are named exactly like the plain model's (`lstm.weight_ih_l0`), so torch::save of one
/// torch::load()s into the other. They are the very tensors inner computes with; to(),
/// train()/eval() and clone() are forwarded to inner. The forward signature and outputs are
/// the wrapped module's, unchanged; when no slot is armed the only cost is one boolean test.
///
/// Fused multi-layer modules (num_layers > 1) compute every layer inside one ATen call and
/// return only the last layer's sequence. Constructed with LayerCapture::all, a tapped module
/// offers one slot per layer and, during a recording that arms an inner layer's slot, runs the
/// same weights one layer at a time (same kernels, same results to float rounding); training
/// forwards stay on the fused path.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace mmphate::torchlayer {

/// Where a tapped module leaves its output while armed: [batch, time, units] float32 on the
/// CPU (units = directions x hidden_size, direction-major as LibTorch lays them out).
///
/// Any module can be tapped: the Tapped* modules below call offer() themselves; a custom RNN
/// calls slot->offer(extract(output), batch_first) in its own forward (the "generic tap");
/// a step-by-step cell loop (LSTMCell, GRUCell, RNNCell) calls offer_step(h_t) once per step
/// and take() stacks the steps into [batch, time, units].
class CaptureSlot {
 public:
  explicit CaptureSlot(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  void arm() { armed_ = true; failed_ = false; captured_ = torch::Tensor(); steps_.clear(); }
  void disarm() { armed_ = false; }
  bool armed() const { return armed_; }
  /// Called by the module: output is [batch, time, units] or, when !batch_first, [time, batch, units].
  void offer(const torch::Tensor& output, bool batch_first, int directions = 1);
  /// 2 when the captured layer is bidirectional (units are direction-major).
  int directions() const { return directions_; }
  /// Called by a cell loop once per time step with the step's hidden state [batch, units].
  void offer_step(const torch::Tensor& hidden);
  /// The captured [batch, time, units] tensor; throws mmphate::Error naming the module when
  /// nothing (or something of the wrong rank) was captured.
  torch::Tensor take();
  /// A module's forward threw while this slot was armed: the Recorder names this layer as
  /// the one that failed (the exception itself propagates unchanged).
  void note_failure() { failed_ = failed_ || armed_; }
  bool failed() const { return failed_; }

 private:
  std::string name_;
  bool armed_ = false;
  bool failed_ = false;
  torch::Tensor captured_;
  std::vector<torch::Tensor> steps_;
  int directions_ = 1;
  bool from_cuda_ = false;
};

/// The recurrent submodules of a model (plain or tapped RNN/LSTM/GRU and their cells), by
/// their dotted names, so a user can see what to replace with a Tapped* module or tap.
struct RecurrentModuleInfo {
  std::string name;  ///< e.g. "encoder.lstm"
  std::string kind;  ///< "LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "TappedLSTM", ...
  bool tapped = false;
  std::int64_t layers = 1;  ///< num_layers of a (fused) RNN/LSTM/GRU
};
std::vector<RecurrentModuleInfo> find_recurrent_modules(const torch::nn::Module& model);

/// Which layers of a fused multi-layer module can be recorded. `last`: the module's output
/// only (slot()); `all`: slot(l) for every layer l (a recording that arms an inner layer runs
/// the module layer by layer; see the file comment).
enum class LayerCapture { last, all };

namespace detail {
/// Non-template parts, in tapped_rnn.cpp.
void warn_last_layer_only(const char* kind, const std::string& name, std::int64_t layers);
[[noreturn]] void throw_layer_not_captured(const char* kind, const std::string& name, std::int64_t layer,
                                           std::int64_t layers);
/// Runs a fused module one layer at a time with its own weights (ATen's functional RNN with
/// num_layers = 1 per layer, inter-layer dropout as the fused kernel applies it), offering
/// layer l's output sequence to slots[l]. Returns (output, h_n, c_n); c_n only for an LSTM.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward_by_layer(
    const torch::nn::detail::RNNOptionsBase& options, const std::vector<torch::Tensor>& weights, bool training,
    const torch::Tensor& input, const torch::Tensor& h0, const torch::Tensor& c0,
    const std::vector<std::shared_ptr<CaptureSlot>>& slots, const char* kind, const std::string& name);
}  // namespace detail

/// The wrapper, shared by the three module kinds (CRTP: Derived is TappedLSTMImpl, ...):
/// `Inner` is torch::nn::LSTM, GRU or RNN.
template <class Derived, class Inner, class InnerOptions>
class TappedImpl : public torch::nn::Cloneable<Derived> {
 public:
  TappedImpl(const InnerOptions& options_, std::string name, LayerCapture layers)
      : options(options_), name_(std::move(name)), capture_(layers) {
    make_slots();
    reset();  ///< NOLINT: Cloneable's reset() is what clone() calls too
  }

  /// Builds inner and registers its parameters (and buffers) here under their own names.
  void reset() override {
    inner = Inner(options);
    for (const auto& p : inner->named_parameters(/*recurse=*/false))
      this->register_parameter(p.key(), p.value(), p.value().requires_grad());
    for (const auto& b : inner->named_buffers(/*recurse=*/false)) this->register_buffer(b.key(), b.value());
  }
  void reset_parameters() { inner->reset_parameters(); }

  /// inner is not a registered child, so what Module would propagate to children goes to it
  /// here. Its to() moves the shared tensors in place (our entries follow) and re-flattens
  /// the weights for cuDNN.
  void train(bool on = true) override {
    torch::nn::Module::train(on);
    inner->train(on);
  }
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override {
    inner->to(device, dtype, non_blocking);
  }
  void to(torch::Dtype dtype, bool non_blocking = false) override { inner->to(dtype, non_blocking); }
  void to(torch::Device device, bool non_blocking = false) override { inner->to(device, non_blocking); }

  /// Checkpoints of tapped models saved before parameters kept their plain names held them in a
  /// submodule "inner" ("lstm.inner.weight_ih_l0"): those still load (into the same tensors).
  void load(torch::serialize::InputArchive& archive) override {
    torch::serialize::InputArchive legacy;
    if (archive.try_read("inner", legacy)) {
      inner->load(legacy);
      return;
    }
    torch::nn::Module::load(archive);
  }

  /// A copy records into slots of its own (same names), never into the original's.
  std::shared_ptr<torch::nn::Module> clone(
      const torch::optional<torch::Device>& device = torch::nullopt) const override {
    auto copy = torch::nn::Cloneable<Derived>::clone(device);
    dynamic_cast<Derived&>(*copy).make_slots();  ///< Module is a virtual base
    return copy;
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "mmphate::" << Derived::kKind << "(";
    inner->pretty_print(stream);
    stream << ", name=" << name_ << (capture_ == LayerCapture::all ? ", layers=all" : "") << ")";
  }

  /// The module's output (the last layer's sequence).
  std::shared_ptr<CaptureSlot> slot() const { return slots_.back(); }
  /// Layer `layer` (0-based) of a fused multi-layer module; inner layers need LayerCapture::all.
  std::shared_ptr<CaptureSlot> slot(std::int64_t layer) const {
    const std::int64_t layers = options.num_layers();
    if (layer == layers - 1) return slots_.back();
    if (layer < 0 || layer >= layers || capture_ != LayerCapture::all)
      detail::throw_layer_not_captured(Derived::kKind, name_, layer, layers);
    return slots_[static_cast<std::size_t>(layer)];
  }
  /// Every recordable layer, first to last: one slot with LayerCapture::last, num_layers with all.
  const std::vector<std::shared_ptr<CaptureSlot>>& slots() const { return slots_; }
  LayerCapture layer_capture() const { return capture_; }
  const std::string& name() const { return name_; }

  InnerOptions options;
  Inner inner{nullptr};

 protected:
  /// Whether this forward must run layer by layer: only while an inner layer's slot is armed.
  bool by_layer() const {
    if (slots_.size() < 2) return false;
    for (std::size_t l = 0; l + 1 < slots_.size(); ++l)
      if (slots_[l]->armed()) return true;
    return false;
  }
  void offer_output(const torch::Tensor& output) {
    const std::shared_ptr<CaptureSlot>& last = slots_.back();
    if (!last->armed()) return;
    if (options.num_layers() > 1 && capture_ == LayerCapture::last && !warned_) {
      warned_ = true;
      detail::warn_last_layer_only(Derived::kKind, name_, options.num_layers());
    }
    last->offer(output, options.batch_first(), options.bidirectional() ? 2 : 1);
  }
  /// A layer-by-layer forward marks the layer that threw; otherwise every armed slot is marked.
  void note_failure() {
    for (const auto& s : slots_)
      if (s->failed()) return;
    for (const auto& s : slots_) s->note_failure();
  }
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> run_by_layer(const torch::Tensor& input,
                                                                       const torch::Tensor& h0,
                                                                       const torch::Tensor& c0) {
    return detail::forward_by_layer(inner->options_base, inner->all_weights(), this->is_training(), input, h0, c0,
                                    slots_, Derived::kKind, name_);
  }
  /// The forward of modules with one state tensor (GRU, RNN): fused, or layer by layer while
  /// an inner layer is recorded; a throw marks the failing slot.
  std::tuple<torch::Tensor, torch::Tensor> forward_one_state(const torch::Tensor& input, torch::Tensor hx) {
    try {
      if (by_layer()) {
        auto r = run_by_layer(input, hx, torch::Tensor());
        return {std::get<0>(r), std::get<1>(r)};
      }
      auto out = inner->forward(input, std::move(hx));
      offer_output(std::get<0>(out));
      return out;
    } catch (...) {
      note_failure();
      throw;
    }
  }

 private:
  void make_slots() {
    slots_.clear();
    const std::int64_t layers = options.num_layers();
    if (layers == 1) {
      slots_.push_back(std::make_shared<CaptureSlot>(name_));
      return;
    }
    /// Layer-qualified names ("lstm.l1", as LibTorch suffixes the weights) say which layer a
    /// recorded unit belongs to, also when only the last one is recorded.
    for (std::int64_t l = capture_ == LayerCapture::all ? 0 : layers - 1; l < layers; ++l)
      slots_.push_back(std::make_shared<CaptureSlot>(name_ + ".l" + std::to_string(l)));
  }

  std::string name_;
  LayerCapture capture_;
  std::vector<std::shared_ptr<CaptureSlot>> slots_;
  bool warned_ = false;
};

class TappedLSTMImpl : public TappedImpl<TappedLSTMImpl, torch::nn::LSTM, torch::nn::LSTMOptions> {
 public:
  static constexpr const char* kKind = "TappedLSTM";
  explicit TappedLSTMImpl(const torch::nn::LSTMOptions& options, std::string name = "lstm",
                          LayerCapture layers = LayerCapture::last)
      : TappedImpl(options, std::move(name), layers) {}
  TappedLSTMImpl(const torch::nn::LSTMOptions& options, LayerCapture layers) : TappedLSTMImpl(options, "lstm", layers) {}

  std::tuple<torch::Tensor, std::tuple<torch::Tensor, torch::Tensor>> forward(
      const torch::Tensor& input, torch::optional<std::tuple<torch::Tensor, torch::Tensor>> hx = {});

 protected:
  FORWARD_HAS_DEFAULT_ARGS({1, torch::nn::AnyValue(torch::optional<std::tuple<torch::Tensor, torch::Tensor>>())})
};
TORCH_MODULE(TappedLSTM);

class TappedGRUImpl : public TappedImpl<TappedGRUImpl, torch::nn::GRU, torch::nn::GRUOptions> {
 public:
  static constexpr const char* kKind = "TappedGRU";
  explicit TappedGRUImpl(const torch::nn::GRUOptions& options, std::string name = "gru",
                         LayerCapture layers = LayerCapture::last)
      : TappedImpl(options, std::move(name), layers) {}
  TappedGRUImpl(const torch::nn::GRUOptions& options, LayerCapture layers) : TappedGRUImpl(options, "gru", layers) {}

  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& input, torch::Tensor hx = {});

 protected:
  FORWARD_HAS_DEFAULT_ARGS({1, torch::nn::AnyValue(torch::Tensor())})
};
TORCH_MODULE(TappedGRU);

class TappedRNNImpl : public TappedImpl<TappedRNNImpl, torch::nn::RNN, torch::nn::RNNOptions> {
 public:
  static constexpr const char* kKind = "TappedRNN";
  explicit TappedRNNImpl(const torch::nn::RNNOptions& options, std::string name = "rnn",
                         LayerCapture layers = LayerCapture::last)
      : TappedImpl(options, std::move(name), layers) {}
  TappedRNNImpl(const torch::nn::RNNOptions& options, LayerCapture layers) : TappedRNNImpl(options, "rnn", layers) {}

  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& input, torch::Tensor hx = {});

 protected:
  FORWARD_HAS_DEFAULT_ARGS({1, torch::nn::AnyValue(torch::Tensor())})
};
TORCH_MODULE(TappedRNN);

}  // namespace mmphate::torchlayer
