// Early stopping on any monitored quantity (an entropy, the visualisation variance, a
// validation loss), with the semantics of Keras' EarlyStopping and Lightning's EarlyStopping
// callbacks (docs/DIAGNOSTICS.md, "Early stopping"). Each check(epoch, quantities):
//  1. monitor absent from `quantities` -> no check at all (a frame that failed to compute never
//     stops a run); epoch < start_from_epoch -> ignored (Keras);
//  2. check_finite and the value is NaN/Inf -> stop (Lightning);
//  3. stopping_threshold reached (min: value < threshold, max: value > threshold) -> stop;
//  4. divergence_threshold passed (min: value > threshold, max: value < threshold) -> stop;
//  5. improvement = value better than best by more than min_delta (min: value < best - min_delta);
//     it becomes the best; the wait restarts unless a baseline is set and not beaten (Keras);
//  6. otherwise the wait grows by one; wait >= patience -> stop.
// Each epoch counts once: a check of an epoch at or before the last counted one is ignored
// (the monitor sees an epoch's metrics at epoch end and again with its frame).
// Once stopped, later checks return the same stop decision.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "mmphate/monitor/diagnostics_options.hpp"

namespace mmphate {



// Unknown keys and wrong types throw mmphate::Error naming `source`, the key and the allowed keys.
// "mode" is "min" or "max".
void apply_early_stopping_json(EarlyStoppingOptions& opt, const nlohmann::json& config, const std::string& source);
nlohmann::json to_json(const EarlyStoppingOptions& opt);

struct StopDecision {
  std::int64_t epoch = 0;
  bool checked = false;    // the quantity was present and the epoch counted
  bool stop = false;
  bool improved = false;
  std::string reason;      // why stopping, or why not checked ("missing", "before start_from_epoch")
  std::string monitor;
  double value = std::numeric_limits<double>::quiet_NaN();
  double best = std::numeric_limits<double>::quiet_NaN();  // NaN until a first value counted
  std::int64_t best_epoch = -1;
  int wait = 0;
  nlohmann::json to_json() const;  // event data: every field above, null for NaN
};

class EarlyStopping {
 public:
  explicit EarlyStopping(EarlyStoppingOptions opt = {});

  StopDecision check(std::int64_t epoch, const std::map<std::string, double>& quantities);
  bool should_stop() const { return stopped_; }
  const StopDecision& stop_decision() const { return stop_; }  // valid when should_stop()
  double best() const { return best_; }
  std::int64_t best_epoch() const { return best_epoch_; }
  int wait() const { return wait_; }
  const EarlyStoppingOptions& options() const { return opt_; }
  void reset();

 private:
  bool better(double a, double b) const;  // a improves on b by more than min_delta

  EarlyStoppingOptions opt_;
  double best_;
  std::int64_t best_epoch_ = -1;
  int wait_ = 0;
  std::int64_t last_counted_ = std::numeric_limits<std::int64_t>::min();
  bool stopped_ = false;
  StopDecision stop_;
};

const char* to_string(StopMode m);

}  // namespace mmphate
