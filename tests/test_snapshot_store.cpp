// SnapshotStore: retention policies against hand-computed expectations, time-step sampling,
// bad input, save/resume round trips bit for bit, crash-safe files, the concurrent hand-off
// (also built with ThreadSanitizer: test_snapshot_store_tsan), and assembly into the engine.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "mmphate/error.hpp"
#include "mmphate/snapshot_store.hpp"
#include "mmphate/trace.hpp"
#include "testing/store_traces.hpp"

using namespace mmphate;
namespace fs = std::filesystem;

namespace {

Snapshot make_snapshot(std::int64_t epoch, Index steps = 2, Index units = 3, Index probes = 4) {
  Snapshot s;
  s.epoch = epoch;
  s.global_step = epoch * 100;
  s.steps = steps;
  s.units = units;
  s.probes = probes;
  s.values.resize(static_cast<std::size_t>(steps * units * probes));
  for (std::size_t i = 0; i < s.values.size(); ++i) s.values[i] = static_cast<float>(epoch * 1000 + i) * 0.5f;
  return s;
}

std::vector<std::int64_t> epochs_of(const SnapshotStore& store) {
  std::vector<std::int64_t> e;
  for (const auto& s : store.view().snapshots) e.push_back(s->epoch);
  return e;
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("mmphate_store_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

}  // namespace

TEST(SnapshotStore, WindowKeepsTheLastEpochs) {
  RetentionPolicy p;
  p.kind = RetentionKind::window;
  p.max_epochs = 4;
  SnapshotStore store(p);
  for (int e = 0; e < 10; ++e) store.push(make_snapshot(e));
  EXPECT_EQ(epochs_of(store), (std::vector<std::int64_t>{6, 7, 8, 9}));
  int dropped = 0;
  for (const auto& d : store.decisions())
    if (d.action == "dropped") {
      ++dropped;
      EXPECT_NE(d.reason.find("window"), std::string::npos);
    }
  EXPECT_EQ(dropped, 6);
}

TEST(SnapshotStore, ThinKeepsEarlyEpochsThenADoublingStride) {
  // Rule: keep e < thin_dense, e - thin_dense divisible by the stride, and the newest; the
  // stride doubles until at most max_epochs remain. Worked by hand for thin_dense 3, max 6:
  // after epoch 6 -> {0,1,2,3,5,6}; 7 -> {0,1,2,3,5,7}; 8 -> {0,1,2,3,7,8} (stride 4);
  // 9 -> {0,1,2,3,7,9}; 10 -> {0,1,2,3,7,10}; 11 -> {0,1,2,3,7,11}.
  RetentionPolicy p;
  p.kind = RetentionKind::thin;
  p.thin_dense = 3;
  p.max_epochs = 6;
  SnapshotStore store(p);
  for (int e = 0; e <= 8; ++e) store.push(make_snapshot(e));
  EXPECT_EQ(epochs_of(store), (std::vector<std::int64_t>{0, 1, 2, 3, 7, 8}));
  for (int e = 9; e <= 11; ++e) store.push(make_snapshot(e));
  EXPECT_EQ(epochs_of(store), (std::vector<std::int64_t>{0, 1, 2, 3, 7, 11}));
}

TEST(SnapshotStore, MemoryBudgetDropsOldestButKeepsNewest) {
  RetentionPolicy p;
  p.max_epochs = 100;
  p.memory_budget_bytes = 300;  // each snapshot: 2 x 3 x 4 floats = 96 bytes
  SnapshotStore store(p);
  for (int e = 0; e < 6; ++e) store.push(make_snapshot(e));
  EXPECT_EQ(epochs_of(store), (std::vector<std::int64_t>{3, 4, 5}));
  EXPECT_EQ(store.bytes(), 288u);
  RetentionPolicy tiny = p;
  tiny.memory_budget_bytes = 10;
  SnapshotStore one(tiny);
  one.push(make_snapshot(0));
  one.push(make_snapshot(1));
  EXPECT_EQ(epochs_of(one), (std::vector<std::int64_t>{1}));
}

TEST(SnapshotStore, StepSamplingStrideAndEven) {
  RetentionPolicy p;
  p.step_sampling = StepSampling::stride;
  p.step_stride = 3;
  SnapshotStore store(p);
  store.push(make_snapshot(0, 10, 2, 3));
  const auto s = store.view().snapshots.front();
  EXPECT_EQ(s->step_index, (std::vector<std::int64_t>{0, 3, 6, 9}));
  ASSERT_EQ(s->steps, 4);
  const Snapshot original = make_snapshot(0, 10, 2, 3);
  for (Index i = 0; i < 4; ++i)
    for (Index j = 0; j < 6; ++j) EXPECT_EQ(s->values[i * 6 + j], original.values[s->step_index[i] * 6 + j]);

  RetentionPolicy q;
  q.step_sampling = StepSampling::even;
  q.step_count = 3;  // 0, round(4.5) = 5, 9
  SnapshotStore even(q);
  even.push(make_snapshot(0, 10, 2, 3));
  EXPECT_EQ(even.view().snapshots.front()->step_index, (std::vector<std::int64_t>{0, 5, 9}));
}

TEST(SnapshotStore, BadInputIsAClearError) {
  SnapshotStore store;
  Snapshot empty = make_snapshot(0);
  empty.probes = 0;
  empty.values.clear();
  try {
    store.push(empty);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("probe set is empty"), std::string::npos) << e.what();
  }
  store.push(make_snapshot(0, 2, 3, 4));
  try {
    store.push(make_snapshot(1, 2, 3, 5));
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("5 probes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("4 probes"), std::string::npos) << msg;
  }
  Snapshot wrong = make_snapshot(2);
  wrong.values.pop_back();
  EXPECT_THROW(store.push(wrong), Error);
  RetentionPolicy bad;
  bad.max_epochs = 0;
  EXPECT_THROW(SnapshotStore{bad}, Error);
}

TEST(SnapshotStore, NanIsCountedNotFatal) {
  SnapshotStore store;
  Snapshot s = make_snapshot(0);
  s.values[3] = std::numeric_limits<float>::quiet_NaN();
  s.values[7] = std::numeric_limits<float>::infinity();
  store.push(s);
  EXPECT_EQ(store.view().snapshots.front()->nonfinite, 2);
}

TEST(SnapshotStore, PushingAnOlderEpochReplacesTheHistoryFromThere) {
  SnapshotStore store;
  for (int e = 0; e < 5; ++e) store.push(make_snapshot(e));
  store.push(make_snapshot(3));
  EXPECT_EQ(epochs_of(store), (std::vector<std::int64_t>{0, 1, 2, 3}));
  int replaced = 0;
  for (const auto& d : store.decisions()) replaced += d.action == "replaced";
  EXPECT_EQ(replaced, 2);  // epochs 4 and 3
}

TEST(SnapshotStore, SaveResumeRoundTripIsBitExact) {
  const fs::path dir = temp_dir("roundtrip");
  SnapshotStore store;
  for (int e = 0; e < 4; ++e) {
    Snapshot s = make_snapshot(e, 3, 2, 5);
    s.step_valid = {1, 1, static_cast<std::uint8_t>(e % 2)};
    s.layer = "encoder.lstm";
    s.directions = 2;
    if (e == 2) s.values[1] = std::numeric_limits<float>::quiet_NaN();
    store.push(s);
  }
  store.save(dir.string());
  SnapshotStore back;
  back.resume(dir.string());
  const auto a = store.view().snapshots, b = back.view().snapshots;
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]->epoch, b[i]->epoch);
    EXPECT_EQ(a[i]->global_step, b[i]->global_step);
    EXPECT_EQ(a[i]->step_index, b[i]->step_index);
    EXPECT_EQ(a[i]->step_valid, b[i]->step_valid);
    EXPECT_EQ(a[i]->nonfinite, b[i]->nonfinite);
    EXPECT_EQ(b[i]->layer, "encoder.lstm");
    EXPECT_EQ(b[i]->directions, 2);
    ASSERT_EQ(a[i]->values.size(), b[i]->values.size());
    EXPECT_EQ(std::memcmp(a[i]->values.data(), b[i]->values.data(), a[i]->bytes()), 0);  // NaN bits too
  }
  // A resumed run continues the same history.
  back.push(make_snapshot(4, 3, 2, 5));
  EXPECT_EQ(epochs_of(back), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  fs::remove_all(dir);
}

