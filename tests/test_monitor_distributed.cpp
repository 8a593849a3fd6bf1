// The monitor's data-parallel contract without torch (docs/DISTRIBUTED.md): ranks are Monitors
// in one process joined by an in-process broadcast. Rank 0 records and writes; other ranks
// write and record nothing; on_epoch_end runs the collective once per call on every rank and
// should_stop() returns rank 0's decision everywhere; a failed or timed-out collective stops
// the rank with a clear reason and is never called again. The real thing (2 processes, Gloo,
// FileStore) is the CTest test distributed.gloo_two_ranks.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "mmphate/error.hpp"
#include "mmphate/monitor/monitor.hpp"
#include "testing/synthetic.hpp"
#include "test_util.hpp"
#include "testing/store_traces.hpp"

using namespace mmphate;
namespace fs = std::filesystem;

namespace {

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new mmphate::testing::SingleThreaded);

constexpr Index kSteps = 6, kUnits = 8, kProbes = 12;

Snapshot snapshot(Index e) {
  static const RowMatrix trace = make_multislice_trace(40 * kSteps, kUnits, kProbes, 2, 3);
  Snapshot s = snapshot_from_trace(trace, e, kSteps, kUnits);
  s.global_step = e + 1;
  s.layer = "rnn";
  return s;
}

MonitorConfig small_config(const std::string& path) {
  MonitorConfig cfg;
  cfg.run.path = path;
  cfg.retention.max_epochs = 5;
  cfg.embedding.interslice_knn = 5;
  cfg.embedding.interslice_edges = 8;
  cfg.embedding.n_landmark = 100;
  cfg.embedding.n_svd = 10;
  cfg.updater.shutdown_timeout_ms = 20000;
  cfg.diagnostics.score_queries = 50;
  return cfg;
}

std::string test_dir(const std::string& name) {
  const fs::path p = fs::path(MMPHATE_BINARY_DIR) / "test_runs" / name;
  fs::remove_all(p);
  return p.string();
}

// A broadcast from rank 0 among threads: round k's value is what rank 0 passed in its k-th
// call; a rank waits at most `timeout` for it.
class ThreadGroup {
 public:
  explicit ThreadGroup(std::chrono::milliseconds timeout) : timeout_(timeout) {}
  DistributedHook hook(int rank, int world) {
    return {rank, world, [this, rank, round = std::int64_t(0)](bool stop) mutable {
              std::unique_lock<std::mutex> lock(m_);
              const std::int64_t k = round++;
              if (rank == 0) {
                values_.push_back(stop);
                cv_.notify_all();
                return stop;
              }
              if (!cv_.wait_for(lock, timeout_, [&] { return static_cast<std::int64_t>(values_.size()) > k; }))
                throw Error("no answer from rank 0 within " + std::to_string(timeout_.count()) + " ms");
              return static_cast<bool>(values_[k]);
            }};
  }

 private:
  std::chrono::milliseconds timeout_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<char> values_;
};

}  // namespace

TEST(MonitorDistributed, OtherRanksWriteNothingAndNeverRecord) {
  const std::string dir = test_dir("dist_rank1");
  int calls = 0, records = 0, frames = 0;
  {
    MonitorConfig cfg = small_config(dir);
    cfg.save_snapshots = true;
    Monitor monitor(cfg, DistributedHook{1, 2, [&](bool mine) {
                                           EXPECT_FALSE(mine);  // only rank 0's value counts
                                           ++calls;
                                           return false;
                                         }});
    EXPECT_EQ(monitor.rank(), 1);
    monitor.set_recorder([&](std::int64_t, std::int64_t) { ++records; }, {});
    monitor.add_callback([&](const nlohmann::json&) { ++frames; });  // not even `finished` comes
    for (int e = 0; e < 4; ++e) monitor.on_epoch_end(e, {{"val_loss", 1.0}}, e);
    EXPECT_FALSE(monitor.push(snapshot(0)));
    EXPECT_TRUE(monitor.flush(std::chrono::seconds(5)));
    EXPECT_FALSE(monitor.should_stop());
    EXPECT_TRUE(monitor.run_dir().empty());
    EXPECT_EQ(monitor.stats().snapshots, 0);
  }
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(records, 0);
  EXPECT_EQ(frames, 0);
  EXPECT_FALSE(fs::exists(dir));
}

