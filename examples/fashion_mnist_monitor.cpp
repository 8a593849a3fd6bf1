// The training demo: an LSTM (or GRU / RNN) learns sequential Fashion-MNIST (each image's 28
// rows are 28 time steps) while a mmphate::Monitor embeds its hidden states with MM-PHATE
// after every epoch, in the background, and writes JSON frames to runs/<name>/version_<n>/.
//
//   fashion_mnist_monitor                      short run (~2 min on 2 cores), LSTM-32
//   fashion_mnist_monitor --epochs 30 --train-samples 60000 --cell gru
//   fashion_mnist_monitor --config configs/monitor_default.json --early-stop
//   fashion_mnist_monitor --no-monitor         the same training without the monitor
//
// Flags: --epochs N, --train-samples N (0: all 60,000), --val-samples N, --hidden N,
// --cell lstm|gru|rnn, --batch N, --lr X, --seed N, --threads N (training), --config FILE,
// --run-root DIR, --run-name NAME, --probes-per-class N, --window N (epochs kept),
// --early-stop (stop on the validation loss: patience 3), --monitor-share X (the updater's
// share of a core while training runs, default 0.25), --landmarks N (embedding.n_landmark,
// default 1000: the demo's window stays under 27k nodes; see docs/MONITOR.md), --no-monitor, --data DIR (cache for
// the decompressed dataset), --save-weights FILE, --quiet. Flags on the command line win over
// the --config file, which wins over the demo's defaults; the demo prints where run.root,
// run.name, updater.max_cpu_share and embedding.n_landmark came from.
#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "mmphate/monitor/monitor.hpp"
#include "mmphate/torch/fashion_mnist.hpp"
#include "mmphate/torch/monitor_attach.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

using namespace mmphate;
using namespace mmphate::torchlayer;
using Clock = std::chrono::steady_clock;

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Args {
  int epochs = 30;
  std::int64_t train_samples = 30000;
  std::int64_t val_samples = 2000;
  int hidden = 32;
  std::string cell = "lstm";
  int batch = 64;
  double lr = 2e-3;
  std::uint64_t seed = 1;
  int threads = 1;
  std::string config;
  std::string run_root = "runs";
  std::string run_name = "fashion_mnist";
  int probes_per_class = -1;
  int window = -1;
  bool early_stop = false;
  double monitor_share = 0.25;  // updater.max_cpu_share without --config (docs/PERFORMANCE.md)
  // embedding.n_landmark without --config. PHATE's 2000 made the updater's frames on this
  // window (<= 27k nodes) cost 5-12 s of one core, so only every ~6th epoch got a frame; 1000
  // landmarks (still 1 per ~27 nodes) cost 0.5-2 s and give a frame for nearly every epoch.
  int landmarks = 1000;
  bool monitor = true;
  std::string data = "build/data/fashion-mnist";
  std::string save_weights;
  bool quiet = false;
  std::set<std::string> given;  // flags on the command line: they win over --config
};

