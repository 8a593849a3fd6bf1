#include "mmphate/log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace mmphate {

std::shared_ptr<spdlog::logger> logger() {
  static std::once_flag once;
  static std::shared_ptr<spdlog::logger> log;
  std::call_once(once, [] {
    log = spdlog::get("mmphate");
    if (!log) {
      log = spdlog::stderr_color_mt("mmphate");
      log->set_level(spdlog::level::warn);
      log->set_pattern("[%H:%M:%S.%e] [%n] [%l] %v");
    }
  });
  return log;
}

ScopedStage::ScopedStage(StageTimes& times, std::string name)
    : times_(times), name_(std::move(name)), start_(std::chrono::steady_clock::now()) {
  logger()->debug("stage {} started", name_);
}

double ScopedStage::stop() {
  if (stopped_) return 0.0;
  stopped_ = true;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  times_.emplace_back(name_, s);
  if (s >= 1.0)
    logger()->info("stage {} done in {:.2f} s", name_, s);
  else
    logger()->debug("stage {} done in {:.3f} s", name_, s);
  return s;
}

ScopedStage::~ScopedStage() { stop(); }

}  // namespace mmphate
