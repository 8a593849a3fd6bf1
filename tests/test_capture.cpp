// Capture layer on real LibTorch modules: tapped RNN/LSTM/GRU behave exactly like the module
// they wrap (1 and 2 layers, bidirectional, both batch layouts) and share its checkpoints,
// fused multi-layer modules record every layer, and the Recorder stores the modules' own
// outputs for the probe set as [steps, units, probes] (several layers side by side),
// restoring the model's mode and reporting failures in one line.
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mmphate/error.hpp"
#include "monitor/frame_json.hpp"
#include "mmphate/log.hpp"
#include "mmphate/snapshot_store.hpp"
#include "mmphate/torch/recorder.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

using namespace mmphate;
using namespace mmphate::torchlayer;

namespace {

struct Case {
  int layers;
  bool bidirectional;
  bool batch_first;
};

const Case kCases[] = {{1, false, true}, {1, true, false}, {2, false, false}, {2, true, true}};

// Copies every parameter of `from` into `to` (a tapped module's parameters have the plain
// module's names).
void copy_parameters(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard g;
  auto src = from.named_parameters();
  for (auto& p : to.named_parameters()) {
    ASSERT_TRUE(src.contains(p.key())) << p.key();
    p.value().copy_(src[p.key()]);
  }
}

torch::Tensor input_for(const Case& c, int64_t batch, int64_t time, int64_t features) {
  return c.batch_first ? torch::randn({batch, time, features}) : torch::randn({time, batch, features});
}

}  // namespace

TEST(TappedModules, LstmMatchesThePlainModuleAndCapturesItsOutput) {
  torch::manual_seed(1);
  for (const Case& c : kCases) {
    auto opts = torch::nn::LSTMOptions(5, 7).num_layers(c.layers).bidirectional(c.bidirectional).batch_first(c.batch_first);
    TappedLSTM tapped(opts);
    torch::nn::LSTM plain(opts);
    copy_parameters(*tapped, *plain);
    EXPECT_EQ(tapped->parameters().size(), plain->parameters().size());
    const torch::Tensor x = input_for(c, 3, 4, 5);
    tapped->slot()->arm();
    auto a = tapped->forward(x);
    tapped->slot()->disarm();
    auto b = plain->forward(x);
    EXPECT_TRUE(torch::allclose(std::get<0>(a), std::get<0>(b)));
    EXPECT_TRUE(torch::allclose(std::get<0>(std::get<1>(a)), std::get<0>(std::get<1>(b))));
    EXPECT_TRUE(torch::allclose(std::get<1>(std::get<1>(a)), std::get<1>(std::get<1>(b))));
    EXPECT_EQ(tapped->slot()->directions(), c.bidirectional ? 2 : 1);
    const torch::Tensor cap = tapped->slot()->take();  // [batch, time, units]
    const torch::Tensor expect = c.batch_first ? std::get<0>(b) : std::get<0>(b).transpose(0, 1);
    ASSERT_EQ(cap.sizes(), expect.sizes());
    EXPECT_EQ(cap.size(2), 7 * (c.bidirectional ? 2 : 1));
    EXPECT_TRUE(torch::allclose(cap, expect));
  }
}

TEST(TappedModules, GruAndRnnMatchThePlainModules) {
  torch::manual_seed(2);
  for (const Case& c : kCases) {
    auto gopts = torch::nn::GRUOptions(5, 6).num_layers(c.layers).bidirectional(c.bidirectional).batch_first(c.batch_first);
    TappedGRU tg(gopts);
    torch::nn::GRU pg(gopts);
    copy_parameters(*tg, *pg);
    auto ropts = torch::nn::RNNOptions(5, 6).num_layers(c.layers).bidirectional(c.bidirectional).batch_first(c.batch_first);
    TappedRNN tr(ropts);
    torch::nn::RNN pr(ropts);
    copy_parameters(*tr, *pr);
    const torch::Tensor x = input_for(c, 2, 5, 5);
    tg->slot()->arm();
    tr->slot()->arm();
    auto ga = tg->forward(x), gb = pg->forward(x);
    auto ra = tr->forward(x), rb = pr->forward(x);
    EXPECT_TRUE(torch::allclose(std::get<0>(ga), std::get<0>(gb)));
    EXPECT_TRUE(torch::allclose(std::get<1>(ga), std::get<1>(gb)));
    EXPECT_TRUE(torch::allclose(std::get<0>(ra), std::get<0>(rb)));
    EXPECT_TRUE(torch::allclose(std::get<1>(ra), std::get<1>(rb)));
    const torch::Tensor gcap = tg->slot()->take(), rcap = tr->slot()->take();
    EXPECT_TRUE(torch::allclose(gcap, c.batch_first ? std::get<0>(gb) : std::get<0>(gb).transpose(0, 1)));
    EXPECT_TRUE(torch::allclose(rcap, c.batch_first ? std::get<0>(rb) : std::get<0>(rb).transpose(0, 1)));
  }
}

TEST(TappedModules, UnarmedSlotCapturesNothingAndSaysWhichModule) {
  TappedLSTM tapped(torch::nn::LSTMOptions(3, 4).batch_first(true), "encoder.lstm");
  tapped->forward(torch::randn({2, 3, 3}));
  try {
    tapped->slot()->take();
    FAIL() << "nothing was armed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.lstm"), std::string::npos) << e.what();
  }
}

