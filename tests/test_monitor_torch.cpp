// The monitor on a real training loop (a tapped LSTM on sequential Fashion-MNIST): frames
// arrive while training is still running, and monitoring does not change what is learned
// (same seed -> bit-identical weights with and without the monitor). Several layers share one
// monitor; a failing capture is reported in one line.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "mmphate/monitor/monitor.hpp"
#include "mmphate/torch/fashion_mnist.hpp"
#include "mmphate/torch/monitor_attach.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

using namespace mmphate;
using namespace mmphate::torchlayer;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    lstm = register_module("lstm", TappedLSTM(torch::nn::LSTMOptions(28, 16).batch_first(true)));
    head = register_module("head", torch::nn::Linear(16, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) { return head->forward(std::get<0>(lstm->forward(x)).select(1, -1)); }
  TappedLSTM lstm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Net);

struct Data {
  torch::Tensor x, y, probe_x, probe_y;
};

const Data& data() {
  static const Data d = [] {
    const std::string dir = prepare_fashion_mnist(std::string(MMPHATE_BINARY_DIR) + "/data/fashion-mnist");
    auto train = torch::data::datasets::MNIST(dir, torch::data::datasets::MNIST::Mode::kTrain);
    auto test = torch::data::datasets::MNIST(dir, torch::data::datasets::MNIST::Mode::kTest);
    Data out;
    out.x = (train.images().narrow(0, 0, 1500).to(torch::kFloat32) - 0.286) / 0.353;
    out.x = out.x.reshape({-1, 28, 28});
    out.y = train.targets().narrow(0, 0, 1500);
    out.probe_x = ((test.images().narrow(0, 0, 500).to(torch::kFloat32) - 0.286) / 0.353).reshape({-1, 28, 28});
    out.probe_y = test.targets().narrow(0, 0, 500);
    return out;
  }();
  return d;
}

MonitorConfig config(const std::string& name) {
  MonitorConfig cfg;
  cfg.run.path = std::string(MMPHATE_BINARY_DIR) + "/test_runs/" + name;
  fs::remove_all(cfg.run.path);
  cfg.capture.probes_per_class = 2;
  cfg.embedding.n_landmark = 300;
  cfg.embedding.n_svd = 20;
  cfg.diagnostics.score_queries = 100;
  return cfg;
}

// Trains up to `epochs` epochs (fewer when `more` says stop); with a monitor, calls
// on_epoch_end after each. Returns the model.
Net train(int epochs, Monitor* monitor, const std::function<bool(int)>& more = [](int) { return true; }) {
  torch::manual_seed(7);
  Net model;
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(3e-3));
  const Data& d = data();
  if (monitor)
    attach(*monitor, model.ptr(), model->lstm->slot(), ProbeSet::stratified(d.probe_x, d.probe_y, 2, 0),
           [model](const torch::Tensor& p) mutable { model->forward(p); });
  std::int64_t step = 0;
  for (int e = 0; e < epochs; ++e) {
    const torch::Tensor order = torch::randperm(d.x.size(0), torch::kLong);
    for (std::int64_t i = 0; i < d.x.size(0); i += 50) {
      const torch::Tensor idx = order.narrow(0, i, 50);
      opt.zero_grad();
      const torch::Tensor loss =
          torch::nn::functional::cross_entropy(model->forward(d.x.index_select(0, idx)), d.y.index_select(0, idx));
      loss.backward();
      opt.step();
      ++step;
    }
    if (monitor) monitor->on_epoch_end(e, {{"epoch", static_cast<double>(e)}}, step);
    if (!more(e)) break;
  }
  return model;
}

}  // namespace

