// Data-parallel training with the monitor on (docs/DISTRIBUTED.md): every rank trains a tapped
// LSTM on its shard of a synthetic sequence task, gradients are all-reduced through a c10d
// ProcessGroupGloo, and one mmphate::Monitor per rank watches it. Rank 0 records and writes
// runs/ddp/version_<n>/; the others write nothing and stop when rank 0 says so.
//
//   scripts/ddp_demo.sh                       2 ranks on this machine (FileStore rendezvous)
//   ddp_monitor --rank R --world W --store FILE [flags]    one rank by hand
//
// Flags: --rank R, --world W (default: $RANK, $WORLD_SIZE), --store FILE (a FileStore path
// every rank shares), --epochs N, --samples N (training sequences, split between ranks),
// --hidden N, --batch N (per rank), --lr X, --config FILE (monitor config), --run-root DIR,
// --early-stop (val_loss, patience 3), --timeout-s S (the process group's and the monitor's
// collective timeout, default 120), --quiet. For the tests: --monitor-timeout-ms N (the
// monitor's alone) and --fault-rank0 exit@K | hang@K (rank 0 _exit()s, or stops answering,
// after training epoch K, before its on_epoch_end).
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <unistd.h>

#include "mmphate/error.hpp"
#include "mmphate/monitor/monitor.hpp"
#include "mmphate/torch/distributed.hpp"
#include "mmphate/torch/monitor_attach.hpp"
#include "mmphate/torch/tapped_rnn.hpp"

using namespace mmphate;
using namespace mmphate::torchlayer;

namespace {

struct Args {
  int rank = -1, world = -1;
  std::string store;
  int epochs = 12;
  std::int64_t samples = 1200;
  int hidden = 16;
  int batch = 50;
  double lr = 1e-2;
  std::string config;
  std::string run_root = "runs";
  bool early_stop = false;
  double timeout_s = 120;
  std::int64_t monitor_timeout_ms = -1;
  std::string fault;  // "exit" or "hang"
  int fault_epoch = -1;
  bool quiet = false;
};

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "ddp_monitor: " << problem << "\n";
  std::cerr << "usage: ddp_monitor --rank R --world W --store FILE [--epochs N] [--samples N] [--hidden N] "
               "[--batch N] [--lr X] [--config FILE] [--run-root DIR] [--early-stop] [--timeout-s S] [--quiet]\n";
  std::exit(problem.empty() ? 0 : 2);
}

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : -1;
}

Args parse(int argc, char** argv) {
  Args a;
  a.rank = env_int("RANK");
  a.world = env_int("WORLD_SIZE");
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("flag " + k + " needs a value");
      return argv[++i];
    };
    try {
      if (k == "--rank") a.rank = std::stoi(value());
      else if (k == "--world") a.world = std::stoi(value());
      else if (k == "--store") a.store = value();
      else if (k == "--epochs") a.epochs = std::stoi(value());
      else if (k == "--samples") a.samples = std::stoll(value());
      else if (k == "--hidden") a.hidden = std::stoi(value());
      else if (k == "--batch") a.batch = std::stoi(value());
      else if (k == "--lr") a.lr = std::stod(value());
      else if (k == "--config") a.config = value();
      else if (k == "--run-root") a.run_root = value();
      else if (k == "--early-stop") a.early_stop = true;
      else if (k == "--timeout-s") a.timeout_s = std::stod(value());
      else if (k == "--monitor-timeout-ms") a.monitor_timeout_ms = std::stoll(value());
      else if (k == "--fault-rank0") {
        const std::string v = value();
        const auto at = v.find('@');
        if (at == std::string::npos) usage("--fault-rank0 takes exit@EPOCH or hang@EPOCH, got " + v);
        a.fault = v.substr(0, at);
        a.fault_epoch = std::stoi(v.substr(at + 1));
        if (a.fault != "exit" && a.fault != "hang") usage("--fault-rank0 takes exit@EPOCH or hang@EPOCH, got " + v);
      } else if (k == "--quiet") a.quiet = true;
      else if (k == "--help" || k == "-h") usage("");
      else usage("unknown flag " + k);
    } catch (const std::invalid_argument&) {
      usage("flag " + k + " needs a number");
    } catch (const std::out_of_range&) {
      usage("flag " + k + ": value out of range");
    }
  }
  if (a.world < 1 || a.rank < 0 || a.rank >= a.world) usage("--rank R and --world W (0 <= R < W) are required");
  if (a.store.empty()) usage("--store FILE is required (the same path on every rank)");
  if (a.epochs < 1 || a.hidden < 1 || a.batch < 1 || !(a.lr > 0) || !(a.timeout_s > 0) || a.samples < a.world * a.batch)
    usage("--epochs, --hidden, --batch, --lr, --timeout-s must be positive and --samples >= world x batch");
  return a;
}

