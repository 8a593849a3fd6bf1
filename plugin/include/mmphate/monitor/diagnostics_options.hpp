/// @file
/// The option structs of the monitor's diagnostics stages, as MonitorConfig holds them
/// (sections `diagnostics`, `phases`, `early_stopping`; docs/DIAGNOSTICS.md, docs/MONITOR.md).
/// Public so that monitor/config.hpp needs no internal header; the stages themselves and the
/// JSON readers of these sections are internal (plugin/src/diagnostics/).
#pragma once
#include <cstdint>
#include <limits>
#include <string>

#include "mmphate/types.hpp"

namespace mmphate {

/// Embedding entropy estimator of the frame diagnostics.
enum class EntropyEstimator { knn, histogram };

struct DiagnosticsOptions {
  EntropyEstimator estimator = EntropyEstimator::knn;  ///< embedding entropy estimator
  int knn_k = 3;                    ///< Kozachenko-Leonenko neighbour rank (capped at n - 1)
  double knn_min_distance = 1e-3;   ///< distance floor (frame RMS radii), so duplicates stay finite
  int histogram_bins = 8;           ///< bins per axis
  double histogram_range = 2.5;     ///< grid half-width in frame RMS radii; outside -> edge bins
  bool spectral = true;             ///< von Neumann entropies of diffusion blocks (needs the kernel)
  int spectral_t = 4;               ///< diffusion time of those spectra (slow modes dominate)
  int spectral_epochs = 1;          ///< newest epochs given spectral entropies (0: all; ~25 ms CPU per 100x20 epoch)
  int top_units = 5;                ///< units listed by change and by entropy
  int score_k = 10;                 ///< community scores' k
  Index score_queries = 1000;       ///< sampled nodes per score family (0: no scores)
  int score_epochs = 8;             ///< scores on the newest epochs only (0: the whole window)
  bool all_matrices = false;        ///< JSON: per-step / per-unit matrices of every epoch, not only the newest
  int digits = 6;                   ///< JSON: significant digits kept (keeps frames small)
  std::uint64_t seed = 0;           ///< score sampling
  int threads = 1;                  ///< 0: all hardware threads

  void validate() const;  ///< throws mmphate::Error naming key, value and allowed values
};


/// The phase rule (docs/DIAGNOSTICS.md, "Phase rule").
struct PhaseDetectorOptions {
  bool enabled = true;
  std::string quantity = "intra_step_entropy";  ///< which FrameDiagnostics quantity to follow
  int window = 6;                    ///< values per trend fit (>= 3)
  double min_t = 4.0;                ///< |slope / standard error| needed for a trend
  double min_delta = 0.0;            ///< fitted change over the window needed (value units)
  double min_relative_delta = 0.02;  ///< ... plus this fraction of |window mean|
  int patience = 2;                  ///< consecutive agreeing updates before the phase changes

  void validate() const;  ///< throws mmphate::Error naming key, value and allowed values
};


/// Early stopping on a monitored quantity, Keras / Lightning semantics (docs/DIAGNOSTICS.md).
enum class StopMode { min, max };

struct EarlyStoppingOptions {
  bool enabled = false;
  std::string monitor = "val_loss";
  StopMode mode = StopMode::min;
  double min_delta = 0.0;   ///< >= 0; the sign follows the mode
  int patience = 3;         ///< checks without improvement before stopping
  int start_from_epoch = 0; ///< checks of earlier epochs are ignored
  bool check_finite = true;
  /// Lightning's `strict`: a monitored quantity that is neither among an epoch's metrics nor a
  /// frame quantity (frame_quantity_names()) is an error at that epoch's end (Monitor), so a
  /// misspelt name cannot silently never fire. false: such epochs are not checked.
  bool strict = true;
  /// NaN = not set (JSON null or absent).
  double baseline = std::numeric_limits<double>::quiet_NaN();
  double stopping_threshold = std::numeric_limits<double>::quiet_NaN();
  double divergence_threshold = std::numeric_limits<double>::quiet_NaN();

  void validate() const;  ///< throws mmphate::Error naming key, value and allowed values
};


}  // namespace mmphate