TEST(MonitorTraining, FramesArriveBeforeTrainingEnds) {
  torch::set_num_threads(1);
  std::mutex m;
  std::vector<Clock::time_point> arrivals;
  Monitor monitor(config("torch_live"));
  monitor.add_callback([&](const nlohmann::json& f) {
    if (f["type"] != "embedding") return;
    std::lock_guard<std::mutex> lock(m);
    arrivals.push_back(Clock::now());
  });
  // Training goes on (at most 60 epochs, ~15 s) until two epochs after the first frame: frames
  // must come while it runs, however loaded the machine is.
  int first_frame_epoch = -1, epochs_run = 0;
  train(60, &monitor, [&](int e) {
    epochs_run = e + 1;
    std::lock_guard<std::mutex> lock(m);
    if (first_frame_epoch < 0 && !arrivals.empty()) first_frame_epoch = e;
    return first_frame_epoch < 0 || e < first_frame_epoch + 2;
  });
  const Clock::time_point training_done = Clock::now();
  ASSERT_TRUE(monitor.flush(std::chrono::seconds(120)));
  std::lock_guard<std::mutex> lock(m);
  ASSERT_FALSE(arrivals.empty());
  EXPECT_GE(first_frame_epoch, 0) << "no frame during " << epochs_run << " epochs of training";
  EXPECT_LT(arrivals.front(), training_done);
  EXPECT_EQ(monitor.stats().failed_frames, 0);
  EXPECT_EQ(monitor.stats().capture_failures, 0);
  EXPECT_EQ(monitor.stats().snapshots, epochs_run);
}

// torch::set_num_threads does not size OpenBLAS's pool; attach() does (process.blas_threads),
// unless the config keeps it.
TEST(MonitorTraining, AttachSizesOpenBlasPoolToTorchThreads) {
  if (!openblas_set_num_threads || !openblas_get_num_threads) GTEST_SKIP() << "not OpenBLAS";
  if (std::getenv("OPENBLAS_NUM_THREADS") || std::getenv("GOTO_NUM_THREADS")) GTEST_SKIP() << "sized by the environment";
  torch::set_num_threads(1);
  const Data& d = data();
  for (const char* mode : {"keep", "torch"}) {
    SCOPED_TRACE(mode);
    openblas_set_num_threads(2);
    ASSERT_EQ(openblas_get_num_threads(), 2);
    MonitorConfig cfg = config(std::string("torch_blas_") + mode);
    cfg.process.blas_threads = mode;
    Monitor monitor(cfg);
    Net model;
    attach(monitor, model.ptr(), model->lstm->slot(), ProbeSet::stratified(d.probe_x, d.probe_y, 2, 0),
           [model](const torch::Tensor& p) mutable { model->forward(p); });
    EXPECT_EQ(openblas_get_num_threads(), std::string(mode) == "torch" ? 1 : 2);
  }
}

TEST(MonitorTraining, SameWeightsWithAndWithoutTheMonitor) {
  torch::set_num_threads(1);
  // attach() sizes OpenBLAS's pool to torch's threads, which changes how products split their
  // sums: a bit-for-bit comparison sizes it the same way for both runs (monitor_attach.hpp).
  align_blas_threads();
  const Net plain = train(3, nullptr);
  Monitor monitor(config("torch_same_weights"));
  const Net watched = train(3, &monitor);
  monitor.flush(std::chrono::seconds(120));
  const auto a = plain->named_parameters(), b = watched->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& p : a) {
    SCOPED_TRACE(p.key());
    EXPECT_TRUE(torch::equal(p.value(), b[p.key()]));
  }
  EXPECT_GT(monitor.stats().frames, 0);
}

