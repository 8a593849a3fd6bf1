#include "diagnostics/phase_detector.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "util/config_json.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

namespace mmphate {
namespace {

// Stands in for an infinite t-statistic (a noiseless line), finite so JSON can carry it.
constexpr double kExactLine = 1e9;

struct Trend {
  double slope = 0.0, t = 0.0, change = 0.0, mean = 0.0;
};

// Least-squares line through (epoch, value); t = slope / its standard error.
Trend fit(const std::deque<std::pair<std::int64_t, double>>& pts) {
  const double n = static_cast<double>(pts.size());
  double mx = 0, my = 0;
  for (const auto& [x, y] : pts) {
    mx += static_cast<double>(x);
    my += y;
  }
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0;
  for (const auto& [x, y] : pts) {
    sxx += (x - mx) * (x - mx);
    sxy += (x - mx) * (y - my);
  }
  Trend tr;
  tr.mean = my;
  if (!(sxx > 0)) return tr;
  tr.slope = sxy / sxx;
  double rss = 0, scale = 0;
  for (const auto& [x, y] : pts) {
    const double r = y - (my + tr.slope * (x - mx));
    rss += r * r;
    scale += y * y;
  }
  const double se = std::sqrt(rss / (n - 2) / sxx);
  // Residuals at rounding level: an exact line; its sign alone decides.
  if (rss <= 1e-24 * std::max(scale, 1e-300)) tr.t = tr.slope > 0 ? kExactLine : (tr.slope < 0 ? -kExactLine : 0.0);
  else tr.t = std::clamp(tr.slope / se, -kExactLine, kExactLine);
  tr.change = tr.slope * static_cast<double>(pts.back().first - pts.front().first);
  return tr;
}

}  // namespace

const char* to_string(Phase p) {
  switch (p) {
    case Phase::information_processing: return "information_processing";
    case Phase::compression: return "compression";
    case Phase::stable: return "stable";
    default: return "unknown";
  }
}

namespace detail {

const KeyTable<PhaseDetectorOptions>& phase_detector_keys() {
  using O = PhaseDetectorOptions;
  static const KeyTable<O>& table = *new KeyTable<O>(KeyTable<O>("phase detector option")
      .value("enabled", &O::enabled)
      .value("quantity", &O::quantity, non_empty(), "a non-empty quantity name")
      .value("window", &O::window, between(3, 10000), "integers in [3, 10000]")
      .value("min_t", &O::min_t, finite_at_least(0), "finite values >= 0")
      .value("min_delta", &O::min_delta, finite_at_least(0), "finite values >= 0")
      .value("min_relative_delta", &O::min_relative_delta, finite_at_least(0), "finite values >= 0")
      .value("patience", &O::patience, between(1, 10000), "integers in [1, 10000]"));
  return table;
}

}  // namespace detail

void PhaseDetectorOptions::validate() const { detail::phase_detector_keys().validate(*this); }

void apply_phase_detector_json(PhaseDetectorOptions& opt, const nlohmann::json& config, const std::string& source) {
  detail::phase_detector_keys().apply(opt, config, source);
}

nlohmann::json to_json(const PhaseDetectorOptions& o) { return detail::phase_detector_keys().write(o); }

nlohmann::json PhaseChange::to_json() const {
  return {{"epoch", epoch},       {"onset_epoch", onset_epoch}, {"from", to_string(from)},
          {"to", to_string(to)},  {"evidence", evidence},       {"slope", detail::number_or_null(slope)}};
}

PhaseDetector::PhaseDetector(PhaseDetectorOptions opt) : opt_(std::move(opt)) { opt_.validate(); }

void PhaseDetector::reset() {
  recent_.clear();
  last_epoch_.reset();
  phase_ = candidate_ = Phase::unknown;
  agree_ = 0;
  candidate_onset_ = 0;
  changes_.clear();
}

PhaseUpdate PhaseDetector::update(std::int64_t epoch, double value) {
  PhaseUpdate up;
  up.epoch = epoch;
  up.phase = phase_;
  if (!std::isfinite(value) || (last_epoch_ && epoch <= *last_epoch_)) return up;
  up.used = true;
  last_epoch_ = epoch;
  recent_.emplace_back(epoch, value);
  if (static_cast<int>(recent_.size()) > opt_.window) recent_.pop_front();
  if (static_cast<int>(recent_.size()) < opt_.window) return up;

  const Trend tr = fit(recent_);
  const double needed = opt_.min_delta + opt_.min_relative_delta * std::fabs(tr.mean);
  up.slope = tr.slope;
  up.evidence = tr.t;
  if (tr.t >= opt_.min_t && tr.change > 0 && tr.change >= needed) up.trend = Phase::information_processing;
  else if (tr.t <= -opt_.min_t && tr.change < 0 && -tr.change >= needed) up.trend = Phase::compression;
  else up.trend = Phase::stable;

  // Persistence: the confirmed phase moves only after `patience` agreeing updates in a row.
  if (up.trend == phase_) {
    candidate_ = Phase::unknown;
    agree_ = 0;
  } else {
    if (up.trend == candidate_) ++agree_;
    else {
      candidate_ = up.trend;
      agree_ = 1;
      candidate_onset_ = epoch;
    }
    if (agree_ >= opt_.patience) {
      PhaseChange ch{epoch, candidate_onset_, phase_, up.trend, tr.t, tr.slope};
      logger()->info("phase: {} -> {} at epoch {} (onset {}, t = {:.2f})", to_string(ch.from), to_string(ch.to),
                     epoch, candidate_onset_, tr.t);
      phase_ = up.trend;
      candidate_ = Phase::unknown;
      agree_ = 0;
      changes_.push_back(ch);
      up.change = ch;
    }
  }
  up.phase = phase_;
  return up;
}

std::vector<PhaseUpdate> label_phases(const std::vector<std::int64_t>& epochs, const std::vector<double>& values,
                                      const PhaseDetectorOptions& opt) {
  if (epochs.size() != values.size())
    throw Error("phase labels: " + std::to_string(epochs.size()) + " epochs for " + std::to_string(values.size()) +
                " values");
  PhaseDetector det(opt);
  std::vector<PhaseUpdate> out;
  out.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) out.push_back(det.update(epochs[i], values[i]));
  return out;
}

}  // namespace mmphate