namespace {

// A small sequence classifier with a tapped LSTM, as a user would write it.
struct ClassifierImpl : torch::nn::Module {
  ClassifierImpl() {
    lstm = register_module("lstm", TappedLSTM(torch::nn::LSTMOptions(4, 6).batch_first(true)));
    head = register_module("head", torch::nn::Linear(6, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto out = std::get<0>(lstm->forward(x));
    return head->forward(out.select(1, -1));
  }
  TappedLSTM lstm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Classifier);

}  // namespace

TEST(Recorder, StoresTheModulesOwnOutputsAsStepsUnitsProbes) {
  torch::manual_seed(3);
  Classifier model;
  model->train();
  const torch::Tensor inputs = torch::randn({30, 5, 4});
  const torch::Tensor labels = torch::arange(30, torch::kLong).remainder(3);
  ProbeSet probes = ProbeSet::stratified(inputs, labels, 2, 7);
  ASSERT_EQ(probes.inputs.size(0), 6);
  EXPECT_EQ(probes.labels, (std::vector<std::int64_t>{0, 0, 1, 1, 2, 2}));
  SnapshotStore store;
  Recorder rec(model.ptr(), model->lstm->slot(), probes, [&](const torch::Tensor& x) { model->forward(x); }, store);
  rec.record(0, 10);
  EXPECT_TRUE(model->is_training());  // mode restored
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());  // no autograd work

  model->eval();
  const torch::Tensor ref = std::get<0>(model->lstm->inner->forward(probes.inputs)).detach();  // [S, T, U]
  const auto view = store.view();
  ASSERT_EQ(view.snapshots.size(), 1u);
  const Snapshot& s = *view.snapshots.front();
  EXPECT_EQ(s.epoch, 0);
  EXPECT_EQ(s.global_step, 10);
  ASSERT_EQ(s.steps, 5);
  ASSERT_EQ(s.units, 6);
  ASSERT_EQ(s.probes, 6);
  const auto acc = ref.accessor<float, 3>();
  for (int t = 0; t < 5; ++t)
    for (int u = 0; u < 6; ++u)
      for (int p = 0; p < 6; ++p) EXPECT_FLOAT_EQ(s.values[(t * 6 + u) * 6 + p], acc[p][t][u]);
  EXPECT_EQ(s.layer, "lstm");
  EXPECT_EQ(s.directions, 1);
  rec.record(1);
  EXPECT_FALSE(model->is_training());  // an eval model stays in eval
  EXPECT_EQ(store.view().snapshots.size(), 2u);
}

TEST(Recorder, BadInputIsAClearError) {
  Classifier model;
  SnapshotStore store;
  ProbeSet empty;
  empty.inputs = torch::zeros({0, 5, 4});
  EXPECT_THROW(Recorder(model.ptr(), model->lstm->slot(), empty, [](const torch::Tensor&) {}, store), Error);
  ProbeSet probes;
  probes.inputs = torch::randn({4, 5, 4});
  // A forward that never calls the tapped module: the error names the module, the mode is restored.
  model->train();
  Recorder silent(model.ptr(), model->lstm->slot(), probes, [](const torch::Tensor&) {}, store);
  EXPECT_THROW(silent.record(0), Error);
  EXPECT_TRUE(model->is_training());
  EXPECT_THROW(ProbeSet::stratified(torch::randn({4, 2}), torch::tensor({0, 0, 0, 1}, torch::kLong), 2, 1), Error);
}

TEST(CaptureSlot, CellLoopStepsAssembleTheSequence) {
  // An LSTMCell driven step by step equals a one-layer LSTM with the same weights.
  torch::manual_seed(4);
  torch::nn::LSTMCell cell(3, 5);
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(3, 5).batch_first(true));
  {
    torch::NoGradGuard g;
    auto lp = lstm->named_parameters();
    auto cp = cell->named_parameters();
    lp["weight_ih_l0"].copy_(cp["weight_ih"]);
    lp["weight_hh_l0"].copy_(cp["weight_hh"]);
    lp["bias_ih_l0"].copy_(cp["bias_ih"]);
    lp["bias_hh_l0"].copy_(cp["bias_hh"]);
  }
  const torch::Tensor x = torch::randn({2, 6, 3});
  CaptureSlot slot("decoder.cell");
  slot.arm();
  torch::Tensor h = torch::zeros({2, 5}), c = torch::zeros({2, 5});
  for (int t = 0; t < 6; ++t) {
    std::tie(h, c) = cell->forward(x.select(1, t), std::make_tuple(h, c));
    slot.offer_step(h);
  }
  const torch::Tensor seq = slot.take();
  EXPECT_TRUE(torch::allclose(seq, std::get<0>(lstm->forward(x)), 1e-5, 1e-6));
  EXPECT_THROW(slot.offer_step(torch::zeros({2, 5, 1})), Error);  // still armed: a 3-D step is rejected
}