namespace {

std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// A small 2-layer LSTM classifier on random sequences (no dataset: the monitor is under test).
struct TwoLayerNetImpl : torch::nn::Module {
  TwoLayerNetImpl() {
    lstm = register_module(
        "lstm", TappedLSTM(torch::nn::LSTMOptions(6, 8).num_layers(2).batch_first(true), LayerCapture::all));
    head = register_module("head", torch::nn::Linear(8, 4));
  }
  torch::Tensor forward(const torch::Tensor& x) { return head->forward(std::get<0>(lstm->forward(x)).select(1, -1)); }
  TappedLSTM lstm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(TwoLayerNet);

}  // namespace

// Both layers of a fused 2-layer LSTM, one Monitor: one snapshot, one frame per epoch, one run
// folder, and the node index names each unit's layer.
TEST(MonitorTraining, SeveralLayersOneMonitorOneFramePerEpoch) {
  torch::set_num_threads(1);
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({200, 7, 6}), y = torch::arange(200, torch::kLong).remainder(4);
  MonitorConfig cfg = config("torch_two_layers");
  const std::string run = cfg.run.path;
  {
    Monitor monitor(cfg);
    TwoLayerNet model;
    attach(monitor, model.ptr(), model->lstm->slots(), ProbeSet::stratified(x, y, 3, 0),
           [model](const torch::Tensor& p) mutable { model->forward(p); });
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-2));
    for (int e = 0; e < 3; ++e) {
      opt.zero_grad();
      torch::nn::functional::cross_entropy(model->forward(x), y).backward();
      opt.step();
      monitor.on_epoch_end(e, {{"epoch", static_cast<double>(e)}}, e + 1);
      ASSERT_TRUE(monitor.flush(std::chrono::seconds(120)));  // a frame for every epoch, none coalesced
    }
    EXPECT_EQ(monitor.stats().snapshots, 3);
    EXPECT_EQ(monitor.stats().frames, 3);
    EXPECT_EQ(monitor.stats().capture_failures, 0);
    EXPECT_EQ(monitor.store().view().snapshots.back()->layers.size(), 2u);
  }
  int embeddings = 0;
  for (const auto& f : read_lines(run + "/frames.jsonl")) {
    if (f["type"] == "event") EXPECT_NE(f["event"], "frame_failed") << f.dump();
    if (f["type"] != "embedding") continue;
    ++embeddings;
    EXPECT_EQ(f["window"]["units"], 16);
    EXPECT_EQ(f["window"]["steps"], 7);
  }
  EXPECT_EQ(embeddings, 3);
  const nlohmann::json ni = nlohmann::json::parse(std::ifstream(run + "/node_index.json"));
  ASSERT_EQ(ni["units_meta"].size(), 16u);
  for (int u = 0; u < 16; ++u) {
    EXPECT_EQ(ni["units_meta"][u]["layer"], u < 8 ? "lstm.l0" : "lstm.l1") << u;
    EXPECT_EQ(ni["units_meta"][u]["unit"], u % 8) << u;
  }
  int folders = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(run).parent_path()))
    folders += entry.path().filename().string().rfind("torch_two_layers", 0) == 0 ? 1 : 0;
  EXPECT_EQ(folders, 1);
}

// A capture that fails (here: the model moved to double after attach, as one moved to CUDA
// would be) becomes a short one-line frame_failed message naming the layer and the cause,
// without LibTorch's C++ backtrace.
TEST(MonitorTraining, ACaptureFailureIsOneLineNamingTheLayer) {
  torch::set_num_threads(1);
  const Data& d = data();
  MonitorConfig cfg = config("torch_capture_failure");
  const std::string run = cfg.run.path;
  {
    Monitor monitor(cfg);
    Net model;
    attach(monitor, model.ptr(), model->lstm->slot(), ProbeSet::stratified(d.probe_x, d.probe_y, 2, 0),
           [model](const torch::Tensor& p) mutable { model->forward(p); });
    model->to(torch::kDouble);
    monitor.on_epoch_end(0, {}, 1);
    monitor.on_epoch_end(1, {}, 2);
    EXPECT_EQ(monitor.stats().capture_failures, 2);
  }
  int failed = 0;
  for (const auto& f : read_lines(run + "/frames.jsonl")) {
    if (f["type"] != "event" || f["event"] != "frame_failed") continue;
    ++failed;
    const std::string m = f["message"];
    EXPECT_NE(m.find("the probe pass failed on layer 'lstm': expected scalar type"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find("Exception raised from"), std::string::npos) << m;
    EXPECT_LT(m.size(), 400u) << m;
  }
  EXPECT_EQ(failed, 1);  // a repeated cause is counted, not written again
}

// Regression (CI): two test processes unpacked the dataset at once through one shared temporary
// name and one of them failed. Several unpackers racing into one fresh directory must all succeed
// and leave complete files.
TEST(FashionMnistCache, ConcurrentUnpackersAllSucceed) {
  const std::string dir = std::string(MMPHATE_BINARY_DIR) + "/test_runs/fashion_mnist_race";
  fs::remove_all(dir);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      try {
        prepare_fashion_mnist(dir);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  // 60,000 28x28 images after a 16-byte header; no temporaries left behind.
  EXPECT_EQ(fs::file_size(dir + "/train-images-idx3-ubyte"), 16u + 60000u * 28u * 28u);
  EXPECT_EQ(fs::file_size(dir + "/t10k-labels-idx1-ubyte"), 8u + 10000u);
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  auto images = torch::data::datasets::MNIST(dir, torch::data::datasets::MNIST::Mode::kTest);
  EXPECT_EQ(images.size().value(), 10000u);
  fs::remove_all(dir);
}
