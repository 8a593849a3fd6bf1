// Records the suite of real training runs that bench_live replays (bench/real/README.md):
// real networks trained on real data, their hidden states captured every epoch by this
// project's own capture layer (Tapped* modules + Recorder + SnapshotStore), saved as traces
// [epochs, steps, units, probes] float32 with the probes' labels and a meta.json.
//
//   record_real_runs --out DIR [--only NAME[,NAME...]] [--data DIR] [--epochs-scale X]
//
// Runs (names):
//   lstm32_fmnist, gru32_fmnist, rnn32_fmnist  one layer of 32 units on sequential
//       Fashion-MNIST (28 rows = 28 steps), 8 probes per class (the monitor's default);
//   bilstm16_fmnist                             bidirectional LSTM, 2 x 16 units;
//   lstm256_fmnist                              one LSTM layer of 256 units, 64 epochs of 2000
//       samples (the scale issue's width: 64 x 28 x 256 = 458,752 nodes in a 64-epoch window;
//       not in the default suite, ~10 min to record: --only lstm256_fmnist);
//   charlm_lstm2x48_l0, charlm_lstm2x48_l1      both layers of a 2-layer character-level
//       LSTM language model (48 units, 40-step sequences, per-step next-character targets)
//       on /usr/share/common-licenses/GPL-3, 40 held-out probe sequences;
//   hopf_ramp                                   the paper's synthetic dynamical system: a 2-D
//       Hopf normal form whose bifurcation parameter ramps from -1 to 2 across epochs, read
//       out by two groups of noisy unit copies (not a network, but the same trace format).
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmphate/npy.hpp"
#include "mmphate/snapshot_store.hpp"
#include "mmphate/torch/fashion_mnist.hpp"
#include "mmphate/torch/recorder.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

extern "C" void openblas_set_num_threads(int) __attribute__((weak));

using namespace mmphate;
using namespace mmphate::torchlayer;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string out = "bench/real/cache";
  std::string data = "build/data/fashion-mnist";
  std::set<std::string> only;
  double epochs_scale = 1.0;
};

int scaled(int epochs, double s) { return std::max(4, static_cast<int>(std::lround(epochs * s))); }

// Writes one recorded run: trace.npy [E, T, U, P], labels.npy [P], meta.json.
void save_run(const std::string& dir, const SnapshotStore& store, const std::vector<std::int64_t>& labels,
              nlohmann::json meta) {
  fs::create_directories(dir);
  const SnapshotStore::View v = store.view();
  if (v.snapshots.empty()) throw std::runtime_error("no snapshot recorded for " + dir);
  const Snapshot& s0 = *v.snapshots.front();
  std::vector<float> all;
  std::vector<std::int64_t> epochs;
  for (const auto& s : v.snapshots) {
    // Snapshot values are [steps, units, probes]: the trace's epoch block as is.
    all.insert(all.end(), s->values.begin(), s->values.end());
    epochs.push_back(s->epoch);
  }
  write_npy(dir + "/trace.npy", all.data(),
            {v.snapshots.size(), static_cast<std::size_t>(s0.steps), static_cast<std::size_t>(s0.units),
             static_cast<std::size_t>(s0.probes)});
  write_npy(dir + "/labels.npy", labels.data(), {labels.size()});
  meta["shape"] = {v.snapshots.size(), s0.steps, s0.units, s0.probes};
  meta["epochs"] = epochs;
  meta["layer"] = s0.layer;
  meta["directions"] = s0.directions;
  std::ofstream(dir + "/meta.json") << meta.dump(1) << "\n";
  std::printf("  -> %s: %zu epochs x %lld steps x %lld units x %lld probes\n", dir.c_str(), v.snapshots.size(),
              static_cast<long long>(s0.steps), static_cast<long long>(s0.units), static_cast<long long>(s0.probes));
}

RetentionPolicy keep_everything() {
  RetentionPolicy p;
  p.max_epochs = 100000;
  p.memory_budget_bytes = std::size_t{8} << 30;
  return p;
}