TEST(CaptureSlot, StackedSingleLayerTapsCaptureEveryLayer) {
  // Two tapped one-layer LSTMs equal the fused two-layer LSTM, and expose both layers.
  torch::manual_seed(5);
  TappedLSTM l0(torch::nn::LSTMOptions(4, 6).batch_first(true), "layer0");
  TappedLSTM l1(torch::nn::LSTMOptions(6, 6).batch_first(true), "layer1");
  torch::nn::LSTM fused(torch::nn::LSTMOptions(4, 6).num_layers(2).batch_first(true));
  {
    torch::NoGradGuard g;
    auto fp = fused->named_parameters();
    for (int layer = 0; layer < 2; ++layer) {
      auto p = (layer == 0 ? l0 : l1)->named_parameters();
      for (const char* w : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"})
        fp[std::string(w) + "_l" + std::to_string(layer)].copy_(p[std::string(w) + "_l0"]);
    }
  }
  const torch::Tensor x = torch::randn({3, 5, 4});
  l0->slot()->arm();
  l1->slot()->arm();
  const torch::Tensor h0 = std::get<0>(l0->forward(x));
  const torch::Tensor h1 = std::get<0>(l1->forward(h0));
  EXPECT_TRUE(torch::allclose(h1, std::get<0>(fused->forward(x)), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(l0->slot()->take(), h0));
  EXPECT_TRUE(torch::allclose(l1->slot()->take(), h1));
}

TEST(CaptureSlot, GenericTapOnACustomModule) {
  // A custom recurrent module taps itself with an extractor of its own output layout.
  struct ElmanImpl : torch::nn::Module {
    ElmanImpl() : slot(std::make_shared<CaptureSlot>("elman")) { w = register_parameter("w", torch::randn({3, 3})); }
    std::pair<torch::Tensor, int> forward(const torch::Tensor& x) {  // x: [time, batch, 3]
      std::vector<torch::Tensor> hs;
      torch::Tensor h = torch::zeros({x.size(1), 3});
      for (int64_t t = 0; t < x.size(0); ++t) hs.push_back(h = torch::tanh(x[t] + h.mm(w)));
      auto out = std::make_pair(torch::stack(hs, 0), 0);
      slot->offer(out.first, /*batch_first=*/false);  // extractor: .first, time-major
      return out;
    }
    torch::Tensor w;
    std::shared_ptr<CaptureSlot> slot;
  };
  auto m = std::make_shared<ElmanImpl>();
  const torch::Tensor x = torch::randn({4, 2, 3});
  m->slot->arm();
  const auto out = m->forward(x);
  EXPECT_TRUE(torch::allclose(m->slot->take(), out.first.transpose(0, 1)));
}

TEST(Recorder, FindsRecurrentModulesByName) {
  Classifier model;
  const auto found = find_recurrent_modules(*model);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, "lstm");
  EXPECT_EQ(found[0].kind, "TappedLSTM");
  EXPECT_TRUE(found[0].tapped);
  torch::nn::Sequential plain(torch::nn::GRU(3, 4), torch::nn::Linear(4, 2), torch::nn::LSTMCell(2, 2));
  const auto f2 = find_recurrent_modules(*plain);
  ASSERT_EQ(f2.size(), 2u);
  EXPECT_EQ(f2[0].kind, "GRU");
  EXPECT_EQ(f2[1].kind, "LSTMCell");
  EXPECT_FALSE(f2[0].tapped);
}

TEST(Recorder, VariableLengthsMarkPaddingAndScheduleRecordsEveryNSteps) {
  Classifier model;
  SnapshotStore store;
  ProbeSet probes;
  probes.inputs = torch::randn({3, 6, 4});
  probes.lengths = {6, 4, 5};  // steps 4 and 5 are padding for some probe
  Recorder rec(model.ptr(), model->lstm->slot(), probes, [&](const torch::Tensor& x) { model->forward(x); }, store);
  rec.set_every_n_steps(10);
  int recorded = 0;
  for (int step = 1; step <= 35; ++step) recorded += rec.maybe_record(step) ? 1 : 0;
  EXPECT_EQ(recorded, 3);  // steps 10, 20, 30
  const auto view = store.view();
  ASSERT_EQ(view.snapshots.size(), 3u);
  EXPECT_EQ(view.snapshots[2]->global_step, 30);
  EXPECT_EQ(view.snapshots[0]->step_valid, (std::vector<std::uint8_t>{1, 1, 1, 1, 0, 0}));
  EXPECT_THROW(rec.set_every_n_steps(-1), Error);
}

TEST(Recorder, KeepsFrozenSubmodulesInEvalAndKeysScheduledSnapshotsAfterTheNewest) {
  Classifier model;
  model->train();
  model->head->eval();  // the user froze the head
  SnapshotStore store;
  ProbeSet probes;
  probes.inputs = torch::randn({3, 5, 4});
  Recorder rec(model.ptr(), model->lstm->slot(), probes, [&](const torch::Tensor& x) { model->forward(x); }, store);
  rec.record(5);
  EXPECT_TRUE(model->is_training());
  EXPECT_TRUE(model->lstm->is_training());
  EXPECT_FALSE(model->head->is_training());
  rec.set_every_n_steps(1);
  ASSERT_TRUE(rec.maybe_record(7));
  const auto view = store.view();
  ASSERT_EQ(view.snapshots.size(), 2u);  // epoch 5 kept, the scheduled one keyed 6
  EXPECT_EQ(view.snapshots[0]->epoch, 5);
  EXPECT_EQ(view.snapshots[1]->epoch, 6);
  ProbeSet too_long;
  too_long.inputs = torch::randn({2, 5, 4});
  too_long.lengths = {5, 9};
  Recorder bad(model.ptr(), model->lstm->slot(), too_long, [&](const torch::Tensor& x) { model->forward(x); }, store);
  EXPECT_THROW(bad.record(10), Error);
  ProbeSet zero = too_long;
  zero.lengths = {0, 3};
  EXPECT_THROW(Recorder(model.ptr(), model->lstm->slot(), zero, [](const torch::Tensor&) {}, store), Error);
}

TEST(CaptureSlot, CaptureIsACopyNotAView) {
  CaptureSlot slot("x");
  slot.arm();
  torch::Tensor out = torch::ones({2, 3, 4});
  slot.offer(out, true);
  out.mul_(5);  // an in-place op after the module returned
  EXPECT_TRUE(torch::allclose(slot.take(), torch::ones({2, 3, 4})));
}

// ---- checkpoints: a tapped module keeps the wrapped module's parameter names ----------------

namespace {

std::vector<torch::Tensor> flat(const std::tuple<torch::Tensor, torch::Tensor>& r) {
  return {std::get<0>(r), std::get<1>(r)};
}
std::vector<torch::Tensor> flat(const std::tuple<torch::Tensor, std::tuple<torch::Tensor, torch::Tensor>>& r) {
  return {std::get<0>(r), std::get<0>(std::get<1>(r)), std::get<1>(std::get<1>(r))};
}

// A model as a user registers the layer ("lstm.<weight>"), plus a head.
std::shared_ptr<torch::nn::Module> wrap(const std::shared_ptr<torch::nn::Module>& rnn) {
  auto m = std::make_shared<torch::nn::Module>();
  m->register_module("lstm", rnn);
  m->register_module("head", torch::nn::Linear(3, 2));
  return m;
}

std::vector<std::string> keys(const torch::nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& p : m.named_parameters()) out.push_back(p.key());
  return out;
}

// torch::save of one model, torch::load into the other (through memory), then the same
// outputs bit for bit; both directions.
template <class Plain, class Tapped, class Options>
void check_checkpoint_round_trip(const Options& opts) {
  const torch::Tensor x = torch::randn({3, 5, 4});
  for (int direction = 0; direction < 2; ++direction) {
    SCOPED_TRACE(direction == 0 ? "plain -> tapped" : "tapped -> plain");
    Plain plain(opts);
    Tapped tapped(opts);
    auto pm = wrap(plain.ptr()), tm = wrap(tapped.ptr());
    EXPECT_EQ(keys(*pm), keys(*tm));
    std::stringstream buf;
    if (direction == 0) {
      torch::save(pm, buf);
      ASSERT_NO_THROW(torch::load(tm, buf));
    } else {
      torch::save(tm, buf);
      ASSERT_NO_THROW(torch::load(pm, buf));
    }
    const auto a = flat(plain->forward(x)), b = flat(tapped->forward(x));
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "output " << i;
    for (const auto& p : pm->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), tm->named_parameters()[p.key()]));
  }
}

}  // namespace