[[noreturn]] void usage(const std::string& problem) {
  (problem.empty() ? std::cout : std::cerr)
            << (problem.empty() ? "" : "fashion_mnist_monitor: " + problem + "\n")
            << "usage: fashion_mnist_monitor [flags]   (no flags: the ~2 minute LSTM demo)\nflags: --epochs N --train-samples N --val-samples N --hidden N --cell lstm|gru|rnn --batch N --lr X\n"
               "       --seed N --threads N --config FILE --run-root DIR --run-name NAME --probes-per-class N\n"
               "       --window N --early-stop --monitor-share X (updater's share of a core, default 0.25)\n"
               "       --landmarks N (embedding.n_landmark, default 1000)\n"
               "       --no-monitor --data DIR --save-weights FILE --quiet\n";
  std::exit(problem.empty() ? 0 : 2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("flag " + k + " needs a value");
      return argv[++i];
    };
    a.given.insert(k);
    try {
      if (k == "--epochs") a.epochs = std::stoi(value());
      else if (k == "--train-samples") a.train_samples = std::stoll(value());
      else if (k == "--val-samples") a.val_samples = std::stoll(value());
      else if (k == "--hidden") a.hidden = std::stoi(value());
      else if (k == "--cell") a.cell = value();
      else if (k == "--batch") a.batch = std::stoi(value());
      else if (k == "--lr") a.lr = std::stod(value());
      else if (k == "--seed") a.seed = std::stoull(value());
      else if (k == "--threads") a.threads = std::stoi(value());
      else if (k == "--config") a.config = value();
      else if (k == "--run-root") a.run_root = value();
      else if (k == "--run-name") a.run_name = value();
      else if (k == "--probes-per-class") a.probes_per_class = std::stoi(value());
      else if (k == "--window") a.window = std::stoi(value());
      else if (k == "--early-stop") a.early_stop = true;
      else if (k == "--monitor-share") a.monitor_share = std::stod(value());
      else if (k == "--landmarks") a.landmarks = std::stoi(value());
      else if (k == "--no-monitor") a.monitor = false;
      else if (k == "--data") a.data = value();
      else if (k == "--save-weights") a.save_weights = value();
      else if (k == "--quiet") a.quiet = true;
      else if (k == "--help" || k == "-h") usage("");
      else usage("unknown flag " + k);
    } catch (const std::invalid_argument&) {
      usage("flag " + k + " needs a number");
    } catch (const std::out_of_range&) {
      usage("flag " + k + ": value out of range");
    }
  }
  if (a.cell != "lstm" && a.cell != "gru" && a.cell != "rnn") usage("--cell must be lstm, gru or rnn, got " + a.cell);
  if (a.epochs < 1 || a.hidden < 1 || a.batch < 1 || a.threads < 1 || !(a.lr > 0) || a.train_samples < 0 ||
      a.val_samples < 1)
    usage("--epochs, --hidden, --batch, --threads, --lr, --val-samples must be positive");
  return a;
}

