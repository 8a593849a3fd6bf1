#include "mmphate/torch/recorder.hpp"

#include <algorithm>
#include <map>
#include <random>

#include "mmphate/error.hpp"

namespace mmphate::torchlayer {
namespace {

// Restores every module's own training mode (a submodule the user froze in eval stays in
// eval) and disarms the slots, whatever happens in between.
class RecordingScope {
 public:
  RecordingScope(torch::nn::Module& model, const std::vector<std::shared_ptr<CaptureSlot>>& slots)
      : model_(model), slots_(slots) {
    for (const auto& m : model_.modules(/*include_self=*/true)) modes_.emplace_back(m, m->is_training());
    model_.eval();
    for (const auto& s : slots_) s->arm();
  }
  ~RecordingScope() {
    for (const auto& s : slots_) s->disarm();
    // Module::train() recurses into children, so restore parents first, children after.
    for (const auto& [m, training] : modes_) m->train(training);
  }

 private:
  torch::nn::Module& model_;
  const std::vector<std::shared_ptr<CaptureSlot>>& slots_;
  std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> modes_;
};

// One line: LibTorch messages can span lines (shapes, argument lists); long ones are cut.
std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  std::string out;
  for (char c : text)
    if (!(c == ' ' && (out.empty() || out.back() == ' '))) out += c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > 400) out = out.substr(0, 397) + "...";
  return out;
}

// What most often breaks a probe pass after training starts: the model was moved to another
// device or dtype than the probes were built on. Says so when it is the case.
std::string placement_hint(const torch::nn::Module& model, const torch::Tensor& inputs) {
  for (const auto& p : model.parameters()) {
    if (p.device() != inputs.device())
      return " (the probe inputs are on " + inputs.device().str() + ", the model's parameters on " + p.device().str() +
             ": give attach() probes on " + p.device().str() + ", or move them in the probe forward)";
    if (p.is_floating_point() && inputs.is_floating_point() && p.scalar_type() != inputs.scalar_type())
      return std::string(" (the probe inputs are ") + c10::toString(inputs.scalar_type()) + ", the model's parameters " +
             c10::toString(p.scalar_type()) + ": give attach() probes of that dtype, or convert them in the probe forward)";
    break;
  }
  return "";
}

}  // namespace

ProbeSet ProbeSet::stratified(const torch::Tensor& inputs, const torch::Tensor& labels, int per_class,
                              std::uint64_t seed) {
  if (per_class < 1) throw Error("probe set: per_class must be >= 1, got " + std::to_string(per_class));
  if (labels.dim() != 1 || labels.size(0) != inputs.size(0))
    throw Error("probe set: need one label per input (" + std::to_string(inputs.size(0)) + " inputs)");
  const torch::Tensor lab = labels.to(torch::kCPU, torch::kLong).contiguous();
  const std::int64_t* l = lab.data_ptr<std::int64_t>();
  std::map<std::int64_t, std::vector<std::int64_t>> by_class;
  for (std::int64_t i = 0; i < lab.size(0); ++i) by_class[l[i]].push_back(i);
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> chosen;
  ProbeSet out;
  for (auto& [cls, idx] : by_class) {
    if (static_cast<int>(idx.size()) < per_class)
      throw Error("probe set: class " + std::to_string(cls) + " has " + std::to_string(idx.size()) +
                  " examples, fewer than per_class = " + std::to_string(per_class));
    std::shuffle(idx.begin(), idx.end(), rng);
    for (int i = 0; i < per_class; ++i) {
      chosen.push_back(idx[i]);
      out.labels.push_back(cls);
    }
  }
  out.inputs = inputs.index_select(0, torch::tensor(chosen, torch::kLong).to(inputs.device()));
  return out;
}

Recorder::Recorder(std::shared_ptr<torch::nn::Module> model, std::shared_ptr<CaptureSlot> slot, ProbeSet probes,
                   ProbeForward forward, SnapshotStore& store)
    : Recorder(std::move(model), std::vector<std::shared_ptr<CaptureSlot>>{std::move(slot)}, std::move(probes),
               std::move(forward), store) {}

Recorder::Recorder(std::shared_ptr<torch::nn::Module> model, std::vector<std::shared_ptr<CaptureSlot>> slots,
                   ProbeSet probes, ProbeForward forward, SnapshotStore& store)
    : model_(std::move(model)), slots_(std::move(slots)), probes_(std::move(probes)), forward_(std::move(forward)),
      store_(store) {
  if (!model_ || !forward_) throw Error("recorder: model, capture slot and probe forward are required");
  if (slots_.empty()) throw Error("recorder: no capture slot given (attach at least one tapped layer)");
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i]) throw Error("recorder: capture slot " + std::to_string(i) + " is null");
    for (std::size_t j = 0; j < i; ++j)
      if (slots_[j]->name() == slots_[i]->name())
        throw Error("recorder: two capture slots are named '" + slots_[i]->name() +
                    "'; give each tapped module its own name, e.g. TappedLSTM(options, \"decoder\")");
    label_ += (i ? ", '" : "'") + slots_[i]->name() + "'";
  }
  label_ = (slots_.size() > 1 ? "layers " : "layer ") + label_;
  if (!probes_.inputs.defined() || probes_.inputs.dim() < 1 || probes_.inputs.size(0) == 0)
    throw Error("recorder for " + label_ + ": the probe set is empty");
  for (std::int64_t len : probes_.lengths)
    if (len < 1)
      throw Error("recorder for " + label_ + ": probe lengths must be >= 1, got " + std::to_string(len));
  if (!probes_.lengths.empty() && static_cast<std::int64_t>(probes_.lengths.size()) != probes_.inputs.size(0))
    throw Error("recorder for " + label_ + ": " + std::to_string(probes_.lengths.size()) + " lengths for " +
                std::to_string(probes_.inputs.size(0)) + " probes");
  if (!probes_.labels.empty() && static_cast<std::int64_t>(probes_.labels.size()) != probes_.inputs.size(0))
    throw Error("recorder for " + label_ + ": " + std::to_string(probes_.labels.size()) + " labels for " +
                std::to_string(probes_.inputs.size(0)) + " probes");
}

