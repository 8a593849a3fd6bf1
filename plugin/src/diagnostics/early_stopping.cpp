#include "diagnostics/early_stopping.hpp"

#include <sstream>

#include "util/config_json.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

namespace mmphate {
namespace {

std::string num(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

}  // namespace

const char* to_string(StopMode m) { return m == StopMode::min ? "min" : "max"; }

namespace detail {

const KeyTable<EarlyStoppingOptions>& early_stopping_keys() {
  using O = EarlyStoppingOptions;
  static const KeyTable<O>& table = *new KeyTable<O>(KeyTable<O>("early stopping option")
      .value("enabled", &O::enabled)
      .value("monitor", &O::monitor, non_empty(), "a non-empty quantity name")
      .choice("mode", &O::mode, {{"min", StopMode::min}, {"max", StopMode::max}}, "min | max")
      .value("min_delta", &O::min_delta, finite_at_least(0), "finite values >= 0")
      .value("patience", &O::patience, at_least(0), "integers >= 0")
      .value("start_from_epoch", &O::start_from_epoch, at_least(0), "integers >= 0")
      .value("check_finite", &O::check_finite)
      .value("strict", &O::strict)
      .optional_number("baseline", &O::baseline)
      .optional_number("stopping_threshold", &O::stopping_threshold)
      .optional_number("divergence_threshold", &O::divergence_threshold));
  return table;
}

}  // namespace detail

void EarlyStoppingOptions::validate() const { detail::early_stopping_keys().validate(*this); }

void apply_early_stopping_json(EarlyStoppingOptions& opt, const nlohmann::json& config, const std::string& source) {
  detail::early_stopping_keys().apply(opt, config, source);
}

nlohmann::json to_json(const EarlyStoppingOptions& o) { return detail::early_stopping_keys().write(o); }

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