TEST(TappedModules, CheckpointsLoadBothWaysWithThePlainModule) {
  torch::manual_seed(11);
  check_checkpoint_round_trip<torch::nn::LSTM, TappedLSTM>(
      torch::nn::LSTMOptions(4, 3).num_layers(2).bidirectional(true).batch_first(true));
  check_checkpoint_round_trip<torch::nn::GRU, TappedGRU>(torch::nn::GRUOptions(4, 3).num_layers(2).batch_first(true));
  check_checkpoint_round_trip<torch::nn::RNN, TappedRNN>(
      torch::nn::RNNOptions(4, 3).nonlinearity(torch::kReLU).batch_first(true));
  // A checkpoint of a tapped model saved with the former layout ("lstm.inner.weight_ih_l0")
  // still loads.
  {
    torch::nn::LSTM plain(torch::nn::LSTMOptions(4, 3).batch_first(true));
    auto holder = std::make_shared<torch::nn::Module>();
    holder->register_module("inner", plain.ptr());
    auto old_layout = wrap(holder);
    ASSERT_TRUE(old_layout->named_parameters().contains("lstm.inner.weight_ih_l0"));
    std::stringstream buf;
    torch::save(old_layout, buf);
    TappedLSTM tapped(torch::nn::LSTMOptions(4, 3).batch_first(true));
    auto tm = wrap(tapped.ptr());
    ASSERT_NO_THROW(torch::load(tm, buf));
    const torch::Tensor x = torch::randn({2, 5, 4});
    EXPECT_TRUE(torch::equal(std::get<0>(tapped->forward(x)), std::get<0>(plain->forward(x))));
  }
  // The names a user sees in a checkpoint or an optimizer: no "inner." level.
  TappedLSTM tapped(torch::nn::LSTMOptions(4, 3));
  const auto m = wrap(tapped.ptr());
  EXPECT_TRUE(m->named_parameters().contains("lstm.weight_ih_l0"));
  EXPECT_EQ(m->named_modules().size(), 3u);  // the model, lstm, head
}