TEST(SnapshotStore, ResumeIgnoresHalfWrittenFilesAndSaveRemovesDroppedOnes) {
  const fs::path dir = temp_dir("crash");
  RetentionPolicy p;
  p.max_epochs = 2;
  SnapshotStore store(p);
  store.push(make_snapshot(0));
  store.push(make_snapshot(1));
  store.save(dir.string());
  // A killed run: a temporary file and a snapshot file that index.json does not name.
  { std::ofstream(dir / "epoch_000002.npy.tmp") << "half"; }
  { std::ofstream(dir / "index.json.tmp") << "{ broken"; }
  SnapshotStore back(p);
  back.resume(dir.string());
  EXPECT_EQ(epochs_of(back), (std::vector<std::int64_t>{0, 1}));
  // After retention drops epoch 0, the next save deletes its file.
  store.push(make_snapshot(2));
  store.save(dir.string());
  EXPECT_FALSE(fs::exists(dir / "epoch_000000.npy"));
  EXPECT_TRUE(fs::exists(dir / "epoch_000002.npy"));
  SnapshotStore none;
  EXPECT_THROW(none.resume((dir / "missing").string()), Error);
  fs::remove_all(dir);
}

// A resume that fails part way (one snapshot file of five deleted) leaves the store empty and
// resumable, and a later save there keeps the earlier run's intact files (before: 3 snapshots
// stayed, a second resume was refused, and the next save deleted the intact newest file).
// save(dir) puts the files next to index.json (a monitor's <run>/snapshots/ holds both); saves
// made before that kept the .npy files in dir/snapshots/ and still resume.
TEST(SnapshotStore, SavedFilesSitNextToTheIndexAndOlderLayoutsResume) {
  const fs::path dir = temp_dir("layout");
  SnapshotStore store;
  for (int e = 0; e < 3; ++e) store.push(make_snapshot(e));
  store.save(dir.string());
  EXPECT_TRUE(fs::exists(dir / "index.json"));
  EXPECT_TRUE(fs::exists(dir / "epoch_000002.npy"));
  EXPECT_FALSE(fs::exists(dir / "snapshots"));
  // The older layout: files in snapshots/, named so by the index.
  fs::create_directories(dir / "snapshots");
  nlohmann::json index = nlohmann::json::parse(std::ifstream(dir / "index.json"));
  for (auto& entry : index["snapshots"]) {
    const std::string file = entry["file"];
    fs::rename(dir / file, dir / "snapshots" / file);
    entry["file"] = "snapshots/" + file;
  }
  std::ofstream(dir / "index.json") << index.dump();
  SnapshotStore back;
  back.resume(dir.string());
  EXPECT_EQ(epochs_of(back), (std::vector<std::int64_t>{0, 1, 2}));
  fs::remove_all(dir);
}