// ---- sequential Fashion-MNIST ------------------------------------------------------------

struct FmnistNetImpl : torch::nn::Module {
  FmnistNetImpl(const std::string& cell, int hidden, bool bidirectional) {
    const int out_units = hidden * (bidirectional ? 2 : 1);
    if (cell == "lstm")
      lstm = register_module("rnn", TappedLSTM(torch::nn::LSTMOptions(28, hidden).batch_first(true).bidirectional(bidirectional)));
    else if (cell == "gru")
      gru = register_module("rnn", TappedGRU(torch::nn::GRUOptions(28, hidden).batch_first(true)));
    else
      rnn = register_module("rnn", TappedRNN(torch::nn::RNNOptions(28, hidden).batch_first(true)));
    head = register_module("head", torch::nn::Linear(out_units, 10));
    bidir = bidirectional;
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = lstm ? std::get<0>(lstm->forward(x)) : gru ? std::get<0>(gru->forward(x)) : std::get<0>(rnn->forward(x));
    return head->forward(bidir ? h.mean(1) : h.select(1, -1));
  }
  std::shared_ptr<CaptureSlot> slot() const { return lstm ? lstm->slot() : gru ? gru->slot() : rnn->slot(); }
  TappedLSTM lstm{nullptr};
  TappedGRU gru{nullptr};
  TappedRNN rnn{nullptr};
  torch::nn::Linear head{nullptr};
  bool bidir = false;
};
TORCH_MODULE(FmnistNet);

torch::Tensor as_sequences(const torch::Tensor& images) {
  return ((images.to(torch::kFloat32) - 0.2860) / 0.3530).reshape({-1, 28, 28});
}

void record_fmnist(const Args& a, const std::string& name, const std::string& cell, int hidden, bool bidir,
                   int epochs, std::int64_t train_samples, double lr) {
  std::printf("%s: %s-%d%s, %d epochs x %lld samples\n", name.c_str(), cell.c_str(), hidden,
              bidir ? " bidirectional" : "", epochs, static_cast<long long>(train_samples));
  torch::manual_seed(1);
  const std::string dir = prepare_fashion_mnist(a.data);
  auto train_set = torch::data::datasets::MNIST(dir, torch::data::datasets::MNIST::Mode::kTrain);
  auto test_set = torch::data::datasets::MNIST(dir, torch::data::datasets::MNIST::Mode::kTest);
  const torch::Tensor train_x = as_sequences(train_set.images()).narrow(0, 0, train_samples);
  const torch::Tensor train_y = train_set.targets().narrow(0, 0, train_samples);
  const torch::Tensor test_x = as_sequences(test_set.images()), test_y = test_set.targets();
  const std::int64_t nval = 2000;
  const torch::Tensor val_x = test_x.narrow(0, 0, nval), val_y = test_y.narrow(0, 0, nval);

  FmnistNet model(cell, hidden, bidir);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(lr));
  SnapshotStore store(keep_everything());
  ProbeSet probes = ProbeSet::stratified(test_x.narrow(0, nval, test_x.size(0) - nval),
                                         test_y.narrow(0, nval, test_y.size(0) - nval), 8, 0);
  const std::vector<std::int64_t> labels = probes.labels;
  Recorder rec(model.ptr(), model->slot(), std::move(probes), [model](const torch::Tensor& p) mutable { model->forward(p); },
               store);
  nlohmann::json curve = nlohmann::json::array();
  const auto t0 = Clock::now();
  std::int64_t step = 0;
  for (int e = 0; e < epochs; ++e) {
    const torch::Tensor order = torch::randperm(train_samples, torch::kLong);
    double loss_sum = 0;
    model->train();
    for (std::int64_t i = 0; i < train_samples; i += 64) {
      const torch::Tensor idx = order.narrow(0, i, std::min<std::int64_t>(64, train_samples - i));
      opt.zero_grad();
      const torch::Tensor loss =
          torch::nn::functional::cross_entropy(model->forward(train_x.index_select(0, idx)), train_y.index_select(0, idx));
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>() * static_cast<double>(idx.size(0));
      ++step;
    }
    double val_acc = 0, val_loss = 0;
    {
      torch::NoGradGuard ng;
      model->eval();
      const torch::Tensor logits = model->forward(val_x);
      val_loss = torch::nn::functional::cross_entropy(logits, val_y).item<double>();
      val_acc = logits.argmax(1).eq(val_y).to(torch::kFloat64).mean().item<double>();
      model->train();
    }
    rec.record(e, step);
    curve.push_back({{"epoch", e}, {"train_loss", loss_sum / train_samples}, {"val_loss", val_loss}, {"val_accuracy", val_acc}});
    std::printf("  epoch %2d  train loss %.4f  val loss %.4f acc %.3f\n", e, loss_sum / train_samples, val_loss, val_acc);
    std::fflush(stdout);
  }
  save_run(a.out + "/" + name, store, labels,
           {{"name", name},
            {"task", "sequential Fashion-MNIST (rows as steps)"},
            {"model", cell + "-" + std::to_string(hidden) + (bidir ? " bidirectional" : "")},
            {"train_samples_per_epoch", train_samples},
            {"train_seconds", std::chrono::duration<double>(Clock::now() - t0).count()},
            {"curve", curve}});
}