TEST(TappedModules, ParametersAreTheTensorsTheWrappedModuleComputesWith) {
  torch::manual_seed(12);
  auto opts = torch::nn::LSTMOptions(4, 3).num_layers(2).dropout(0.5).batch_first(true);
  TappedLSTM tapped(opts);
  auto same_tensors = [&] {
    auto mine = tapped->named_parameters(/*recurse=*/false), theirs = tapped->inner->named_parameters(false);
    if (mine.size() != theirs.size() || tapped->inner->all_weights().size() != mine.size()) return false;
    for (const auto& p : theirs)
      if (!mine.contains(p.key()) || !mine[p.key()].is_same(p.value())) return false;
    return true;
  };
  EXPECT_TRUE(same_tensors());

  // An optimizer step on the tapped module's parameters is what the inner module computes with.
  const torch::Tensor x = torch::randn({2, 5, 4});
  tapped->eval();
  const torch::Tensor before = std::get<0>(tapped->forward(x)).detach().clone();
  torch::optim::SGD sgd(tapped->parameters(), torch::optim::SGDOptions(0.5));
  tapped->train();
  std::get<0>(tapped->forward(x)).sum().backward();
  sgd.step();
  tapped->eval();
  EXPECT_FALSE(torch::allclose(std::get<0>(tapped->forward(x)), before));
  torch::nn::LSTM plain(opts);
  copy_parameters(*tapped, *plain);
  plain->eval();
  EXPECT_TRUE(torch::equal(std::get<0>(tapped->forward(x)), std::get<0>(plain->forward(x))));

  // train()/eval() reach the inner module (its inter-layer dropout depends on it).
  auto model = wrap(tapped.ptr());
  model->train();
  EXPECT_TRUE(tapped->inner->is_training());
  model->eval();
  EXPECT_FALSE(tapped->inner->is_training());

  // to(dtype) moves the shared tensors in place.
  model->to(torch::kDouble);
  EXPECT_TRUE(same_tensors());
  for (const auto& w : tapped->inner->all_weights()) EXPECT_EQ(w.scalar_type(), torch::kDouble);
  plain->to(torch::kDouble);
  EXPECT_TRUE(torch::equal(std::get<0>(tapped->forward(x.to(torch::kDouble))),
                           std::get<0>(plain->forward(x.to(torch::kDouble)))));
  model->to(torch::kFloat);

  // clone(): the same values in tensors of its own, and slots of its own.
  auto copy = std::dynamic_pointer_cast<TappedLSTMImpl>(tapped->clone());
  ASSERT_TRUE(copy);
  auto cp = copy->named_parameters(false);
  for (const auto& p : tapped->named_parameters(false)) {
    EXPECT_FALSE(cp[p.key()].is_same(p.value())) << p.key();
    EXPECT_TRUE(torch::equal(cp[p.key()], p.value())) << p.key();
    EXPECT_TRUE(cp[p.key()].is_same(copy->inner->named_parameters(false)[p.key()])) << p.key();
  }
  EXPECT_NE(copy->slot(), tapped->slot());
  EXPECT_EQ(copy->slot()->name(), tapped->slot()->name());
  copy->eval();
  EXPECT_TRUE(torch::equal(std::get<0>(copy->forward(x)), std::get<0>(tapped->forward(x))));
  {
    torch::NoGradGuard g;
    cp["weight_ih_l0"].add_(1.0);  // the copy's weights are its own
  }
  EXPECT_FALSE(torch::equal(std::get<0>(copy->forward(x)), std::get<0>(tapped->forward(x))));
}

// ---- fused multi-layer modules: every layer recorded ----------------------------------------

namespace {

// Layer `layer` of a fused module as a one-layer module with the same weights.
template <class Plain, class Options>
Plain single_layer(const torch::nn::Module& fused, Options opts, std::int64_t layer, std::int64_t input_size) {
  opts.num_layers(1).input_size(input_size);
  Plain one(opts);
  torch::NoGradGuard g;
  auto src = fused.named_parameters();
  for (auto& p : one->named_parameters()) {
    std::string name = p.key();
    name.replace(name.find("_l0"), 3, "_l" + std::to_string(layer));
    p.value().copy_(src[name]);
  }
  one->eval();
  return one;
}

template <class Plain, class Tapped, class Options>
void check_every_layer(const Options& opts, std::int64_t out_size) {
  const std::int64_t layers = opts.num_layers(), dirs = opts.bidirectional() ? 2 : 1;
  Tapped tapped(opts, "enc", LayerCapture::all);
  Plain fused(opts);
  copy_parameters(*tapped, *fused);
  tapped->eval();
  fused->eval();
  ASSERT_EQ(static_cast<std::int64_t>(tapped->slots().size()), layers);
  for (std::int64_t l = 0; l < layers; ++l) {
    EXPECT_EQ(tapped->slot(l)->name(), "enc.l" + std::to_string(l));
    EXPECT_EQ(tapped->slot(l), tapped->slots()[static_cast<std::size_t>(l)]);
  }
  const torch::Tensor x = opts.batch_first() ? torch::randn({3, 6, opts.input_size()}) : torch::randn({6, 3, opts.input_size()});
  const auto expect = flat(fused->forward(x));

  // Not recording, or recording the last layer only: the fused path, bit for bit.
  auto plain_path = flat(tapped->forward(x));
  for (std::size_t i = 0; i < expect.size(); ++i) EXPECT_TRUE(torch::equal(plain_path[i], expect[i]));
  tapped->slot()->arm();
  plain_path = flat(tapped->forward(x));
  for (std::size_t i = 0; i < expect.size(); ++i) EXPECT_TRUE(torch::equal(plain_path[i], expect[i]));
  tapped->slot()->disarm();

  // Every layer armed: layer by layer, the same outputs and final states to float rounding.
  for (const auto& s : tapped->slots()) s->arm();
  const auto got = flat(tapped->forward(x));
  ASSERT_EQ(got.size(), expect.size());
  for (std::size_t i = 0; i < expect.size(); ++i) {
    ASSERT_EQ(got[i].sizes(), expect[i].sizes()) << "output " << i;
    EXPECT_TRUE(torch::allclose(got[i], expect[i], 1e-5, 1e-6)) << "output " << i;
  }
  // Each layer's capture equals that layer run on its own with the fused weights.
  torch::Tensor in = x;
  for (std::int64_t l = 0; l < layers; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    Plain one = single_layer<Plain>(*fused, opts, l, l == 0 ? opts.input_size() : out_size * dirs);
    in = std::get<0>(one->forward(in));
    const torch::Tensor cap = tapped->slot(l)->take();
    EXPECT_EQ(tapped->slot(l)->directions(), dirs);
    EXPECT_TRUE(torch::allclose(cap, opts.batch_first() ? in : in.transpose(0, 1), 1e-5, 1e-6));
  }
  for (const auto& s : tapped->slots()) s->disarm();
}

}  // namespace