TEST(SnapshotStore, FailedResumeIsAllOrNothing) {
  const fs::path dir = temp_dir("atomic_resume");
  SnapshotStore store;
  for (int e = 0; e < 5; ++e) store.push(make_snapshot(e));
  store.save(dir.string());
  fs::remove(dir / "epoch_000003.npy");
  SnapshotStore back;
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      back.resume(dir.string());
      ADD_FAILURE() << "resume with a missing snapshot file succeeded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("epoch_000003.npy"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(back.view().snapshots.empty());
    EXPECT_EQ(back.view().version, 0u);
  }
  back.push(make_snapshot(7));
  back.save(dir.string());
  EXPECT_TRUE(fs::exists(dir / "epoch_000004.npy"));
  EXPECT_TRUE(fs::exists(dir / "epoch_000000.npy"));
  // Saved again in full, the history resumes.
  store.save(dir.string());
  SnapshotStore again;
  again.resume(dir.string());
  EXPECT_EQ(epochs_of(again), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  fs::remove_all(dir);
}

// A malformed index.json: errors name the entry and the key (no raw JSON exceptions), epochs
// must increase, and `file` entries must stay inside the snapshot folder.
TEST(SnapshotStore, MalformedIndexIsAClearError) {
  const fs::path dir = temp_dir("bad_index");
  SnapshotStore store;
  store.push(make_snapshot(0));
  store.push(make_snapshot(1));
  store.save(dir.string());
  nlohmann::json good;
  {
    std::ifstream in(dir / "index.json");
    good = nlohmann::json::parse(in);
  }
  auto expect_refused = [&](const nlohmann::json& index, const std::vector<std::string>& needles) {
    { std::ofstream(dir / "index.json") << index.dump(); }
    SnapshotStore back;
    try {
      back.resume(dir.string());
      ADD_FAILURE() << "accepted " << index.dump();
    } catch (const Error& e) {
      for (const auto& n : needles)
        EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not an mmphate::Error: " << e.what();
    }
    EXPECT_TRUE(back.view().snapshots.empty());
  };
  expect_refused(nlohmann::json::array(), {"not a mmphate snapshot index"});
  expect_refused({{"format", 5}}, {"not a mmphate snapshot index"});
  expect_refused({{"format", "mmphate-snapshots"}}, {"missing key 'snapshots'"});
  expect_refused({{"format", "mmphate-snapshots"}, {"snapshots", 5}}, {"'snapshots'", "an array"});
  nlohmann::json j = good;
  j["snapshots"][1] = 5;
  expect_refused(j, {"snapshots[1]: expected an object"});
  j = good;
  j["snapshots"][0].erase("epoch");
  expect_refused(j, {"snapshots[0]: missing key 'epoch'"});
  j = good;
  j["snapshots"][1]["epoch"] = "one";
  expect_refused(j, {"snapshots[1]", "key 'epoch'", "an integer"});
  j = good;
  j["snapshots"][1]["epoch"] = 0;
  expect_refused(j, {"snapshots[1]: epoch 0 after epoch 0", "increasing"});
  j = good;
  j["snapshots"][1]["step_valid"] = {1, 2};
  expect_refused(j, {"key 'step_valid'", "0 and 1"});
  j = good;
  j["snapshots"][1]["step_index"] = "all";
  expect_refused(j, {"key 'step_index'", "array of integers"});
  for (const char* escape : {"../../../../etc/hostname", "/etc/hostname", "snapshots/../../x.npy"}) {
    j = good;
    j["snapshots"][1]["file"] = escape;
    expect_refused(j, {"snapshots[1]: key 'file'", escape, "allowed a relative path inside"});
  }
  { std::ofstream(dir / "index.json") << good.dump(); }
  SnapshotStore back;
  back.resume(dir.string());
  EXPECT_EQ(epochs_of(back), (std::vector<std::int64_t>{0, 1}));
  fs::remove_all(dir);
}

