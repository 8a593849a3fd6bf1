#include "mmphate/torch/distributed.hpp"

#include <string>
#include <thread>

#include "mmphate/error.hpp"

namespace mmphate::torchlayer {
namespace {

std::string first_line(const char* s) {
  const std::string t(s);
  return t.substr(0, t.find('\n'));
}

// One broadcast of rank 0's decision. Errors become one line: c10::Error's what() carries a
// C++ backtrace, what_without_backtrace() does not.
bool broadcast_stop(c10d::ProcessGroup& pg, bool stop, std::chrono::milliseconds timeout, const torch::Device& device,
                    bool poll) {
  std::vector<at::Tensor> flag{
      torch::full({1}, stop ? 1 : 0, torch::TensorOptions().dtype(torch::kInt32).device(device))};
  c10d::BroadcastOptions opts;
  opts.rootRank = 0;
  opts.timeout = timeout;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = pg.broadcast(flag, opts);
    if (poll) {
      // NCCL's wait() returns before the GPU has the result unless NCCL_BLOCKING_WAIT is set,
      // and reading the flag would then block without bound: wait for completion here.
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      while (!work->isCompleted()) {
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("Operation timed out!");
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      work->wait();
    } else {
      work->wait(timeout);
    }
    return flag[0].item<int>() != 0;
  } catch (const std::exception& e) {
    const auto* c10 = dynamic_cast<const c10::Error*>(&e);
    const std::string what = first_line(c10 ? c10->what_without_backtrace() : e.what());
    if (work && !work->isCompleted())
      throw Error("rank 0's decision did not arrive within " + std::to_string(timeout.count()) +
                  " ms (DistributedOptions::timeout; " + what + ")");
    throw Error("the " + pg.getBackendName() + " broadcast failed: " + what);
  }
}

}  // namespace

mmphate::DistributedHook distributed(DistributedOptions options) {
  if (!options.process_group) throw Error("distributed: DistributedOptions::process_group is null");
  if (options.timeout.count() <= 0)
    throw Error("distributed: DistributedOptions::timeout must be positive, not " +
                std::to_string(options.timeout.count()) + " ms");
  const c10::intrusive_ptr<c10d::ProcessGroup> pg = options.process_group;
  const bool nccl = pg->getBackendName() == "nccl";
  const torch::Device device = options.device ? *options.device : torch::Device(nccl ? torch::kCUDA : torch::kCPU);
  mmphate::DistributedHook hook;
  hook.rank = pg->getRank();
  hook.world_size = pg->getSize();
  const std::chrono::milliseconds timeout = options.timeout;
  hook.agree_stop = [pg, timeout, device, poll = device.is_cuda()](bool stop) {
    return broadcast_stop(*pg, stop, timeout, device, poll);
  };
  return hook;
}

}  // namespace mmphate::torchlayer
