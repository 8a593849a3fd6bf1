/// @file
/// Logging and stage timing. All engine messages go through the spdlog logger named
/// "mmphate" (stderr, level warn by default; the CLI raises it to info). Stages that take
/// longer than a second are reported at info level so long runs show progress.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace mmphate {

std::shared_ptr<spdlog::logger> logger();

/// Ordered (stage name, seconds) pairs.
using StageTimes = std::vector<std::pair<std::string, double>>;

/// Times a stage from construction to destruction (or stop()) and records it.
class ScopedStage {
 public:
  ScopedStage(StageTimes& times, std::string name);
  ~ScopedStage();
  double stop();
  ScopedStage(const ScopedStage&) = delete;
  ScopedStage& operator=(const ScopedStage&) = delete;

 private:
  StageTimes& times_;
  std::string name_;
  std::chrono::steady_clock::time_point start_;
  bool stopped_ = false;
};

}  // namespace mmphate
