// Deterministic phase labelling of an entropy series (docs/DIAGNOSTICS.md, "Phase rule").
//
// Per update the detector fits a least-squares line to the last `window` finite values
// (x = epoch number) and reads its trend: information-processing when the slope's t-statistic
// is >= min_t AND the fitted change over the window is >= min_delta + min_relative_delta *
// |window mean|; compression for the mirror case; stable otherwise. A new trend becomes the
// confirmed phase after `patience` consecutive updates agree; each change of the confirmed
// phase is a PhaseChange event. Until `window` values have arrived the phase is unknown.
// Non-finite values are ignored (no update, no event): a missing measure never flips a phase.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmphate/monitor/diagnostics_options.hpp"

namespace mmphate {

enum class Phase { unknown, information_processing, compression, stable };
const char* to_string(Phase p);


// Unknown keys and wrong types throw mmphate::Error naming `source`, the key and the allowed keys.
void apply_phase_detector_json(PhaseDetectorOptions& opt, const nlohmann::json& config, const std::string& source);
nlohmann::json to_json(const PhaseDetectorOptions& opt);

struct PhaseChange {
  std::int64_t epoch = 0;        // update that confirmed the change
  std::int64_t onset_epoch = 0;  // first update of the agreeing run
  Phase from = Phase::unknown, to = Phase::unknown;
  double evidence = 0.0;         // slope t-statistic at confirmation (+-1e9 for an exact line)
  double slope = 0.0;            // per epoch
  nlohmann::json to_json() const;  // {"epoch", "onset_epoch", "from", "to", "evidence", "slope"}
};

struct PhaseUpdate {
  std::int64_t epoch = 0;
  bool used = false;             // false: value not finite or epoch not newer, state unchanged
  Phase trend = Phase::unknown;  // this update's own reading
  Phase phase = Phase::unknown;  // confirmed phase after this update
  double evidence = 0.0, slope = 0.0;
  std::optional<PhaseChange> change;
};

class PhaseDetector {
 public:
  explicit PhaseDetector(PhaseDetectorOptions opt = {});

  // Feeds one epoch's value. Epochs must increase; an older or repeated epoch is ignored.
  PhaseUpdate update(std::int64_t epoch, double value);

  Phase phase() const { return phase_; }
  const std::vector<PhaseChange>& changes() const { return changes_; }
  const PhaseDetectorOptions& options() const { return opt_; }
  void reset();

 private:
  PhaseDetectorOptions opt_;
  std::deque<std::pair<std::int64_t, double>> recent_;
  std::optional<std::int64_t> last_epoch_;
  Phase phase_ = Phase::unknown;
  Phase candidate_ = Phase::unknown;
  int agree_ = 0;
  std::int64_t candidate_onset_ = 0;
  std::vector<PhaseChange> changes_;
};

// A fresh detector over a whole series (e.g. the per-epoch curve of the newest frame).
std::vector<PhaseUpdate> label_phases(const std::vector<std::int64_t>& epochs, const std::vector<double>& values,
                                      const PhaseDetectorOptions& opt);

}  // namespace mmphate