// One recurrent layer (tapped: its hidden states are what the monitor sees) and a linear head
// on the last step.
struct ClassifierImpl : torch::nn::Module {
  ClassifierImpl(const std::string& cell, int hidden) {
    if (cell == "lstm") lstm = register_module("rnn", TappedLSTM(torch::nn::LSTMOptions(28, hidden).batch_first(true)));
    else if (cell == "gru") gru = register_module("rnn", TappedGRU(torch::nn::GRUOptions(28, hidden).batch_first(true)));
    else rnn = register_module("rnn", TappedRNN(torch::nn::RNNOptions(28, hidden).batch_first(true)));
    head = register_module("head", torch::nn::Linear(hidden, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = lstm ? std::get<0>(lstm->forward(x)) : gru ? std::get<0>(gru->forward(x)) : std::get<0>(rnn->forward(x));
    return head->forward(h.select(1, -1));
  }
  std::shared_ptr<CaptureSlot> slot() const { return lstm ? lstm->slot() : gru ? gru->slot() : rnn->slot(); }
  TappedLSTM lstm{nullptr};
  TappedGRU gru{nullptr};
  TappedRNN rnn{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Classifier);

// Images [N, 1, 28, 28] in [0, 1] -> sequences [N, 28 steps, 28 features], standardised.
torch::Tensor as_sequences(const torch::Tensor& images) {
  return ((images.to(torch::kFloat32) - 0.2860) / 0.3530).reshape({-1, 28, 28});
}

std::pair<double, double> evaluate(Classifier& model, const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  model->eval();
  double loss = 0, correct = 0;
  const std::int64_t n = x.size(0);
  for (std::int64_t i = 0; i < n; i += 500) {
    const std::int64_t m = std::min<std::int64_t>(500, n - i);
    const torch::Tensor logits = model->forward(x.narrow(0, i, m));
    loss += torch::nn::functional::cross_entropy(logits, y.narrow(0, i, m),
                                                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                .item<double>();
    correct += logits.argmax(1).eq(y.narrow(0, i, m)).sum().item<double>();
  }
  model->train();
  return {loss / static_cast<double>(n), correct / static_cast<double>(n)};
}

int run(const Args& a) {
  torch::set_num_threads(a.threads);
  // With the monitor, attach() sizes OpenBLAS's pool to torch's threads (process.blas_threads).
  // --no-monitor runs exist to be compared with monitored ones, bit for bit: size it the same.
  if (!a.monitor) align_blas_threads();
  torch::manual_seed(a.seed);
  const std::string dir = prepare_fashion_mnist(a.data);
  auto train_set = torch::data::datasets::MNIST(dir, torch::data::datasets::MNIST::Mode::kTrain);
  auto test_set = torch::data::datasets::MNIST(dir, torch::data::datasets::MNIST::Mode::kTest);
  torch::Tensor train_x = as_sequences(train_set.images()), train_y = train_set.targets();
  if (a.train_samples > 0 && a.train_samples < train_x.size(0)) {
    train_x = train_x.narrow(0, 0, a.train_samples);
    train_y = train_y.narrow(0, 0, a.train_samples);
  }
  const torch::Tensor test_x = as_sequences(test_set.images()), test_y = test_set.targets();
  const std::int64_t nval = std::min<std::int64_t>(a.val_samples, test_x.size(0));
  const torch::Tensor val_x = test_x.narrow(0, 0, nval), val_y = test_y.narrow(0, 0, nval);

  Classifier model(a.cell, a.hidden);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(a.lr));

  std::optional<Monitor> monitor;
  if (a.monitor) {
    MonitorConfig cfg = a.config.empty() ? MonitorConfig{} : load_monitor_config(a.config);
    // Command line > --config file > the demo's defaults; where each value came from is
    // printed, so a config file never silently swallows a flag.
    std::ostringstream sources;
    const std::string from_file = "--config " + a.config;
    const auto pick = [&](auto& field, const auto& value, const char* flag, const char* key) {
      const bool on_line = a.given.count(flag) != 0;
      if (on_line || a.config.empty()) field = value;
      sources << (sources.tellp() > 0 ? ", " : "") << key << " = " << field << " ("
              << (on_line ? flag : a.config.empty() ? "demo default" : from_file.c_str()) << ")";
    };
    pick(cfg.run.root, a.run_root, "--run-root", "run.root");
    pick(cfg.run.name, a.run_name, "--run-name", "run.name");
    // A config's run.path would outrank root/name: an explicit root or name replaces it.
    if (!cfg.run.path.empty() && (a.given.count("--run-root") || a.given.count("--run-name"))) {
      sources << ", run.path '" << cfg.run.path << "' (" << from_file << ") dropped for --run-root/--run-name";
      cfg.run.path.clear();
    }
    pick(cfg.updater.max_cpu_share, a.monitor_share, "--monitor-share", "updater.max_cpu_share");
    pick(cfg.embedding.n_landmark, a.landmarks, "--landmarks", "embedding.n_landmark");
    std::cout << "mmphate: monitor settings: " << sources.str() << std::endl;
    if (a.probes_per_class > 0) cfg.capture.probes_per_class = a.probes_per_class;
    if (a.window > 0) cfg.retention.max_epochs = a.window;
    if (a.early_stop) {
      cfg.early_stopping.enabled = true;
      cfg.early_stopping.monitor = "val_loss";
      cfg.early_stopping.mode = StopMode::min;
      cfg.early_stopping.patience = 3;
    }
    monitor.emplace(cfg);
    // Probes: a fixed stratified sample of the test set (never trained on).
    ProbeSet probes = ProbeSet::stratified(test_x.narrow(0, nval, test_x.size(0) - nval),
                                           test_y.narrow(0, nval, test_y.size(0) - nval), cfg.capture.probes_per_class,
                                           cfg.capture.probe_seed);
    attach(*monitor, model.ptr(), model->slot(), std::move(probes),
           [model](const torch::Tensor& p) mutable { model->forward(p); });
    // frames.file = false: no run folder; the frames go to stdout / callbacks only.
    const std::string where = !cfg.frames.file ? std::string("stdout and callbacks only (frames.file is false)")
                                               : monitor->run_dir() + "/frames.jsonl";
    std::cout << "mmphate: frames go to " << where << " (" << a.cell << "-" << a.hidden << ", " << a.epochs
              << " epochs)" << std::endl;
  }

  const auto t_start = Clock::now();
  const double cpu_start = thread_cpu_seconds();
  std::int64_t step = 0;
  const std::int64_t n = train_x.size(0);
  for (int epoch = 0; epoch < a.epochs; ++epoch) {
    const auto t_epoch = Clock::now();
    const torch::Tensor order = torch::randperm(n, torch::kLong);
    double loss_sum = 0, correct = 0;
    model->train();
    for (std::int64_t i = 0; i < n; i += a.batch) {
      const torch::Tensor idx = order.narrow(0, i, std::min<std::int64_t>(a.batch, n - i));
      const torch::Tensor x = train_x.index_select(0, idx), y = train_y.index_select(0, idx);
      optimizer.zero_grad();
      const torch::Tensor logits = model->forward(x);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(idx.size(0));
      correct += logits.argmax(1).eq(y).sum().item<double>();
      ++step;
    }
    const auto [val_loss, val_acc] = evaluate(model, val_x, val_y);
    const std::map<std::string, double> metrics{{"train_loss", loss_sum / static_cast<double>(n)},
                                                {"train_accuracy", correct / static_cast<double>(n)},
                                                {"val_loss", val_loss},
                                                {"val_accuracy", val_acc}};
    const double epoch_s = std::chrono::duration<double>(Clock::now() - t_epoch).count();
    std::string status;
    if (monitor) {
      monitor->on_epoch_end(epoch, metrics, step, epoch + 1 == a.epochs);
      const MonitorStats st = monitor->stats();
      char buf[200];
      std::snprintf(buf, sizeof buf, " | frames %lld, phase %s (last update %.2f s)", static_cast<long long>(st.frames),
                    st.phase.c_str(), st.last_update_s);
      status = buf;
    }
    if (!a.quiet)
      std::printf("epoch %2d  train loss %.4f acc %.3f  val loss %.4f acc %.3f  (%.1f s)%s\n", epoch,
                  metrics.at("train_loss"), metrics.at("train_accuracy"), val_loss, val_acc, epoch_s, status.c_str());
    std::fflush(stdout);
    if (monitor && monitor->should_stop()) {
      std::printf("early stop: %s\n", monitor->stop_reason().c_str());
      break;
    }
  }
  const double train_s = std::chrono::duration<double>(Clock::now() - t_start).count();
  std::printf("training took %.1f s\n", train_s);
  // The training thread's own CPU time: less exposed than wall time to a shared host's drift,
  // and it still grows when the updater slows training down (cache, memory bandwidth, clock).
  std::printf("training thread cpu %.1f s\n", thread_cpu_seconds() - cpu_start);
  if (!a.save_weights.empty()) {
    torch::serialize::OutputArchive archive;
    model->save(archive);
    archive.save_to(a.save_weights);
  }
  if (monitor) {
    monitor->flush(std::chrono::minutes(5));
    const MonitorStats st = monitor->stats();
    std::printf("mmphate: %lld frames (%lld full, %lld failed, %lld epochs coalesced) in %s/frames.jsonl\n",
                static_cast<long long>(st.frames), static_cast<long long>(st.full_frames),
                static_cast<long long>(st.failed_frames), static_cast<long long>(st.coalesced_epochs),
                monitor->run_dir().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::cerr << "fashion_mnist_monitor: error: " << e.what() << std::endl;
    return 1;
  }
}