TEST(TappedModules, EveryLayerOfAFusedModuleIsRecordedWithTheFusedOutputs) {
  torch::manual_seed(13);
  check_every_layer<torch::nn::LSTM, TappedLSTM>(torch::nn::LSTMOptions(4, 5).num_layers(3).batch_first(true), 5);
  check_every_layer<torch::nn::LSTM, TappedLSTM>(torch::nn::LSTMOptions(4, 5).num_layers(2).bidirectional(true), 5);
  check_every_layer<torch::nn::LSTM, TappedLSTM>(
      torch::nn::LSTMOptions(4, 5).num_layers(2).proj_size(3).batch_first(true), 3);
  check_every_layer<torch::nn::GRU, TappedGRU>(
      torch::nn::GRUOptions(4, 5).num_layers(2).bidirectional(true).batch_first(true), 5);
  check_every_layer<torch::nn::RNN, TappedRNN>(
      torch::nn::RNNOptions(4, 5).num_layers(3).nonlinearity(torch::kReLU).bias(false), 5);

  // With initial states, too.
  auto opts = torch::nn::LSTMOptions(4, 5).num_layers(2).batch_first(true);
  TappedLSTM tapped(opts, LayerCapture::all);
  torch::nn::LSTM fused(opts);
  copy_parameters(*tapped, *fused);
  const torch::Tensor x = torch::randn({3, 6, 4}), h0 = torch::randn({2, 3, 5}), c0 = torch::randn({2, 3, 5});
  for (const auto& s : tapped->slots()) s->arm();
  const auto got = flat(tapped->forward(x, std::make_tuple(h0, c0)));
  const auto expect = flat(fused->forward(x, std::make_tuple(h0, c0)));
  for (std::size_t i = 0; i < expect.size(); ++i) EXPECT_TRUE(torch::allclose(got[i], expect[i], 1e-5, 1e-6));
  EXPECT_EQ(tapped->slot(0)->take().size(2), 5);
}

namespace {

// Collects what the "mmphate" logger says while it lives.
struct LogCapture {
  LogCapture() : sink(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64)) { logger()->sinks().push_back(sink); }
  ~LogCapture() { logger()->sinks().pop_back(); }
  int count(const std::string& text) const {
    int n = 0;
    for (const auto& line : sink->last_formatted()) n += line.find(text) != std::string::npos ? 1 : 0;
    return n;
  }
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
};

}  // namespace

TEST(TappedModules, AFusedModuleRecordingOnlyItsLastLayerSaysSoOnce) {
  LogCapture log;
  TappedLSTM two(torch::nn::LSTMOptions(4, 5).num_layers(2).batch_first(true));
  EXPECT_EQ(two->slots().size(), 1u);
  EXPECT_EQ(two->slot()->name(), "lstm.l1");  // the recorded units say which layer they are
  EXPECT_EQ(two->slot(1), two->slot());
  try {
    two->slot(0);
    FAIL() << "an inner layer of a fused module without LayerCapture::all";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LayerCapture::all"), std::string::npos) << e.what();
  }
  EXPECT_THROW(two->slot(2), Error);
  const torch::Tensor x = torch::randn({2, 3, 4});
  two->forward(x);
  EXPECT_EQ(log.count("records only its last"), 0);  // not recording: nothing to say
  two->slot()->arm();
  two->forward(x);
  two->forward(x);
  two->slot()->disarm();
  EXPECT_EQ(log.count("TappedLSTM 'lstm' fuses 2 layers and records only its last one ('lstm.l1')"), 1);
  TappedGRU one(torch::nn::GRUOptions(4, 5).batch_first(true));
  EXPECT_EQ(one->slot()->name(), "gru");
  one->slot()->arm();
  one->forward(x);
  EXPECT_EQ(log.count("records only its last"), 1);
  const auto found = find_recurrent_modules(*wrap(two.ptr()));
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].layers, 2);
}

// ---- several layers, one snapshot -----------------------------------------------------------

namespace {

// An encoder-decoder pair of separately tapped layers of different sizes.
struct TwoLayerImpl : torch::nn::Module {
  TwoLayerImpl() {
    enc = register_module("enc", TappedLSTM(torch::nn::LSTMOptions(4, 6).bidirectional(true).batch_first(true), "enc"));
    dec = register_module("dec", TappedGRU(torch::nn::GRUOptions(12, 5).batch_first(true), "dec"));
  }
  torch::Tensor forward(const torch::Tensor& x) { return std::get<0>(dec->forward(std::get<0>(enc->forward(x)))); }
  TappedLSTM enc{nullptr};
  TappedGRU dec{nullptr};
};
TORCH_MODULE(TwoLayer);

}  // namespace