// Three classes of noisy 2-D circles at different angular speeds, 16 steps each.
std::pair<torch::Tensor, torch::Tensor> make_data(std::int64_t n, std::uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor y = torch::randint(0, 3, {n}, torch::kLong);
  const torch::Tensor t = torch::arange(16, torch::kFloat32).unsqueeze(0);
  const torch::Tensor w = 0.25f + 0.2f * y.to(torch::kFloat32).unsqueeze(1);
  const torch::Tensor phase = torch::rand({n, 1}) * 6.2832f;
  const torch::Tensor angle = w * t + phase;
  torch::Tensor x = torch::stack({torch::sin(angle), torch::cos(angle)}, 2);
  x += 0.3f * torch::randn(x.sizes());
  return {x, y};
}

struct NetImpl : torch::nn::Module {
  explicit NetImpl(int hidden) {
    lstm = register_module("lstm", TappedLSTM(torch::nn::LSTMOptions(2, hidden).batch_first(true)));
    head = register_module("head", torch::nn::Linear(hidden, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return head->forward(std::get<0>(lstm->forward(x)).select(1, -1)); }
  TappedLSTM lstm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Net);

// Data parallelism by hand, as DDP does it: one all-reduce of all gradients, then the mean.
void allreduce_gradients(c10d::ProcessGroup& pg, const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) grads.push_back(p.grad().reshape({-1}));
  std::vector<torch::Tensor> flat{torch::cat(grads)};
  pg.allreduce(flat)->wait();
  flat[0].div_(pg.getSize());
  std::int64_t at = 0;
  for (const auto& p : params) {
    p.grad().copy_(flat[0].narrow(0, at, p.numel()).view_as(p));
    at += p.numel();
  }
}

double allreduce_mean(c10d::ProcessGroup& pg, double v) {
  std::vector<torch::Tensor> t{torch::full({1}, v, torch::kFloat64)};
  pg.allreduce(t)->wait();
  return t[0].item<double>() / pg.getSize();
}

std::string first_line(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  const std::string s = c10 ? c10->what_without_backtrace() : e.what();
  return s.substr(0, s.find('\n'));
}

int run(const Args& a) {
  torch::set_num_threads(1);
  const std::string me = "rank " + std::to_string(a.rank) + "/" + std::to_string(a.world);
  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(a.timeout_s * 1000));

