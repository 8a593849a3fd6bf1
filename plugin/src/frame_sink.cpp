#include "mmphate/frame_sink.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

namespace mmphate {
namespace fs = std::filesystem;

namespace {
constexpr std::size_t kMaxPending = 10000;  // lines kept while the file sink fails

void check_writable(const fs::path& dir) {
  const fs::path probe = dir / ".mmphate_write_test";
  std::ofstream out(probe);
  if (!out || !(out << "ok") || !(out.flush())) throw Error("the run directory '" + dir.string() + "' is not writable");
  out.close();
  std::error_code ec;
  fs::remove(probe, ec);
}
}  // namespace

std::string create_run_directory(const RunSettings& run) {
  fs::path dir;
  if (!run.path.empty()) {
    dir = run.path;
  } else {
    const fs::path parent = fs::path(run.root) / run.name;
    std::error_code ec;
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
    dir = parent / ("version_" + std::to_string(next));
  }
  std::error_code ec;
  fs::create_directories(dir / "frames", ec);
  if (ec) throw Error("cannot create the run directory '" + dir.string() + "': " + ec.message());
  check_writable(dir);
  return dir.string();
}

FrameWriter::FrameWriter(FrameSettings settings, std::string frames_path)
    : settings_(settings), path_(std::move(frames_path)) {}
FrameWriter::~FrameWriter() {
  if (!pending_.empty())
    logger()->error("{} frame line(s) could not be written to '{}' and are lost", pending_.size(), path_);
}

void FrameWriter::add_callback(FrameCallback callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  callbacks_.push_back(std::move(callback));
}

// Appends every pending line; a line counts as written only once the stream has flushed it.
bool FrameWriter::write_file_lines() {
  std::ofstream out(path_, std::ios::app | std::ios::binary);
  if (!out) return false;
  std::size_t done = 0;
  for (; done < pending_.size(); ++done) {
    out << pending_[done];
    out.flush();
    if (!out) break;
  }
  written_ += static_cast<std::int64_t>(done);
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
  return pending_.empty();
}

void FrameWriter::emit(const nlohmann::json& frame) {
  std::string line;
  try {
    line = frame.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } catch (const std::exception& e) {
    logger()->error("a frame could not be serialised: {}", e.what());
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!path_.empty()) {
    if (pending_.size() >= kMaxPending) {
      logger()->error("frames file '{}' has failed for {} lines; dropping the oldest", path_, pending_.size());
      pending_.erase(pending_.begin());
    }
    pending_.push_back(line);
    int wait_ms = settings_.retry_backoff_ms;
    for (int attempt = 0;; ++attempt) {
      bool ok = false;
      try {
        ok = write_file_lines();
      } catch (const std::exception&) {
        ok = false;
      }
      if (ok) break;
      ++failures_;
      if (attempt >= settings_.retry_attempts) {
        logger()->error("cannot write frames to '{}' after {} attempt(s); {} line(s) kept for the next frame", path_,
                        attempt + 1, pending_.size());
        break;
      }
      logger()->warn("writing frames to '{}' failed; retrying in {} ms", path_, wait_ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      wait_ms *= 2;
    }
  }
  if (settings_.stdout_lines) {
    std::cout << line << std::flush;
    if (!std::cout) {
      ++failures_;
      std::cout.clear();
      logger()->warn("writing a frame to stdout failed");
    }
  }
  for (const auto& cb : callbacks_) {
    try {
      cb(frame);
    } catch (const std::exception& e) {
      ++failures_;
      logger()->error("a frame callback threw: {}", e.what());
    } catch (...) {
      ++failures_;
      logger()->error("a frame callback threw a non-standard exception");
    }
  }
}

std::int64_t FrameWriter::written() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return written_;
}
std::int64_t FrameWriter::failures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failures_;
}
std::size_t FrameWriter::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.size();
}

}  // namespace mmphate
