// mmphate::torch from another project, written as the README shows: a tapped LSTM classifier
// trained for 2 epochs while a Monitor embeds its hidden states and writes frames.
// Usage: consumer_torch RUN_DIR [MONITOR_CONFIG.json]
// (e.g. <prefix>/share/mmphate/configs/monitor_default.json). Prints the frames written.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include <mmphate/torch.hpp>

using namespace mmphate::torchlayer;

struct NetImpl : torch::nn::Module {
  NetImpl() {
    lstm = register_module("lstm", TappedLSTM(torch::nn::LSTMOptions(4, 8).batch_first(true)));
    head = register_module("head", torch::nn::Linear(8, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) { return head->forward(std::get<0>(lstm->forward(x)).select(1, -1)); }
  TappedLSTM lstm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Net);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: consumer_torch RUN_DIR [MONITOR_CONFIG.json]\n");
    return 2;
  }
  try {
    torch::manual_seed(0);
    torch::set_num_threads(1);
    // Sequences of 10 steps x 4 features; the class is the sign of their sum.
    const torch::Tensor x = torch::randn({256, 10, 4});
    const torch::Tensor y = (x.sum({1, 2}) > 0).to(torch::kLong);

    mmphate::MonitorConfig cfg = argc > 2 ? mmphate::load_monitor_config(argv[2]) : mmphate::MonitorConfig();
    cfg.run.path = argv[1];
    mmphate::Monitor monitor(cfg);
    Net model;
    attach(monitor, model.ptr(), model->lstm->slot(), ProbeSet::stratified(x, y, 8, /*seed*/ 0),
           [&](const torch::Tensor& probes) { model->forward(probes); });

    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-2));
    std::int64_t step = 0;
    for (int epoch = 0; epoch < 2; ++epoch) {
      double loss_sum = 0;
      for (std::int64_t b = 0; b < 8; ++b, ++step) {
        opt.zero_grad();
        const torch::Tensor loss =
            torch::nn::functional::cross_entropy(model->forward(x.narrow(0, b * 32, 32)), y.narrow(0, b * 32, 32));
        loss.backward();
        opt.step();
        loss_sum += loss.item<double>();
      }
      monitor.on_epoch_end(epoch, {{"train_loss", loss_sum / 8}}, step);
      std::printf("epoch %d loss %.4f\n", epoch, loss_sum / 8);
    }
    monitor.flush(std::chrono::seconds(60));
    const mmphate::MonitorStats s = monitor.stats();
    std::printf("snapshots %lld, frames %lld, run %s\n", static_cast<long long>(s.snapshots),
                static_cast<long long>(s.frames), monitor.run_dir().c_str());
    return s.frames >= 1 && s.failed_frames == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer_torch: %s\n", e.what());
    return 1;
  }
}
