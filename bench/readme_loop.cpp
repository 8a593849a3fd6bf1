// A user's program written from the README alone (not the demo): a 2-layer character-level
// LSTM language model on /usr/share/common-licenses/GPL-3, each layer a tapped module, watched
// by 0, 1 or 2 Monitors built from the default config, with on_epoch_end after every epoch as
// the README shows. It does none of the demo's process tuning: whatever a training loop needs
// to run at full speed with the monitor on must come from the library's defaults.
// bench/bench_readme_slowdown.sh runs it with and without monitors and reports the ratios.
//
//   readme_loop [--monitors 0|1|2] [--epochs N] [--batches N] [--torch-threads N] [--runs DIR]
//               [--config MONITOR.json]
// Prints one line per epoch (loss, the batches' wall and CPU time, the other threads' CPU time
// meanwhile, the wall time of the on_epoch_end calls, the mean time of batches during which
// the other threads ran and of those during which they did not), then "training took S s", "training thread cpu C s" and "frames F".
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <mmphate/torch/monitor_attach.hpp>

using namespace mmphate::torchlayer;

struct CharLmImpl : torch::nn::Module {
  CharLmImpl(int vocab, int hidden)
      : embed(register_module("embed", torch::nn::Embedding(vocab, 16))),
        l0(register_module("l0", TappedLSTM(torch::nn::LSTMOptions(16, hidden).batch_first(true)))),
        l1(register_module("l1", TappedLSTM(torch::nn::LSTMOptions(hidden, hidden).batch_first(true)))),
        head(register_module("head", torch::nn::Linear(hidden, vocab))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = std::get<0>(l0->forward(embed->forward(x)));
    h = std::get<0>(l1->forward(h));
    return head->forward(h);
  }
  torch::nn::Embedding embed;
  TappedLSTM l0, l1;
  torch::nn::Linear head;
};
TORCH_MODULE(CharLm);

static double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

static double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

