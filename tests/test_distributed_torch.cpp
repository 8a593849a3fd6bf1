// mmphate::torchlayer::distributed(): the hook built from a c10d ProcessGroup (Gloo here),
// in one process: ranks as threads over a HashStore. The 2-process runs are distributed.*.
#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "mmphate/error.hpp"
#include "mmphate/torch/distributed.hpp"
#include "mmphate/torch/monitor_attach.hpp"

using namespace mmphate;
using namespace mmphate::torchlayer;
using Clock = std::chrono::steady_clock;

namespace {

c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo_group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                                      std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(DistributedTorch, OptionsAreCheckedWithClearErrors) {
  EXPECT_EQ(error_of([] { distributed({}); }), "distributed: DistributedOptions::process_group is null");
  auto store = c10::make_intrusive<c10d::HashStore>();
  DistributedOptions o{gloo_group(store, 0, 1, std::chrono::seconds(5))};
  o.timeout = std::chrono::milliseconds(0);
  EXPECT_EQ(error_of([&] { distributed(o); }), "distributed: DistributedOptions::timeout must be positive, not 0 ms");
}

TEST(DistributedTorch, HookCarriesRankAndBroadcastsRankZerosDecision) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  DistributedHook hooks[2];
  std::thread t([&] { hooks[1] = distributed({gloo_group(store, 1, 2, std::chrono::seconds(10))}); });
  hooks[0] = distributed({gloo_group(store, 0, 2, std::chrono::seconds(10))});
  t.join();
  EXPECT_EQ(hooks[0].rank, 0);
  EXPECT_EQ(hooks[1].rank, 1);
  EXPECT_EQ(hooks[1].world_size, 2);
  for (bool decision : {false, true}) {
    bool got = !decision;
    std::thread other([&] { got = hooks[1].agree_stop(!decision); });  // rank 1's value is ignored
    EXPECT_EQ(hooks[0].agree_stop(decision), decision);
    other.join();
    EXPECT_EQ(got, decision);
  }
}

// Rank 0 never calls: rank 1's wait ends after DistributedOptions::timeout with one clear line
// (c10d's own message carries a C++ backtrace).
TEST(DistributedTorch, ASilentRankZeroIsATimeoutNotAHang) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg0;
  std::thread t([&] { pg0 = gloo_group(store, 0, 2, std::chrono::seconds(5)); });
  DistributedOptions o{gloo_group(store, 1, 2, std::chrono::seconds(5))};
  t.join();
  o.timeout = std::chrono::milliseconds(300);
  const DistributedHook h = distributed(o);
  const auto t0 = Clock::now();
  const std::string e = error_of([&] { h.agree_stop(false); });
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(e, "rank 0's decision did not arrive within 300 ms (DistributedOptions::timeout; Operation timed out!)");
  // Let the broadcast in flight end (rank 0 answers late) before the groups are destroyed.
  std::vector<at::Tensor> flag{torch::zeros({1}, torch::kInt32)};
  pg0->broadcast(flag)->wait();
}

// Ranks other than 0: attach() checks its arguments and installs nothing, so no probe pass.
TEST(DistributedTorch, AttachOnOtherRanksRecordsNothing) {
  const std::string dir = std::string(MMPHATE_BINARY_DIR) + "/test_runs/dist_torch_attach";
  std::filesystem::remove_all(dir);
  MonitorConfig cfg;
  cfg.run.path = dir;
  Monitor monitor(cfg, DistributedHook{1, 2, [](bool) { return false; }});
  auto lstm = TappedLSTM(torch::nn::LSTMOptions(2, 4).batch_first(true));
  int forwards = 0;
  ProbeSet probes{torch::randn({3, 5, 2}), {0, 1, 2}, {}};
  EXPECT_THROW(attach(monitor, nullptr, lstm->slot(), probes, [](const torch::Tensor&) {}), Error);
  attach(monitor, lstm.ptr(), lstm->slot(), probes, [&](const torch::Tensor& x) {
    ++forwards;
    lstm->forward(x);
  });
  for (int e = 0; e < 3; ++e) monitor.on_epoch_end(e);
  EXPECT_EQ(forwards, 0);
  EXPECT_EQ(monitor.store().view().snapshots.size(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir));
}
