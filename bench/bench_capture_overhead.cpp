// Capture overhead: a 1-layer LSTM (hidden 64) trained on sequential Fashion-MNIST (rows as
// time steps, batch 64, Adam 2e-3). The same run alternates epochs without and with recording
// the probe set at the epoch's end (`--pairs` of each, after a warm-up epoch) and reports the
// medians, their ratio, and the recording's own time relative to an epoch. Epoch-to-epoch
// noise on a shared 2-core machine is several percent, far above the recording's cost, so the
// record_over_epoch figure is the precise one.
//
//   bench_capture_overhead [--batches N] [--pairs P] [--per_class K] [--threads T] [--cache DIR]
// N batches make an "epoch" (default: the whole training set, 938 batches).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <vector>
#include <iostream>
#include <nlohmann/json.hpp>

#include "mmphate/snapshot_store.hpp"
#include "mmphate/torch/fashion_mnist.hpp"
#include "mmphate/torch/recorder.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

using namespace mmphate;
using namespace mmphate::torchlayer;
using clk = std::chrono::steady_clock;

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    lstm = register_module("lstm", TappedLSTM(torch::nn::LSTMOptions(28, 64).batch_first(true)));
    head = register_module("head", torch::nn::Linear(64, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) { return head->forward(std::get<0>(lstm->forward(x)).select(1, -1)); }
  TappedLSTM lstm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Net);

double seconds_since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

}  // namespace

int run(int argc, char** argv);

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_capture_overhead: error: " << e.what() << std::endl;
    return 1;
  }
}

int run(int argc, char** argv) {
  std::int64_t batches = -1;
  int per_class = 10, threads = 2, pairs = 1;
  std::string cache = "build/data/fashion-mnist";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--batches") batches = std::stoll(v);
    else if (k == "--per_class") per_class = std::stoi(v);
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--pairs") pairs = std::stoi(v);
    else if (k == "--cache") cache = v;
    else { std::cerr << "unknown flag " << k << "\n"; return 2; }
  }
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  torch::data::datasets::MNIST train(prepare_fashion_mnist(cache), torch::data::datasets::MNIST::Mode::kTrain);
  const torch::Tensor images = train.images().squeeze(1);  // [60000, 28, 28], rows = time steps
  const torch::Tensor labels = train.targets();
  const std::int64_t n = images.size(0), bs = 64;
  const std::int64_t per_epoch = batches > 0 ? std::min(batches, (n + bs - 1) / bs) : (n + bs - 1) / bs;

  Net net;
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(2e-3));
  SnapshotStore store;
  Recorder rec(net.ptr(), net->lstm->slot(), ProbeSet::stratified(images, labels, per_class, 1),
               [&](const torch::Tensor& x) { net->forward(x); }, store);

  auto run_epoch = [&](std::int64_t epoch, bool record) {
    const auto t0 = clk::now();
    const torch::Tensor perm = torch::randperm(n);
    net->train();
    for (std::int64_t b = 0; b < per_epoch; ++b) {
      const torch::Tensor idx = perm.slice(0, b * bs, std::min(n, (b + 1) * bs));
      opt.zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(images.index_select(0, idx)),
                                                                labels.index_select(0, idx));
      loss.backward();
      opt.step();
    }
    double record_s = 0;
    if (record) {
      const auto r0 = clk::now();
      rec.record(epoch);
      record_s = seconds_since(r0);
    }
    return std::make_pair(seconds_since(t0), record_s);
  };

  run_epoch(0, true);  // warm-up (allocations, first record)
  std::vector<double> without, with, record;
  for (int p = 0; p < pairs; ++p) {
    without.push_back(run_epoch(1 + 2 * p, false).first);
    const auto w = run_epoch(2 + 2 * p, true);
    with.push_back(w.first);
    record.push_back(w.second);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  };
  nlohmann::json out;
  out["batches_per_epoch"] = per_epoch;
  out["pairs"] = pairs;
  out["probes"] = rec.probes().inputs.size(0);
  out["threads"] = threads;
  out["epochs_without_capture_s"] = without;
  out["epochs_with_capture_s"] = with;
  out["record_s"] = record;
  out["median_with_over_without"] = median(with) / median(without);
  out["median_record_over_epoch"] = median(record) / median(without);
  std::cout << out.dump() << std::endl;
  return 0;
}
