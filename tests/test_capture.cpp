// Capture layer on real LibTorch modules: tapped RNN/LSTM/GRU behave exactly like the module
// they wrap (1 and 2 layers, bidirectional, both batch layouts), and the Recorder stores the
// module's own outputs for the probe set as [steps, units, probes], restoring the model's mode.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "mmphate/error.hpp"
#include "mmphate/frame_json.hpp"
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

// Copies every parameter of `from` (names prefixed "inner.") into the plain module `to`.
void copy_parameters(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard g;
  auto src = from.named_parameters();
  for (auto& p : to.named_parameters()) {
    ASSERT_TRUE(src.contains("inner." + p.key())) << p.key();
    p.value().copy_(src["inner." + p.key()]);
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
        fp[std::string(w) + "_l" + std::to_string(layer)].copy_(p[std::string("inner.") + w + "_l0"]);
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