TEST(SnapshotStoreConcurrency, ProducerAndConsumerHandOffWithoutRaces) {
  RetentionPolicy p;
  p.max_epochs = 8;
  SnapshotStore store(p);
  const int total = 300;
  std::atomic<bool> done{false}, started{false};
  std::uint64_t views = 0;
  std::thread consumer([&] {
    std::uint64_t seen = 0;
    started.store(true);
    for (bool last = false; !last;) {
      last = done.load();
      store.wait_for_update(seen, std::chrono::milliseconds(5));
      const auto v = store.view();
      EXPECT_GE(v.version, seen);
      seen = v.version;
      EXPECT_LE(v.snapshots.size(), 8u);
      for (std::size_t i = 1; i < v.snapshots.size(); ++i)
        EXPECT_LT(v.snapshots[i - 1]->epoch, v.snapshots[i]->epoch);
      // Read the data the training thread handed over (immutable after push).
      double sum = 0;
      for (const auto& s : v.snapshots) sum += s->values.front();
      EXPECT_TRUE(std::isfinite(sum));
      ++views;
    }
  });
  while (!started.load()) std::this_thread::yield();
  for (int e = 0; e < total; ++e) store.push(make_snapshot(e, 4, 8, 16));
  done.store(true);
  consumer.join();
  EXPECT_GT(views, 0u);
  EXPECT_EQ(store.view().version, static_cast<std::uint64_t>(total));
  EXPECT_EQ(epochs_of(store).back(), total - 1);
}