// ---- character-level language model --------------------------------------------------------

struct CharLmImpl : torch::nn::Module {
  CharLmImpl(int vocab, int hidden) {
    embed = register_module("embed", torch::nn::Embedding(vocab, 16));
    l0 = register_module("lstm0", TappedLSTM(torch::nn::LSTMOptions(16, hidden).batch_first(true), "lstm0"));
    l1 = register_module("lstm1", TappedLSTM(torch::nn::LSTMOptions(hidden, hidden).batch_first(true), "lstm1"));
    head = register_module("head", torch::nn::Linear(hidden, vocab));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = std::get<0>(l0->forward(embed->forward(x)));
    h = std::get<0>(l1->forward(h));
    return head->forward(h);  // [batch, steps, vocab]
  }
  torch::nn::Embedding embed{nullptr};
  TappedLSTM l0{nullptr}, l1{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(CharLm);

std::int64_t char_class(unsigned char c) {
  if (std::islower(c)) return 0;
  if (std::isupper(c)) return 1;
  if (std::isspace(c)) return 2;
  return 3;
}

void record_charlm(const Args& a, int epochs) {
  const std::string path = "/usr/share/common-licenses/GPL-3";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<unsigned char, std::int64_t> vocab;
  for (unsigned char c : text) vocab.emplace(c, 0);
  std::int64_t next = 0;
  for (auto& [c, id] : vocab) id = next++;
  std::vector<std::int64_t> ids(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) ids[i] = vocab[static_cast<unsigned char>(text[i])];
  const torch::Tensor all = torch::tensor(ids, torch::kLong);
  const std::int64_t steps = 40, held_out = static_cast<std::int64_t>(text.size()) / 10;
  const std::int64_t train_end = static_cast<std::int64_t>(text.size()) - held_out;
  std::printf("charlm_lstm2x48: 2-layer LSTM-48 on %s (%zu chars, vocabulary %lld), %d epochs x 200 batches\n",
              path.c_str(), text.size(), static_cast<long long>(next), epochs);

  torch::manual_seed(1);
  CharLm model(static_cast<int>(next), 48);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(3e-3));
  // 40 held-out probe sequences at evenly spaced offsets; label: the class of the character
  // that follows (lower, upper, space, other).
  std::vector<torch::Tensor> seqs;
  std::vector<std::int64_t> labels;
  for (int p = 0; p < 40; ++p) {
    const std::int64_t at = train_end + p * (held_out - steps - 1) / 40;
    seqs.push_back(all.narrow(0, at, steps));
    labels.push_back(char_class(static_cast<unsigned char>(text[static_cast<std::size_t>(at + steps)])));
  }
  const torch::Tensor probe_x = torch::stack(seqs);
  SnapshotStore s0(keep_everything()), s1(keep_everything());
  auto fwd = [model](const torch::Tensor& p) mutable { model->forward(p); };
  Recorder r0(model.ptr(), model->l0->slot(), ProbeSet{probe_x, labels, {}}, fwd, s0);
  Recorder r1(model.ptr(), model->l1->slot(), ProbeSet{probe_x, labels, {}}, fwd, s1);
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> start(0, train_end - steps - 2);
  nlohmann::json curve = nlohmann::json::array();
  const auto t0 = Clock::now();
  std::int64_t step = 0;
  for (int e = 0; e < epochs; ++e) {
    double loss_sum = 0;
    for (int b = 0; b < 200; ++b) {
      std::vector<torch::Tensor> xs, ys;
      for (int i = 0; i < 32; ++i) {
        const std::int64_t s = start(rng);
        xs.push_back(all.narrow(0, s, steps));
        ys.push_back(all.narrow(0, s + 1, steps));
      }
      const torch::Tensor x = torch::stack(xs), y = torch::stack(ys);
      opt.zero_grad();
      const torch::Tensor logits = model->forward(x);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, next}), y.reshape({-1}));
      loss.backward();
      torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
      opt.step();
      loss_sum += loss.item<double>();
      ++step;
    }
    double val_loss = 0;
    {
      torch::NoGradGuard ng;
      model->eval();
      const torch::Tensor vx = all.narrow(0, train_end, held_out - 1).unsqueeze(0);
      const torch::Tensor vy = all.narrow(0, train_end + 1, held_out - 1);
      val_loss = torch::nn::functional::cross_entropy(model->forward(vx).reshape({-1, next}), vy).item<double>();
      model->train();
    }
    r0.record(e, step);
    r1.record(e, step);
    curve.push_back({{"epoch", e}, {"train_loss", loss_sum / 200}, {"val_loss", val_loss}});
    std::printf("  epoch %2d  train loss %.4f  val loss %.4f\n", e, loss_sum / 200, val_loss);
    std::fflush(stdout);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  for (int layer = 0; layer < 2; ++layer) {
    const std::string name = "charlm_lstm2x48_l" + std::to_string(layer);
    save_run(a.out + "/" + name, layer == 0 ? s0 : s1, labels,
             {{"name", name},
              {"task", "character-level language model on GPL-3, next character per step"},
              {"model", "2-layer LSTM-48, layer " + std::to_string(layer)},
              {"train_seconds", secs},
              {"curve", curve}});
  }
}