TEST(MonitorDistributed, EarlyStoppingOnRankZeroStopsEveryRankAtTheSameEpoch) {
  const std::string dir = test_dir("dist_early");
  ThreadGroup group(std::chrono::seconds(30));
  int stopped[2] = {-1, -1};
  std::string reasons[2];
  auto run = [&](int rank) {
    MonitorConfig cfg = small_config(dir);
    cfg.early_stopping.enabled = true;
    cfg.early_stopping.monitor = "val_loss";
    cfg.early_stopping.patience = 2;
    Monitor monitor(cfg, group.hook(rank, 2));
    if (rank == 0)
      monitor.set_recorder([&monitor](std::int64_t e, std::int64_t) { monitor.push(snapshot(e)); },
                           std::vector<std::int64_t>(kProbes, 0));
    // Rank 0's loss stops improving after epoch 2; rank 1's keeps improving: rank 0 decides.
    const double rank0[] = {1.0, 0.8, 0.7, 0.75, 0.72, 0.71, 0.70, 0.69};
    for (int e = 0; e < 8; ++e) {
      monitor.on_epoch_end(e, {{"val_loss", rank == 0 ? rank0[e] : 1.0 / (e + 1)}}, e);
      if (monitor.should_stop()) {
        stopped[rank] = e;
        reasons[rank] = monitor.stop_reason();
        break;
      }
    }
  };
  std::thread other(run, 1);
  run(0);
  other.join();
  EXPECT_EQ(stopped[0], 4);
  EXPECT_EQ(stopped[1], 4);
  EXPECT_NE(reasons[0].find("val_loss"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[1].find("rank 0 decided to stop at epoch 4"), std::string::npos) << reasons[1];
  EXPECT_TRUE(fs::exists(dir + "/frames.jsonl"));
}

TEST(MonitorDistributed, AFailedCollectiveStopsTheRankOnceWithAClearReason) {
  int calls = 0;
  Monitor monitor(small_config(test_dir("dist_fail")), DistributedHook{1, 2, [&](bool) -> bool {
                                                                          if (++calls == 3)
                                                                            throw Error("connection reset by peer");
                                                                          return false;
                                                                        }});
  for (int e = 0; e < 6; ++e) {
    EXPECT_NO_THROW(monitor.on_epoch_end(e));
    EXPECT_EQ(monitor.should_stop(), e >= 2) << e;
  }
  EXPECT_EQ(calls, 3);  // never called again: the group no longer answers
  EXPECT_EQ(monitor.stop_reason(),
            "monitor (rank 1 of 2): the stop decision's collective failed at epoch 2: connection reset by peer; "
            "this rank stops (should_stop() is true)");
}

TEST(MonitorDistributed, AHookThrowingAnythingStillStopsTheRank) {
  Monitor monitor(small_config(test_dir("dist_throw_int")), DistributedHook{1, 2, [](bool) -> bool { throw 42; }});
  EXPECT_NO_THROW(monitor.on_epoch_end(0));
  EXPECT_TRUE(monitor.should_stop());
  EXPECT_NE(monitor.stop_reason().find("failed at epoch 0: a non-standard exception"), std::string::npos);
}

TEST(MonitorDistributed, RankZeroThatVanishesTimesOutInsteadOfHanging) {
  ThreadGroup group(std::chrono::milliseconds(300));
  Monitor rank0(small_config(test_dir("dist_vanish")), group.hook(0, 2));
  Monitor rank1(small_config(test_dir("dist_vanish_1")), group.hook(1, 2));
  rank0.on_epoch_end(0);
  rank1.on_epoch_end(0);
  EXPECT_FALSE(rank1.should_stop());
  const auto t0 = std::chrono::steady_clock::now();
  rank1.on_epoch_end(1);  // rank 0 never comes
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(rank1.should_stop());
  EXPECT_NE(rank1.stop_reason().find("no answer from rank 0 within 300 ms"), std::string::npos);
}

// A strict early-stopping mistake throws on rank 0, but only after the collective has told
// the other ranks to stop: they must not wait for a call that never comes.
TEST(MonitorDistributed, RankZerosErrorStillReachesTheCollective) {
  ThreadGroup group(std::chrono::seconds(30));
  MonitorConfig cfg = small_config(test_dir("dist_strict"));
  cfg.early_stopping.enabled = true;
  cfg.early_stopping.monitor = "val_los";
  Monitor rank0(cfg, group.hook(0, 2));
  cfg.run.path = test_dir("dist_strict_1");
  Monitor rank1(cfg, group.hook(1, 2));
  EXPECT_THROW(rank0.on_epoch_end(0, {{"val_loss", 1.0}}), Error);
  rank1.on_epoch_end(0, {{"val_loss", 1.0}});  // no throw here: rank 1 does not check metrics
  EXPECT_TRUE(rank1.should_stop());
  EXPECT_TRUE(rank0.should_stop());
}

TEST(MonitorDistributed, BadHooksAreClearErrors) {
  const std::string dir = test_dir("dist_bad");
  EXPECT_EQ(mmphate::testing::error_of([&] { Monitor m(small_config(dir), DistributedHook{2, 2, [](bool) { return false; }}); }),
            "distributed monitor: rank 2 is outside [0, world_size = 2)");
  EXPECT_EQ(mmphate::testing::error_of([&] { Monitor m(small_config(dir), DistributedHook{0, 2, nullptr}); }),
            "distributed monitor: the hook has no agree_stop collective (world_size 2)");
  EXPECT_FALSE(fs::exists(dir));
  // A bad config fails on every rank, not only on the one that writes.
  MonitorConfig bad = small_config(dir);
  bad.retention.max_epochs = 0;
  EXPECT_THROW(Monitor(bad, DistributedHook{1, 2, [](bool) { return false; }}), Error);
}
