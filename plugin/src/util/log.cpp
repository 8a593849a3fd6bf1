#include "mmphate/log.hpp"

#include <utility>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace mmphate {

std::shared_ptr<spdlog::logger> logger() {
  // Never destroyed: a thread may log while the process exits, after static destructors ran
  // (a monitor's updater thread that shutdown stopped waiting for; ASan found the destroyed
  // shared_ptr read in MonitorRun.ShutdownDoesNotHangOnASlowFrame).
  static std::shared_ptr<spdlog::logger>* const log = [] {
    auto l = spdlog::get("mmphate");
    if (!l) {
      l = spdlog::stderr_color_mt("mmphate");
      l->set_level(spdlog::level::warn);
      l->set_pattern("[%H:%M:%S.%e] [%n] [%l] %v");
    }
    return new std::shared_ptr<spdlog::logger>(std::move(l));
  }();
  return *log;
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