// ---- Hopf normal form with a ramped bifurcation parameter ----------------------------------

// dx = mu x - w y - x r^2, dy = w x + mu y - y r^2 (supercritical Hopf: a stable focus for
// mu < 0, a limit cycle of radius sqrt(mu) for mu > 0). Each probe starts from its own point;
// 16 units copy x and 16 copy y, each with its own gain and noise.
void record_hopf(const Args& a, int epochs) {
  const int steps = 40, units = 32, probes = 40;
  std::printf("hopf_ramp: %d epochs x %d steps x %d units x %d probes\n", epochs, steps, units, probes);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> x0(probes), y0(probes), gain(units);
  for (int p = 0; p < probes; ++p) {
    const double ang = 2 * M_PI * p / probes, r = 0.3 + 1.2 * (p % 5) / 4.0;
    x0[p] = r * std::cos(ang);
    y0[p] = r * std::sin(ang);
  }
  for (int u = 0; u < units; ++u) gain[u] = 0.7 + 0.6 * (u % 8) / 7.0;
  std::vector<float> trace(static_cast<std::size_t>(epochs) * steps * units * probes);
  std::vector<std::int64_t> labels(probes), ep(epochs);
  for (int p = 0; p < probes; ++p) labels[p] = p % 5;
  const double dt = 0.25, w = 1.0;
  for (int e = 0; e < epochs; ++e) {
    ep[e] = e;
    const double mu = -1.0 + 3.0 * e / std::max(1, epochs - 1);
    for (int p = 0; p < probes; ++p) {
      double x = x0[p], y = y0[p];
      for (int t = 0; t < steps; ++t) {
        for (int sub = 0; sub < 5; ++sub) {  // RK2 substeps
          auto f = [&](double xx, double yy, double& fx, double& fy) {
            const double r2 = xx * xx + yy * yy;
            fx = mu * xx - w * yy - xx * r2;
            fy = w * xx + mu * yy - yy * r2;
          };
          double fx, fy, gx, gy;
          const double h = dt / 5;
          f(x, y, fx, fy);
          f(x + h * fx, y + h * fy, gx, gy);
          x += 0.5 * h * (fx + gx);
          y += 0.5 * h * (fy + gy);
        }
        for (int u = 0; u < units; ++u) {
          const double v = gain[u] * (u < units / 2 ? x : y) + 0.05 * g(rng);
          trace[((static_cast<std::size_t>(e) * steps + t) * units + u) * probes + p] = static_cast<float>(v);
        }
      }
    }
  }
  const std::string dir = a.out + "/hopf_ramp";
  fs::create_directories(dir);
  write_npy(dir + "/trace.npy", trace.data(),
            {static_cast<std::size_t>(epochs), static_cast<std::size_t>(steps), static_cast<std::size_t>(units),
             static_cast<std::size_t>(probes)});
  write_npy(dir + "/labels.npy", labels.data(), {labels.size()});
  nlohmann::json meta = {{"name", "hopf_ramp"},
                         {"task", "Hopf normal form, mu ramped -1 -> 2 across epochs"},
                         {"model", "2-D latent ODE read out by 2 x 16 noisy units"},
                         {"shape", {epochs, steps, units, probes}},
                         {"epochs", ep},
                         {"layer", "hopf"},
                         {"directions", 1}};
  std::ofstream(dir + "/meta.json") << meta.dump(1) << "\n";
  std::printf("  -> %s\n", dir.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "record_real_runs: " << k << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--out") a.out = val();
    else if (k == "--data") a.data = val();
    else if (k == "--epochs-scale") a.epochs_scale = std::stod(val());
    else if (k == "--only") {
      std::stringstream ss(val());
      for (std::string n; std::getline(ss, n, ',');) a.only.insert(n);
    } else {
      std::cerr << "usage: record_real_runs --out DIR [--only NAME,...] [--data DIR] [--epochs-scale X]\n";
      return k == "--help" ? 0 : 2;
    }
  }
  torch::set_num_threads(1);
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  auto want = [&](const std::string& n) { return a.only.empty() || a.only.count(n) > 0; };
  try {
    const double s = a.epochs_scale;
    if (want("lstm32_fmnist")) record_fmnist(a, "lstm32_fmnist", "lstm", 32, false, scaled(30, s), 10000, 2e-3);
    if (want("gru32_fmnist")) record_fmnist(a, "gru32_fmnist", "gru", 32, false, scaled(30, s), 10000, 2e-3);
    if (want("rnn32_fmnist")) record_fmnist(a, "rnn32_fmnist", "rnn", 32, false, scaled(30, s), 10000, 1e-3);
    if (want("bilstm16_fmnist")) record_fmnist(a, "bilstm16_fmnist", "lstm", 16, true, scaled(24, s), 10000, 2e-3);
    if (a.only.count("lstm256_fmnist")) record_fmnist(a, "lstm256_fmnist", "lstm", 256, false, scaled(64, s), 2000, 1e-3);
    if (want("charlm_lstm2x48_l0") || want("charlm_lstm2x48_l1")) record_charlm(a, scaled(15, s));
    if (want("hopf_ramp")) record_hopf(a, scaled(30, s));
  } catch (const std::exception& e) {
    std::cerr << "record_real_runs: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