  // The process group, as a LibTorch DDP program builds it: a FileStore every rank shares,
  // Gloo over the loopback interface. Its timeout bounds every collective's wait inside Gloo.
  auto store = c10::make_intrusive<c10d::FileStore>(a.store, a.world);
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, a.rank, a.world, options);

  // The same config on every rank; the hook tells the monitor which rank it is.
  MonitorConfig cfg = a.config.empty() ? MonitorConfig{} : load_monitor_config(a.config);
  cfg.run.root = a.run_root;
  cfg.run.name = "ddp";
  if (a.config.empty()) {
    cfg.embedding.n_landmark = 200;
    cfg.updater.max_cpu_share = 0.5;
  }
  if (a.early_stop) {
    cfg.early_stopping.enabled = true;
    cfg.early_stopping.monitor = "val_loss";
    cfg.early_stopping.patience = 3;
  }
  DistributedOptions dist{pg};
  dist.timeout = a.monitor_timeout_ms > 0 ? std::chrono::milliseconds(a.monitor_timeout_ms) : timeout;
  Monitor monitor(cfg, distributed(dist));

  const auto [x, y] = make_data(a.samples, 1);
  const auto [val_x, val_y] = make_data(300, 2);
  torch::manual_seed(7);  // the same initial weights on every rank
  Net model(a.hidden);
  attach(monitor, model.ptr(), model->lstm->slot(), ProbeSet::stratified(val_x, val_y, 4, 0),
         [model](const torch::Tensor& p) mutable { model->forward(p); });  // records on rank 0 only
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(a.lr));

  // This rank's shard: every world-th sequence, the same count on every rank.
  const std::int64_t per_rank = a.samples / a.world / a.batch * a.batch;
  const torch::Tensor shard = torch::arange(a.rank, a.rank + per_rank * a.world, a.world, torch::kLong);
  std::int64_t step = 0;
  int epoch = 0, epochs_run = 0;
  try {
    for (; epoch < a.epochs; ++epoch) {
      model->train();
      double loss_sum = 0;
      const torch::Tensor order = shard.index_select(0, torch::randperm(per_rank, torch::kLong));
      for (std::int64_t i = 0; i < per_rank; i += a.batch) {
        const torch::Tensor idx = order.narrow(0, i, a.batch);
        opt.zero_grad();
        torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x.index_select(0, idx)),
                                                                  y.index_select(0, idx));
        loss.backward();
        allreduce_gradients(*pg, model->parameters());
        opt.step();
        loss_sum += loss.item<double>();
        ++step;
      }
      const double train_loss = allreduce_mean(*pg, loss_sum / static_cast<double>(per_rank / a.batch));
      epochs_run = epoch + 1;
      if (a.rank == 0 && epoch == a.fault_epoch) {
        if (a.fault == "exit") _exit(7);  // dies mid-training: no destructors, sockets closed by the kernel
        std::this_thread::sleep_for(std::chrono::hours(1));  // "hang": alive but never answers
      }
      std::map<std::string, double> metrics{{"train_loss", train_loss}};
      if (a.rank == 0) {  // validation on rank 0 only: the others wait for it in on_epoch_end
        torch::NoGradGuard no_grad;
        model->eval();
        metrics["val_loss"] = torch::nn::functional::cross_entropy(model->forward(val_x), val_y).item<double>();
      }
      monitor.on_epoch_end(epoch, metrics, step);  // every rank, once per epoch: the stop broadcast
      if (!a.quiet)
        std::printf("%s: epoch %d train_loss %.4f%s\n", me.c_str(), epoch, train_loss,
                    a.rank == 0 ? (" val_loss " + std::to_string(metrics["val_loss"])).c_str() : "");
      if (monitor.should_stop()) {  // rank 0's decision, the same on every rank
        std::printf("%s: stopped at epoch %d: %s\n", me.c_str(), epoch, monitor.stop_reason().c_str());
        break;
      }
    }
  } catch (const std::exception& e) {
    // Training's own collectives fail when a rank is gone; the monitor never throws here.
    std::printf("%s: training's collective failed at epoch %d: %s\n", me.c_str(), epoch, first_line(e).c_str());
    std::fflush(stdout);
    return 3;
  }
  double checksum = 0;  // identical on every rank when the gradients were all-reduced
  for (const auto& p : model->parameters()) checksum += p.to(torch::kFloat64).abs().sum().item<double>();
  std::printf("%s: trained %d epoch(s), weights checksum %.12e\n", me.c_str(), epochs_run, checksum);
  if (a.rank == 0) {
    monitor.flush(std::chrono::seconds(60));
    std::printf("%s: run written to %s\n", me.c_str(), monitor.run_dir().c_str());
  } else {
    std::printf("%s: no run folder on this rank\n", me.c_str());
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::cerr << "ddp_monitor: error: " << first_line(e) << std::endl;
    return 1;
  }
}