std::string Recorder::probe_pass_error(const std::string& cause) const {
  // The tapped module whose forward threw says so (CaptureSlot::note_failure); otherwise the
  // error came from the user's forward around the tapped layers.
  for (const auto& s : slots_)
    if (s->failed())
      return "the probe pass failed on layer '" + s->name() + "': " + one_line(cause) +
             placement_hint(*model_, probes_.inputs);
  return "the probe pass for " + label_ + " failed outside the tapped module(s): " + one_line(cause) +
         placement_hint(*model_, probes_.inputs);
}

void Recorder::record(std::int64_t epoch, std::int64_t global_step) {
  std::vector<torch::Tensor> seqs;  // per slot [S, T, U_l]
  {
    RecordingScope scope(*model_, slots_);
    torch::NoGradGuard no_grad;
    try {
      forward_(probes_.inputs);
      for (const auto& s : slots_) seqs.push_back(s->take());
    } catch (const c10::Error& e) {
      // what() carries a multi-line C++ backtrace: a frame_failed event needs the cause.
      throw Error(probe_pass_error(e.what_without_backtrace()));
    } catch (const Error&) {
      throw;  // ours: one line, names the module already
    } catch (const std::exception& e) {
      throw Error(probe_pass_error(e.what()));
    }
  }
  const std::int64_t S = probes_.inputs.size(0);
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].size(0) != S)
      throw Error("module '" + slots_[i]->name() + "' returned a batch of " + std::to_string(seqs[i].size(0)) +
                  " sequences for " + std::to_string(S) + " probes");
    if (seqs[i].size(1) != seqs[0].size(1))
      throw Error("layers '" + slots_[0]->name() + "' (" + std::to_string(seqs[0].size(1)) + " steps) and '" +
                  slots_[i]->name() + "' (" + std::to_string(seqs[i].size(1)) +
                  " steps) differ in time steps; one snapshot needs equal steps (attach them to separate monitors)");
  }
  const torch::Tensor seq = seqs.size() == 1 ? seqs[0] : torch::cat(seqs, 2);  // [S, T, U]
  const torch::Tensor tus = seq.permute({1, 2, 0}).contiguous();               // [T, U, S]
  Snapshot s;
  s.epoch = epoch;
  s.global_step = global_step;
  s.steps = tus.size(0);
  s.units = tus.size(1);
  s.probes = tus.size(2);
  s.values.assign(tus.data_ptr<float>(), tus.data_ptr<float>() + tus.numel());
  if (slots_.size() == 1) {
    s.layer = slots_[0]->name();
    s.directions = slots_[0]->directions();
  } else {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      s.layers.push_back({slots_[i]->name(), seqs[i].size(2), slots_[i]->directions()});
      s.layer += (i ? "+" : "") + slots_[i]->name();
    }
  }
  if (!probes_.lengths.empty()) {
    const std::int64_t shortest = *std::min_element(probes_.lengths.begin(), probes_.lengths.end());
    const std::int64_t longest = *std::max_element(probes_.lengths.begin(), probes_.lengths.end());
    if (longest > s.steps)
      throw Error("recorder for " + label_ + ": a probe length of " + std::to_string(longest) +
                  " exceeds the " + std::to_string(s.steps) + " steps the module returned");
    s.step_valid.resize(static_cast<std::size_t>(s.steps));
    for (std::int64_t t = 0; t < s.steps; ++t) s.step_valid[t] = t < shortest ? 1 : 0;
  }
  store_.push(std::move(s));
  ++records_;
}

void Recorder::set_every_n_steps(std::int64_t n) {
  if (n < 0) throw Error("recorder: every_n_steps must be >= 0 (0: off), got " + std::to_string(n));
  every_n_steps_ = n;
}

bool Recorder::maybe_record(std::int64_t global_step) {
  if (every_n_steps_ <= 0 || global_step % every_n_steps_ != 0) return false;
  // Key after the newest snapshot held (also after resume()), so history is never replaced.
  const auto view = store_.view();
  record(view.snapshots.empty() ? 0 : view.snapshots.back()->epoch + 1, global_step);
  return true;
}

}  // namespace mmphate::torchlayer
