// Numeric diagnostics of one MM-PHATE frame (docs/DIAGNOSTICS.md has the exact definitions).
//
// Input: the frame's embedding on the full grid (epochs x steps x units, epoch-major, one row
// per grid node, an all-NaN row for an absent node), optionally the multislice kernel over the
// graph rows and the z-scored features. Output, per epoch of the window:
//  * intra-step entropy: spread of the units of one slice (epoch, step), mean over steps;
//  * inter-step entropy: spread of one unit over the steps of an epoch, mean over units;
//    both estimated on coordinates divided by the frame's RMS radius (scale- and
//    rotation-free) with a Kozachenko-Leonenko kNN estimator (default) or a fixed-grid histogram;
//  * spectral (von Neumann) entropies of the same groups' diffusion blocks of the kernel, which
//    need no embedding at all;
//  * visualisation variance (M-PHATE): trace of the covariance of the epoch's coordinates;
//  * per-unit change between consecutive epochs of the window and the top units of the newest
//    epoch by change and by entropy;
//  * sampled community-structure scores (scores.hpp) of the newest epochs of the frame.
// Unavailable values are NaN in the structs and null in JSON; bad input throws mmphate::Error.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmphate/log.hpp"
#include "mmphate/monitor/diagnostics_options.hpp"
#include "mmphate/scores.hpp"
#include "mmphate/trace.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

const char* to_string(EntropyEstimator e);
EntropyEstimator parse_entropy_estimator(const std::string& text);  // "knn" | "histogram"


// Applies {"estimator": "histogram", "knn_k": 5, ...}; unknown keys and wrong types throw
// mmphate::Error naming `source`, the key and the allowed keys / values. Validates the result.
void apply_diagnostics_json(DiagnosticsOptions& opt, const nlohmann::json& config, const std::string& source);
nlohmann::json to_json(const DiagnosticsOptions& opt);

struct RankedUnit {
  Index unit = 0;
  double value = 0.0;
};

struct FrameDiagnostics {
  std::vector<std::int64_t> epochs;  // the window, oldest first
  Index steps = 0, units = 0, present_nodes = 0;
  EntropyEstimator estimator = EntropyEstimator::knn;
  double frame_radius = 0.0;         // RMS distance of present nodes to their centroid

  // One value per epoch of the window (NaN: not available).
  std::vector<double> intra_step_entropy;           // mean over steps of the by-step values
  std::vector<double> inter_step_entropy;           // mean over units of the by-unit values
  std::vector<double> spectral_intra_step_entropy;
  std::vector<double> spectral_inter_step_entropy;
  std::vector<double> visualization_variance;           // embedding units^2
  std::vector<double> visualization_variance_relative;  // / frame_radius^2 (scale-free)
  std::vector<double> unit_change;                  // mean over units of unit_change_by_unit
  double visualization_variance_total = 0.0;        // M-PHATE's sum over epochs

  // epochs x steps and epochs x units (NaN: not available).
  RowMatrix intra_step_entropy_by_step, spectral_intra_step_entropy_by_step;
  RowMatrix inter_step_entropy_by_unit, spectral_inter_step_entropy_by_unit;
  RowMatrix unit_change_by_unit;  // mean displacement from the previous epoch, frame RMS radii

  // Newest epoch, best first (ties: lower unit index).
  std::vector<RankedUnit> top_change_units, top_entropy_units;

  std::optional<CommunityScores> scores;  // on the newest score_epochs epochs
  Index score_epochs = 0;
  std::vector<std::string> warnings;  // why some value is missing (also logged)
  double seconds = 0.0;
  StageTimes times;                   // entropy, spectral, variance, scores
  bool all_matrices = false;
  int digits = 6;

  // The frame's `diagnostics` object (docs/DIAGNOSTICS.md lists the keys).
  nlohmann::json to_json() const;
  // The per-epoch curve of that name (a key of to_json()'s "per_epoch"), nullptr for others.
  const std::vector<double>* per_epoch(const std::string& name) const;
  static const std::vector<std::string>& per_epoch_names();
  // Finite scalars of the newest epoch by name, for the phase detector and early stopping;
  // an unavailable quantity is absent, never NaN.
  std::map<std::string, double> quantities() const;  // keys: frame_quantity_names()
};

// Every name quantities() can hold: what early stopping and the phase detector may monitor
// besides the training loop's own metrics.
const std::vector<std::string>& frame_quantity_names();

// grid_coords: shape.nodes() rows (node = (epoch_pos * steps + step) * units + unit), one column
// per embedding dimension, all-NaN rows for absent nodes. epochs: one label per window epoch,
// strictly increasing. kernel (optional): symmetric multislice kernel over the rows of
// graph_nodes. features (optional): graph rows x probes, z-scored, for the community scores.
FrameDiagnostics compute_frame_diagnostics(const RowMatrix& grid_coords, const TraceShape& shape,
                                           const std::vector<std::int64_t>& epochs, const SparseMatrix* kernel,
                                           const NodeIndex* graph_nodes, const DiagnosticsOptions& opt,
                                           const RowMatrix* features = nullptr);

// ---- The estimators, on one group of points (exposed for tests and tools) ----

// Kozachenko-Leonenko: psi(n) - psi(k) + log V_d + (d / n) sum_i log max(r_i, min_distance),
// r_i = distance from row i to its k-th nearest other row, V_d = unit-ball volume; k is capped
// at n - 1. Nats. NaN for fewer than 2 rows.
double knn_entropy(const RowMatrix& points, int k, double min_distance);

// Plug-in entropy -sum p log p of the counts on the grid [-range, range)^d with `bins` bins per
// axis (points outside go to the edge bins). Nats. NaN for no rows.
double histogram_entropy(const RowMatrix& points, int bins, double range);

// Von Neumann entropy of the diffusion block K_B (symmetric, non-negative): eigenvalues l of
// D^-1/2 K_B D^-1/2 (D = row sums within the block), q = |l|^t / sum |l|^t, -sum q log q.
// Rows without weight inside the block count as isolated (l = 1). Nats, in [0, log m].
double spectral_entropy(const Matrix& block, int t);

}  // namespace mmphate