TEST(Recorder, SeveralLayersGoIntoOneSnapshotWithTheirUnitsNamed) {
  torch::manual_seed(14);
  TwoLayer model;
  ProbeSet probes;
  probes.inputs = torch::randn({7, 5, 4});
  probes.labels = {0, 1, 2, 0, 1, 2, 0};
  SnapshotStore store;
  Recorder rec(model.ptr(), {model->enc->slot(), model->dec->slot()}, probes,
               [&](const torch::Tensor& x) { model->forward(x); }, store);
  rec.record(0);
  rec.record(1);
  const auto view = store.view();
  ASSERT_EQ(view.snapshots.size(), 2u);  // one snapshot per record, both layers in it
  const Snapshot& s = *view.snapshots.back();
  ASSERT_EQ(s.units, 12 + 5);
  ASSERT_EQ(s.layers.size(), 2u);
  EXPECT_EQ(s.layers[0], (SnapshotLayer{"enc", 12, 2}));
  EXPECT_EQ(s.layers[1], (SnapshotLayer{"dec", 5, 1}));
  model->eval();
  const torch::Tensor h_enc = std::get<0>(model->enc->forward(probes.inputs)).detach();
  const torch::Tensor h_dec = std::get<0>(model->dec->forward(h_enc)).detach();
  const auto e = h_enc.accessor<float, 3>(), d = h_dec.accessor<float, 3>();
  for (int t = 0; t < 5; ++t)
    for (int p = 0; p < 7; ++p) {
      for (int u = 0; u < 12; ++u) EXPECT_FLOAT_EQ(s.values[(t * 17 + u) * 7 + p], e[p][t][u]);
      for (int u = 0; u < 5; ++u) EXPECT_FLOAT_EQ(s.values[(t * 17 + 12 + u) * 7 + p], d[p][t][u]);
    }

  // The node index names every unit's layer, direction and index within it.
  const nlohmann::json ni = node_index_json(s, probes.labels);
  ASSERT_EQ(ni["units_meta"].size(), 17u);
  EXPECT_EQ(ni["units_meta"][5], (nlohmann::json{{"layer", "enc"}, {"direction", 0}, {"unit", 5}}));
  EXPECT_EQ(ni["units_meta"][6], (nlohmann::json{{"layer", "enc"}, {"direction", 1}, {"unit", 0}}));
  EXPECT_EQ(ni["units_meta"][12], (nlohmann::json{{"layer", "dec"}, {"direction", 0}, {"unit", 0}}));
  EXPECT_EQ(ni["layers"][1], (nlohmann::json{{"name", "dec"}, {"first_unit", 12}, {"units", 5}, {"directions", 1}}));

  // A fused module's layers, by its slots().
  struct FusedImpl : torch::nn::Module {
    FusedImpl() { lstm = register_module("lstm", TappedLSTM(torch::nn::LSTMOptions(4, 3).num_layers(3).batch_first(true), LayerCapture::all)); }
    TappedLSTM lstm{nullptr};
  };
  auto fused = std::make_shared<FusedImpl>();
  SnapshotStore fs;
  Recorder fr(fused, fused->lstm->slots(), probes, [&](const torch::Tensor& x) { fused->lstm->forward(x); }, fs);
  fr.record(0);
  const Snapshot& f = *fs.view().snapshots.back();
  ASSERT_EQ(f.layers.size(), 3u);
  EXPECT_EQ(f.layers[2], (SnapshotLayer{"lstm.l2", 3, 1}));
  EXPECT_EQ(f.units, 9);
}

TEST(Recorder, LayersThatCannotShareASnapshotAreRefusedByName) {
  TwoLayer model;
  ProbeSet probes;
  probes.inputs = torch::randn({4, 5, 4});
  SnapshotStore store;
  TappedGRU other(torch::nn::GRUOptions(12, 5).batch_first(true), "enc");
  try {
    Recorder(model.ptr(), {model->enc->slot(), other->slot()}, probes, [](const torch::Tensor&) {}, store);
    FAIL() << "two slots named 'enc'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("two capture slots are named 'enc'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Recorder(model.ptr(), std::vector<std::shared_ptr<CaptureSlot>>{}, probes, [](const torch::Tensor&) {}, store),
               Error);
  // The decoder sees only the first 3 steps: different time steps cannot share one slice.
  Recorder rec(model.ptr(), {model->enc->slot(), model->dec->slot()}, probes,
               [&](const torch::Tensor& x) { model->dec->forward(std::get<0>(model->enc->forward(x)).narrow(1, 0, 3)); },
               store);
  try {
    rec.record(0);
    FAIL() << "5 and 3 steps";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'enc' (5 steps) and 'dec' (3 steps) differ in time steps"), std::string::npos)
        << e.what();
  }
}

// ---- per-unit layer metadata in the store ----------------------------------------------------

