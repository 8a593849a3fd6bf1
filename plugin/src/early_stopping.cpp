#include "mmphate/early_stopping.hpp"

#include <sstream>

#include "config_json.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

namespace mmphate {
namespace {

template <typename T>
void require(bool ok, const char* key, T value, const char* allowed) {
  detail::require_option(ok, "early stopping option", key, value, allowed);
}

// Finite or unset (NaN); an infinite threshold is almost surely a mistake.
bool finite_or_unset(double v) { return std::isnan(v) || std::isfinite(v); }

std::string num(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

}  // namespace

const char* to_string(StopMode m) { return m == StopMode::min ? "min" : "max"; }

void EarlyStoppingOptions::validate() const {
  require(!monitor.empty(), "monitor", "''", "a non-empty quantity name");
  require(std::isfinite(min_delta) && min_delta >= 0, "min_delta", min_delta, "finite values >= 0");
  require(patience >= 0, "patience", patience, "integers >= 0");
  require(start_from_epoch >= 0, "start_from_epoch", start_from_epoch, "integers >= 0");
  require(finite_or_unset(baseline), "baseline", baseline, "a finite number or null");
  require(finite_or_unset(stopping_threshold), "stopping_threshold", stopping_threshold, "a finite number or null");
  require(finite_or_unset(divergence_threshold), "divergence_threshold", divergence_threshold,
          "a finite number or null");
}

void apply_early_stopping_json(EarlyStoppingOptions& opt, const nlohmann::json& config, const std::string& source) {
  using namespace detail;
  static const std::vector<std::string> keys = {
      "enabled",          "monitor",      "mode",     "min_delta",          "patience",
      "start_from_epoch", "check_finite", "baseline", "stopping_threshold", "divergence_threshold", "strict"};
  check_keys(config, keys, source);
  EarlyStoppingOptions o = opt;
  for (const auto& [key, v] : config.items()) {
    if (key == "enabled") o.enabled = read_bool(v, key, source);
    else if (key == "monitor") o.monitor = read_string(v, key, source);
    else if (key == "mode") {
      const std::string m = read_string(v, key, source);
      if (m == "min") o.mode = StopMode::min;
      else if (m == "max") o.mode = StopMode::max;
      else throw Error(source + ": key 'mode' = \"" + m + "\": allowed min | max");
    } else if (key == "min_delta") o.min_delta = read_number(v, key, source);
    else if (key == "patience") o.patience = read_int32(v, key, source);
    else if (key == "start_from_epoch") o.start_from_epoch = read_int32(v, key, source);
    else if (key == "check_finite") o.check_finite = read_bool(v, key, source);
    else if (key == "strict") o.strict = read_bool(v, key, source);
    else if (key == "baseline") o.baseline = read_optional_number(v, key, source);
    else if (key == "stopping_threshold") o.stopping_threshold = read_optional_number(v, key, source);
    else if (key == "divergence_threshold") o.divergence_threshold = read_optional_number(v, key, source);
  }
  validate_from(o, source);
  opt = o;
}

nlohmann::json to_json(const EarlyStoppingOptions& o) {
  using detail::number_or_null;
  return {{"enabled", o.enabled},
          {"monitor", o.monitor},
          {"mode", to_string(o.mode)},
          {"min_delta", o.min_delta},
          {"patience", o.patience},
          {"start_from_epoch", o.start_from_epoch},
          {"check_finite", o.check_finite},
          {"strict", o.strict},
          {"baseline", number_or_null(o.baseline)},
          {"stopping_threshold", number_or_null(o.stopping_threshold)},
          {"divergence_threshold", number_or_null(o.divergence_threshold)}};
}

nlohmann::json StopDecision::to_json() const {
  using detail::number_or_null;
  return {{"epoch", epoch},
          {"checked", checked},
          {"stop", stop},
          {"improved", improved},
          {"reason", reason},
          {"monitor", monitor},
          {"value", number_or_null(value)},
          {"best", number_or_null(best)},
          {"best_epoch", best_epoch >= 0 ? nlohmann::json(best_epoch) : nlohmann::json(nullptr)},
          {"wait", wait}};
}

EarlyStopping::EarlyStopping(EarlyStoppingOptions opt) : opt_(std::move(opt)) {
  opt_.validate();
  reset();
}

void EarlyStopping::reset() {
  best_ = opt_.mode == StopMode::min ? std::numeric_limits<double>::infinity()
                                     : -std::numeric_limits<double>::infinity();
  best_epoch_ = -1;
  wait_ = 0;
  last_counted_ = std::numeric_limits<std::int64_t>::min();
  stopped_ = false;
  stop_ = StopDecision{};
}

bool EarlyStopping::better(double a, double b) const {
  return opt_.mode == StopMode::min ? a < b - opt_.min_delta : a > b + opt_.min_delta;
}

StopDecision EarlyStopping::check(std::int64_t epoch, const std::map<std::string, double>& quantities) {
  if (stopped_) return stop_;
  StopDecision d;
  d.epoch = epoch;
  d.monitor = opt_.monitor;
  auto finish = [&]() {
    d.best = best_epoch_ >= 0 ? best_ : std::numeric_limits<double>::quiet_NaN();
    d.best_epoch = best_epoch_;
    d.wait = wait_;
    if (d.stop) {
      stopped_ = true;
      stop_ = d;
      logger()->info("early stopping at epoch {}: {}", epoch, d.reason);
    }
    return d;
  };
  if (!opt_.enabled) {
    d.reason = "disabled";
    return finish();
  }
  const auto it = quantities.find(opt_.monitor);
  if (it == quantities.end()) {
    d.reason = "missing";
    return finish();
  }
  d.value = it->second;
  if (epoch < opt_.start_from_epoch) {
    d.reason = "before start_from_epoch";
    return finish();
  }
  if (epoch <= last_counted_) {
    d.reason = "epoch already counted";
    return finish();
  }
  last_counted_ = epoch;
  d.checked = true;
  const double v = d.value;
  const bool min_mode = opt_.mode == StopMode::min;
  const std::string m = opt_.monitor;
  if (opt_.check_finite && !std::isfinite(v)) {
    d.stop = true;
    d.reason = m + " = " + num(v) + " is not finite";
  } else if (!std::isnan(opt_.stopping_threshold) &&
             (min_mode ? v < opt_.stopping_threshold : v > opt_.stopping_threshold)) {
    d.stop = true;
    d.reason = "stopping threshold reached: " + m + " = " + num(v) + (min_mode ? " < " : " > ") +
               num(opt_.stopping_threshold);
  } else if (!std::isnan(opt_.divergence_threshold) &&
             (min_mode ? v > opt_.divergence_threshold : v < opt_.divergence_threshold)) {
    d.stop = true;
    d.reason = "divergence threshold passed: " + m + " = " + num(v) + (min_mode ? " > " : " < ") +
               num(opt_.divergence_threshold);
  } else {
    // Keras: the wait grows first; an improvement resets it only when it also beats the baseline.
    ++wait_;
    if (better(v, best_)) {
      best_ = v;
      best_epoch_ = epoch;
      d.improved = true;
      if (std::isnan(opt_.baseline) || better(v, opt_.baseline)) wait_ = 0;
    } else if (wait_ >= opt_.patience) {
      d.stop = true;
      d.reason = std::isnan(opt_.baseline) || best_epoch_ < 0 || better(best_, opt_.baseline)
                     ? m + " did not improve by more than " + num(opt_.min_delta) + " in the last " +
                           std::to_string(wait_) + " checks; best " + num(best_) + " at epoch " +
                           std::to_string(best_epoch_)
                     : m + " did not beat the baseline " + num(opt_.baseline) + " in " + std::to_string(wait_) +
                           " checks";
    }
  }
  return finish();
}

}  // namespace mmphate
