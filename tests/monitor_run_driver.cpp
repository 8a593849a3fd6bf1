// A monitored "training" for the crash-consistency test (tests/crash_consistency_test.sh): it
// pushes the epochs of a real recorded trace through a default-config Monitor at a fixed pace,
// as a training loop would, and prints one line per finished epoch so the test knows what was
// pushed before it killed the process. With --check it reads a run folder back the way a user
// would: read_run (every complete line), each frame's coordinates, and the saved snapshots
// through SnapshotStore::resume.
//
//   monitor_run_driver run RUN_DIR TRACE.npy EPOCHS INTERVAL_MS [TIMEOUT_MS]
//   monitor_run_driver check RUN_DIR
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "mmphate/run/frame_reader.hpp"
#include "mmphate/monitor/monitor.hpp"
#include "mmphate/snapshot_store.hpp"
#include "mmphate/trace.hpp"
#include "testing/store_traces.hpp"

using namespace mmphate;

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int run(const std::string& dir, const std::string& trace_path, int epochs, int interval_ms, int timeout_ms) {
  TraceShape shape;
  const RowMatrix trace = read_trace_npy(trace_path, shape);
  MonitorConfig cfg;
  cfg.run.path = dir;
  cfg.save_snapshots = true;
  cfg.updater.shutdown_timeout_ms = timeout_ms;
  Monitor monitor(cfg);
  for (int e = 0; e < epochs; ++e) {
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));  // the epoch's training
    // Later epochs replay the recording with a growing offset: new states every epoch.
    Snapshot s = snapshot_from_trace(trace, e % shape.epochs, shape.steps, shape.units);
    for (auto& v : s.values) v += 0.05f * static_cast<float>(e / shape.epochs);
    s.epoch = e;
    s.global_step = 100 * (e + 1);
    s.layer = "lstm";
    monitor.push(std::move(s));
    monitor.on_epoch_end(e, {{"train_loss", 1.0 / (1.0 + e)}}, 100 * (e + 1));
    std::printf("pushed %d %.3f\n", e, unix_now());
    std::fflush(stdout);
  }
  std::printf("done %.3f\n", unix_now());
  std::fflush(stdout);
  return 0;
}

// Prints "frames N", "last_embedding_epoch E", "finished SIGNAL|none", "snapshots a,b,...".
int check(const std::string& dir) {
  // Killed before the first frame: no node index yet, only events; still a valid run folder.
  RunData r;
  if (std::ifstream(dir + "/node_index.json")) r = read_run(dir);
  if (r.skipped_lines != 0) {
    for (const auto& w : r.warnings) std::cerr << "invalid line: " << w << "\n";
    return 1;
  }
  std::int64_t last_epoch = -1;
  std::string finished = "none";
  int embeddings = 0;
  for (auto& f : r.frames) {
    if (f.type == "embedding") {
      load_coords(r, f);
      last_epoch = f.epoch;
      ++embeddings;
    } else if (f.event == "finished") {
      finished = f.message.find("SIGTERM") != std::string::npos  ? "SIGTERM"
                 : f.message.find("SIGINT") != std::string::npos ? "SIGINT"
                                                                 : "clean";
    }
  }
  std::printf("frames %d\nlast_embedding_epoch %lld\nfinished %s\n", embeddings, static_cast<long long>(last_epoch),
              finished.c_str());
  SnapshotStore store;
  store.resume(dir + "/snapshots");
  std::printf("snapshots ");
  const auto view = store.view();
  for (std::size_t i = 0; i < view.snapshots.size(); ++i)
    std::printf("%s%lld", i ? "," : "", static_cast<long long>(view.snapshots[i]->epoch));
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "run" && argc >= 6)
      return run(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]), argc > 6 ? std::atoi(argv[6]) : 60000);
    if (mode == "check" && argc == 3) return check(argv[2]);
    std::cerr << "usage: monitor_run_driver run RUN_DIR TRACE.npy EPOCHS INTERVAL_MS [TIMEOUT_MS]\n"
                 "       monitor_run_driver check RUN_DIR\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "monitor_run_driver: " << e.what() << "\n";
    return 1;
  }
}