namespace {

Snapshot two_layer_snapshot(std::int64_t epoch) {
  Snapshot s;
  s.epoch = epoch;
  s.steps = 2;
  s.units = 5;
  s.probes = 3;
  s.values.resize(30);
  for (std::size_t i = 0; i < s.values.size(); ++i) s.values[i] = static_cast<float>(i + epoch);
  s.layers = {{"lstm.l0", 4, 2}, {"lstm.l1", 1, 1}};
  s.layer = "lstm.l0+lstm.l1";
  return s;
}

std::string fresh_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/mmphate_capture_" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace

TEST(SnapshotLayers, SaveAndResumeKeepTheLayersAndOlderIndexesResume) {
  const std::string dir = fresh_dir("layers");
  {
    SnapshotStore store;
    store.push(two_layer_snapshot(0));
    store.push(two_layer_snapshot(1));
    store.save(dir);
  }
  SnapshotStore back;
  back.resume(dir);
  ASSERT_EQ(back.view().snapshots.size(), 2u);
  EXPECT_EQ(back.view().snapshots[1]->layers, two_layer_snapshot(1).layers);
  EXPECT_EQ(back.view().snapshots[1]->values, two_layer_snapshot(1).values);
  back.push(two_layer_snapshot(2));  // the resumed run goes on with the same layers

  // An index written before "layers" existed: one layer, named by "layer".
  const std::string old_dir = fresh_dir("layers_old");
  {
    SnapshotStore store;
    Snapshot s = two_layer_snapshot(0);
    s.layers.clear();
    s.layer = "rnn";
    store.push(s);
    store.save(old_dir);
  }
  nlohmann::json index = nlohmann::json::parse(std::ifstream(old_dir + "/index.json"));
  for (auto& e : index["snapshots"]) e.erase("layers");
  std::ofstream(old_dir + "/index.json") << index.dump();
  SnapshotStore old;
  old.resume(old_dir);
  ASSERT_EQ(old.view().snapshots.size(), 1u);
  const Snapshot& s = *old.view().snapshots[0];
  EXPECT_TRUE(s.layers.empty());
  EXPECT_EQ(s.layer_spans(), (std::vector<SnapshotLayer>{{"rnn", 5, 1}}));
  EXPECT_EQ(node_index_json(s, {})["units_meta"][4], (nlohmann::json{{"layer", "rnn"}, {"direction", 0}, {"unit", 4}}));
}

TEST(SnapshotLayers, LayersMustAddUpToTheUnits) {
  SnapshotStore store;
  Snapshot bad = two_layer_snapshot(0);
  bad.layers[1].units = 2;
  try {
    store.push(bad);
    FAIL() << "4 + 2 units in a snapshot of 5";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'lstm.l0' (4 units, 2 directions), 'lstm.l1' (2 units) hold 6 units"),
              std::string::npos)
        << e.what();
  }
  bad = two_layer_snapshot(0);
  bad.layers[0].directions = 3;
  EXPECT_THROW(store.push(bad), Error);
  EXPECT_NO_THROW(store.push(two_layer_snapshot(0)));
}

// ---- capture failures: one line naming the layer --------------------------------------------

TEST(Recorder, AProbePassErrorIsOneLineNamingTheLayerAndTheCause) {
  Classifier model;
  model->train();
  SnapshotStore store;
  ProbeSet probes;
  probes.inputs = torch::randn({3, 5, 4});
  Recorder rec(model.ptr(), model->lstm->slot(), probes, [&](const torch::Tensor& x) { model->forward(x); }, store);
  model->to(torch::kDouble);  // as a model moved to another device after attach: the probes stay behind
  try {
    rec.record(0);
    FAIL() << "float probes through a double model";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("the probe pass failed on layer 'lstm': ", 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find("Exception raised from"), std::string::npos) << m;
    EXPECT_LT(m.size(), 700u) << m;
    EXPECT_NE(m.find("the probe inputs are Float, the model's parameters Double"), std::string::npos) << m;
  }
  EXPECT_TRUE(model->is_training());
  EXPECT_TRUE(model->lstm->inner->is_training());
  EXPECT_TRUE(store.view().snapshots.empty());

  // A failure in the user's forward around the tapped layer says so.
  model->to(torch::kFloat);
  Recorder outside(model.ptr(), model->lstm->slot(), probes,
                   [&](const torch::Tensor& x) { model->head->forward(x); }, store);
  try {
    outside.record(0);
    FAIL() << "a [3, 5, 4] input into Linear(6, 3)";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("the probe pass for layer 'lstm' failed outside the tapped module(s): ", 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find("Exception raised from"), std::string::npos) << m;
  }
  rec.record(1);  // recovered: the slot's failure mark does not stick
  EXPECT_EQ(store.view().snapshots.size(), 1u);
}

TEST(Recorder, AFailingInnerLayerIsTheOneNamed) {
  struct FusedImpl : torch::nn::Module {
    FusedImpl() {
      lstm = register_module(
          "lstm", TappedLSTM(torch::nn::LSTMOptions(4, 3).num_layers(2).batch_first(true), LayerCapture::all));
    }
    TappedLSTM lstm{nullptr};
  };
  auto model = std::make_shared<FusedImpl>();
  {
    torch::NoGradGuard g;  // layer 1 alone cannot run: its input weights have another dtype
    auto w = model->lstm->named_parameters(false)["weight_ih_l1"];
    w.set_data(w.to(torch::kDouble));
  }
  ProbeSet probes;
  probes.inputs = torch::randn({3, 5, 4});
  SnapshotStore store;
  Recorder rec(model, model->lstm->slots(), probes, [&](const torch::Tensor& x) { model->lstm->forward(x); }, store);
  try {
    rec.record(0);
    FAIL() << "layer 1 has a double weight";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("the probe pass failed on layer 'lstm.l1': ", 0), 0u) << e.what();
  }
}