int main(int argc, char** argv) {
  int monitors = 1, epochs = 8, batches = 200, torch_threads = 1;
  std::string runs = "runs", config;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--monitors") monitors = std::atoi(argv[i + 1]);
    else if (k == "--epochs") epochs = std::atoi(argv[i + 1]);
    else if (k == "--batches") batches = std::atoi(argv[i + 1]);
    else if (k == "--torch-threads") torch_threads = std::atoi(argv[i + 1]);
    else if (k == "--runs") runs = argv[i + 1];
    else if (k == "--config") config = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  torch::set_num_threads(torch_threads);

  std::ifstream in("/usr/share/common-licenses/GPL-3", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) {
    std::fprintf(stderr, "cannot read /usr/share/common-licenses/GPL-3\n");
    return 1;
  }
  std::map<unsigned char, std::int64_t> vocab;
  for (unsigned char c : text) vocab.emplace(c, 0);
  std::int64_t n = 0;
  for (auto& [c, id] : vocab) id = n++;
  std::vector<std::int64_t> ids;
  for (unsigned char c : text) ids.push_back(vocab[c]);
  const torch::Tensor all = torch::tensor(ids, torch::kLong);
  const std::int64_t steps = 40, train_end = static_cast<std::int64_t>(ids.size()) * 9 / 10;

  torch::manual_seed(1);
  CharLm model(static_cast<int>(n), 48);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(3e-3));

  // Probes: 40 held-out windows, labelled by the class of the next character.
  std::vector<torch::Tensor> seqs;
  std::vector<std::int64_t> labels;
  for (int p = 0; p < 40; ++p) {
    const std::int64_t at = train_end + p * (static_cast<std::int64_t>(ids.size()) - train_end - steps - 1) / 40;
    seqs.push_back(all.narrow(0, at, steps));
    const unsigned char next = static_cast<unsigned char>(text[static_cast<std::size_t>(at + steps)]);
    labels.push_back(std::islower(next) ? 0 : std::isupper(next) ? 1 : std::isspace(next) ? 2 : 3);
  }
  const ProbeSet probes{torch::stack(seqs), labels, {}};

  // As the README: one Monitor per watched layer, default config, attach, on_epoch_end.
  std::vector<std::unique_ptr<mmphate::Monitor>> watch;
  for (int m = 0; m < monitors; ++m) {
    mmphate::MonitorConfig cfg = config.empty() ? mmphate::MonitorConfig() : mmphate::load_monitor_config(config);
    cfg.run.root = runs;
    cfg.run.name = "readme_l" + std::to_string(m);
    watch.push_back(std::make_unique<mmphate::Monitor>(cfg));
    attach(*watch.back(), model.ptr(), m == 0 ? model->l0->slot() : model->l1->slot(), probes,
           [&](const torch::Tensor& x) { model->forward(x); });
  }

  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> start(0, train_end - steps - 2);
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = thread_cpu_s();
  std::int64_t step = 0;
  for (int e = 0; e < epochs; ++e) {
    double loss_sum = 0;
    const auto e0 = std::chrono::steady_clock::now();
    const double own0 = thread_cpu_s(), all0 = process_cpu_s();
    // Batches during which the other threads ran (busy: they used half a batch's time or more)
    // or not (idle: under 5 %), timed apart: within an epoch the host's drift cancels out.
    double busy_s = 0, idle_s = 0;
    int busy_n = 0, idle_n = 0;
    for (int b = 0; b < batches; ++b) {
      const auto b0 = std::chrono::steady_clock::now();
      const double bown0 = thread_cpu_s(), ball0 = process_cpu_s();
      std::vector<torch::Tensor> xs, ys;
      for (int i = 0; i < 32; ++i) {
        const std::int64_t s = start(rng);
        xs.push_back(all.narrow(0, s, steps));
        ys.push_back(all.narrow(0, s + 1, steps));
      }
      opt.zero_grad();
      const torch::Tensor loss = torch::nn::functional::cross_entropy(
          model->forward(torch::stack(xs)).reshape({-1, n}), torch::stack(ys).reshape({-1}));
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>();
      ++step;
      const double bw = std::chrono::duration<double>(std::chrono::steady_clock::now() - b0).count();
      const double bo = process_cpu_s() - ball0 - (thread_cpu_s() - bown0);
      if (bo >= 0.5 * bw) busy_s += bw, ++busy_n;
      else if (bo <= 0.05 * bw) idle_s += bw, ++idle_n;
    }
    // The epoch's batches: wall and own CPU, and the CPU the process's other threads (the
    // monitors' updaters and savers) used meanwhile, so that a run shows how much training
    // time each second of the monitor's work costs.
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
    const double own = thread_cpu_s() - own0, others = process_cpu_s() - all0 - own;
    const auto h0 = std::chrono::steady_clock::now();
    for (auto& m : watch) m->on_epoch_end(e, {{"train_loss", loss_sum / batches}}, step);
    const double hook = std::chrono::duration<double>(std::chrono::steady_clock::now() - h0).count();
    std::printf("epoch %d loss %.9f wall %.3f cpu %.3f others_cpu %.3f hook %.3f busy_batch %.6f busy_n %d idle_batch %.6f "
                "idle_n %d\n",
                e, loss_sum / batches, wall, own, others, hook, busy_n ? busy_s / busy_n : 0.0, busy_n,
                idle_n ? idle_s / idle_n : 0.0, idle_n);
    std::fflush(stdout);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = thread_cpu_s() - cpu0;
  std::int64_t frames = 0;
  for (auto& m : watch) {
    m->flush(std::chrono::seconds(60));
    frames += m->stats().frames;
  }
  std::printf("training took %.2f s\ntraining thread cpu %.2f s\nframes %lld\n", secs, cpu,
              static_cast<long long>(frames));
  return 0;
}
