// FrameWriter: where frames go: the run directory's frames.jsonl, stdout, and in-process callbacks.
//
// FrameWriter::emit never throws: a sink that fails (disk full, path gone, a callback that
// throws) is logged and retried with a doubling backoff; lines a file sink could not write are
// kept (up to a bound) and written first at the next emit, so a transient failure loses
// nothing and a permanent one never reaches the training loop. emit runs on the updater
// thread, so the backoff never delays training.
// The file holds whole lines only: each line is appended from a remembered end offset, and a
// short write (disk full, file size limit) is rolled back by truncating to that offset before
// any retry, so a retried line never follows a fragment. Lines dropped for good (beyond the
// pending bound, or still pending at destruction) are counted in stats().lost.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmphate/monitor/config.hpp"
#include "mmphate/monitor/frame.hpp"
#include "util/atomic_file.hpp"

namespace mmphate {

class FrameWriter {
 public:
  // frames_path empty: no file sink.
  FrameWriter(FrameSettings settings, std::string frames_path);
  ~FrameWriter();

  void add_callback(FrameCallback callback);
  void emit(const nlohmann::json& frame);  // never throws

  std::int64_t written() const;          // lines the file sink holds
  std::int64_t failures() const;         // failed attempts, all sinks
  std::size_t pending() const;           // lines waiting for the file sink

  struct Stats {
    std::int64_t written = 0;      // lines the file sink holds
    std::int64_t failures = 0;     // failed attempts, all sinks
    std::int64_t pending = 0;      // lines waiting for the file sink
    std::int64_t lost = 0;         // lines given up: dropped beyond the pending bound
    std::int64_t rolled_back = 0;  // partial lines truncated away after a short write
  };
  Stats stats() const;

  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

 private:
  bool write_file_lines();
  FrameSettings settings_;
  std::string path_;
  mutable std::mutex mutex_;
  std::vector<std::string> pending_;
  std::vector<FrameCallback> callbacks_;
  std::int64_t written_ = 0, failures_ = 0, lost_ = 0, rolled_back_ = 0;
  long long torn_at_ = -1;  // offset of a fragment a failed rollback left in the file, or -1
};

}  // namespace mmphate