TEST(SnapshotStore, AssembledTraceExcludesPaddingFromTheGraph) {
  SnapshotStore store;
  for (int e = 0; e < 3; ++e) {
    Snapshot s = make_snapshot(e, 3, 4, 5);
    s.step_valid = {1, 1, 0};  // last step is padding in every epoch
    s.values[2 * 4 * 5] = std::numeric_limits<float>::quiet_NaN();  // inside the padding
    store.push(s);
  }
  const AssembledTrace tr = assemble_trace(store.view());
  EXPECT_EQ(tr.shape.epochs, 3);
  EXPECT_EQ(tr.shape.steps, 3);
  EXPECT_EQ(tr.raw.rows(), 3 * 3 * 4);
  EXPECT_EQ(tr.epochs, (std::vector<std::int64_t>{0, 1, 2}));
  Options opt = Options::mmphate_scalable();
  const PreparedTrace prep = prepare_trace(tr.raw, tr.shape, opt, &tr.node_valid);  // NaN is in padding: no error
  EXPECT_EQ(prep.padded_nodes, 3 * 4);
  EXPECT_EQ(prep.index.size(), 3 * 2 * 4);
  for (Index r = 0; r < prep.index.size(); ++r) EXPECT_LT(prep.index.step(r), 2);
  EXPECT_EQ(prep.nonfinite_values, 0);
  // Values land at (epoch, step, unit): epoch 1, step 1, unit 2, probe 3.
  const Snapshot ref = make_snapshot(1, 3, 4, 5);
  const Index row = (1 * 3 + 1) * 4 + 2;
  EXPECT_EQ(tr.raw(row, 3), ref.values[(1 * 4 + 2) * 5 + 3]);
}

TEST(SnapshotStore, SaveRewritesAnEpochPushedAgain) {
  const fs::path dir = temp_dir("replace");
  SnapshotStore store;
  store.push(make_snapshot(0));
  store.push(make_snapshot(1));
  store.save(dir.string());
  Snapshot again = make_snapshot(1);
  again.values[0] = -42.0f;  // training restarted: new values for epoch 1
  store.push(again);
  store.save(dir.string());
  SnapshotStore back;
  back.resume(dir.string());
  EXPECT_EQ(back.view().snapshots.back()->values[0], -42.0f);
  fs::remove_all(dir);
}

TEST(SnapshotStore, ThinNeedsRoomBeyondTheDenseEpochs) {
  RetentionPolicy p;
  p.kind = RetentionKind::thin;
  p.thin_dense = 10;
  p.max_epochs = 11;
  EXPECT_THROW(SnapshotStore{p}, Error);
  p.max_epochs = 12;
  EXPECT_NO_THROW(SnapshotStore{p});
  Snapshot s = make_snapshot(0);
  s.step_index = {0, 1, 2};  // 3 indices for 2 steps
  SnapshotStore store;
  EXPECT_THROW(store.push(s), Error);
}
