#include "monitor/run_directory.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mmphate/error.hpp"

namespace mmphate {
namespace fs = std::filesystem;

namespace {
void check_writable(const fs::path& dir) {
  const fs::path probe = dir / ".mmphate_write_test";
  std::ofstream out(probe);
  if (!out || !(out << "ok") || !(out.flush())) throw Error("the run directory '" + dir.string() + "' is not writable");
  out.close();
  std::error_code ec;
  fs::remove(probe, ec);
}
}  // namespace

// A folder that already holds a run's output: frames, snapshots or the node index.
bool holds_a_run(const fs::path& dir) {
  std::error_code ec;
  for (const char* name : {"frames.jsonl", "node_index.json", "snapshots"})
    if (fs::exists(dir / name, ec)) return true;
  return false;
}

std::string create_run_directory(const RunSettings& run) {
  fs::path dir;
  std::error_code ec;
  if (!run.path.empty()) {
    dir = run.path;
    // Two runs in one frames.jsonl (frame numbers restarting halfway) cannot be told apart.
    if (holds_a_run(dir))
      throw Error("run.path '" + dir.string() +
                  "' already holds a run (frames.jsonl, node_index.json or snapshots/): choose a new path, remove "
                  "that run, or leave run.path empty for a new <root>/<name>/version_<n> folder");
  } else {
    const fs::path parent = fs::path(run.root) / run.name;
    fs::create_directories(parent, ec);
    if (ec) throw Error("cannot create the run directory '" + parent.string() + "': " + ec.message());
    int next = 0;
    for (const auto& entry : fs::directory_iterator(parent, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("version_", 0) != 0) continue;
      try {
        next = std::max(next, std::stoi(name.substr(8)) + 1);
      } catch (const std::exception&) {
      }
    }
    // Claim the version with mkdir, which fails if another process took it first.
    for (int tries = 0;; ++next, ++tries) {
      dir = parent / ("version_" + std::to_string(next));
      if (::mkdir(dir.c_str(), 0777) == 0) break;
      if (errno != EEXIST || tries >= 1000)
        throw Error("cannot create the run directory '" + dir.string() + "': " + std::strerror(errno));
    }
  }
  fs::create_directories(dir / "frames", ec);
  if (ec) throw Error("cannot create the run directory '" + dir.string() + "': " + ec.message());
  check_writable(dir);
  return dir.string();
}

}  // namespace mmphate
