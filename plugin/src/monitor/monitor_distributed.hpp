// Private: the Monitor's data-parallel state (docs/DISTRIBUTED.md), shared by monitor.cpp
// (the few guards) and monitor_distributed.cpp (the rest).
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "mmphate/monitor/monitor.hpp"

namespace mmphate {

struct Monitor::Distributed {
  DistributedHook hook;
  std::atomic<bool> stop{false};  // the agreed decision: what should_stop() returns
  bool broken = false;            // the collective failed once: no more collective calls
  void collective_failed(std::int64_t epoch, const std::string& what);

  std::string reason() const {
    std::lock_guard<std::mutex> lock(mutex);
    return reason_;
  }
  void set_reason(std::string r) {
    std::lock_guard<std::mutex> lock(mutex);
    reason_ = std::move(r);
  }

 private:
  mutable std::mutex mutex;  // stop_reason() may be read from any thread
  std::string reason_;
};

}  // namespace mmphate
