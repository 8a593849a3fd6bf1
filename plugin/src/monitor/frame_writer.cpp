#include "monitor/frame_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
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
}  // namespace

FrameWriter::FrameWriter(FrameSettings settings, std::string frames_path)
    : settings_(settings), path_(std::move(frames_path)) {}
FrameWriter::~FrameWriter() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (pending_.empty() || path_.empty()) return;
  try {
    write_file_lines();  // one last attempt
  } catch (const std::exception&) {
  }
  if (!pending_.empty())
    logger()->error("{} frame line(s) could not be written to '{}' and are lost", pending_.size(), path_);
}

void FrameWriter::add_callback(FrameCallback callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  callbacks_.push_back(std::move(callback));
}

// Appends every pending line, each whole or not at all: a line starts at the remembered end of
// the file, and a short write is rolled back by truncating to that start (so a retry never
// glues a line onto a fragment: one invalid line and a silent loss before). A line counts as
// written once write() has taken all of it.
bool FrameWriter::write_file_lines() {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (torn_at_ >= 0) {  // a fragment an earlier rollback could not remove
    if (::ftruncate(fd, static_cast<off_t>(torn_at_)) != 0) return false;
    torn_at_ = -1;
  }
  std::size_t done = 0;
  for (; done < pending_.size(); ++done) {
    const std::string& line = pending_[done];
    const off_t start = ::lseek(fd, 0, SEEK_END);
    std::size_t put = 0;
    while (put < line.size()) {
      const ssize_t n = ::write(fd, line.data() + put, line.size() - put);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      put += static_cast<std::size_t>(n);
    }
    if (put == line.size()) continue;
    if (put > 0) {
      ++rolled_back_;
      if (start < 0 || ::ftruncate(fd, start) != 0) {
        torn_at_ = start;
        logger()->error("frames file '{}': a partial line could not be truncated away ({}); retrying before the next "
                        "line", path_, std::strerror(errno));
      }
    }
    break;
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
      ++lost_;
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
      wait_ms = std::min(2 * wait_ms, 60000);
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
FrameWriter::Stats FrameWriter::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return Stats{written_, failures_, static_cast<std::int64_t>(pending_.size()), lost_, rolled_back_};
}
std::size_t FrameWriter::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.size();
}

}  // namespace mmphate
