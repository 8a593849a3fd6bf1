/// @file
/// The PHATE engine: kernel -> diffusion operator -> (landmarks) -> automatic t ->
/// potential -> MDS -> (extension to all nodes). Entry points for plain PHATE on an
/// [n, d] matrix and for multislice PHATE (M-PHATE / MM-PHATE) on [slices, units, probes].
#pragma once
#include <functional>
#include <limits>
#include <vector>

#include "mmphate/log.hpp"
#include "mmphate/options.hpp"
#include "mmphate/trace.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

struct EmbedResult {
  RowMatrix embedding;            ///< nodes x n_components
  int t = 0;                      ///< diffusion time used
  bool t_automatic = false;
  int t_knee = 0;                 ///< the entropy knee, when t was automatic (t may be clamped: EmbedHints::t_step)
  std::vector<double> entropy;    ///< von Neumann entropy curve (when t was automatic)
  bool landmarks_used = false;
  int n_landmarks = 0;
  Index n_nodes = 0;
  Index kernel_nnz = 0;
  double interslice_eps = std::numeric_limits<double>::quiet_NaN();  ///< multislice only
  Index constant_nodes = 0;       ///< multislice: nodes whose trace was constant
  Index dropped_nodes = 0;        ///< multislice: nodes removed by nan_policy drop-node
  Index nonfinite_values = 0;     ///< multislice: NaN/Inf values met in the trace
  NodeIndex nodes;                ///< multislice: (epoch, step, unit) of each embedding row
  int mds_iterations = 0;
  double mds_anchor = 0.0;        ///< warm starts: the anchor weight the layout was solved with
  double move = std::numeric_limits<double>::quiet_NaN();  ///< EmbedHints::move_of of the result (when given)
  double move_unraised = std::numeric_limits<double>::quiet_NaN();  ///< the same at the hint's own anchor
  bool move_bound_by_change = false;  ///< the neighbourhood guard, not the movement cap, ended the raises
  KnnMethod knn_method = KnnMethod::exact;  ///< plain PHATE: the back end that ran
  std::vector<int> landmark_of;   ///< landmarks: landmark of each node (0 .. n_landmarks-1)
  RowMatrix landmark_embedding;   ///< landmarks: n_landmarks x n_components (before extension)
  /// Landmarks: sum over the non-stationary eigenvalues of P_L of lambda^(2t), the energy of
  /// the diffusion modes that still separate landmarks at time t. The potential distances
  /// scale with it; a change the network did not make shows an operator gone wrong.
  double slow_mode_energy = std::numeric_limits<double>::quiet_NaN();
  bool rejected = false;          ///< the spectrum check of EmbedHints failed: no embedding
  StageTimes times;
};

/// What an incremental caller already knows (incremental/embedder.hpp); every field optional.
struct EmbedHints {
  /// Landmark assignment to use instead of spectral clustering (one id per node, 0..count-1,
  /// none empty). Only used when landmarks apply (nodes > n_landmark).
  const std::vector<int>* landmark_of = nullptr;
  int landmark_count = 0;
  /// Initial layout for metric MDS (landmarks x n_components, or nodes x n_components without
  /// landmarks) instead of classical MDS: a warm start from the previous frame.
  const RowMatrix* mds_init = nullptr;
  int mds_max_iter = 0;  ///< > 0: cap on SMACOF iterations (warm starts converge early)
  /// > 0 with mds_init: SMACOF is anchored to mds_init with this weight (smacof_anchored).
  double mds_anchor = 0.0;
  /// With an anchored warm start: the caller's measure of how far a candidate node layout
  /// moved from the previous frame (the live updater: RMS movement of the shared nodes over
  /// their radius, after alignment). While it exceeds max_move, SMACOF goes on from the
  /// layout with the anchor weight doubled, at most max_anchor_raises times: the frame moves
  /// only as far as it must, and only frames that would jump pay for it.
  std::function<double(const RowMatrix& embedding)> move_of;
  double max_move = 0.0;
  int max_anchor_raises = 6;
  /// A raise is kept only while the layout keeps at least this share of the unraised layout's
  /// anchor_overlap_k nearest neighbours of each MDS point (knn_overlap): a window that
  /// really changed is not forced into the old picture (0: no guard).
  double min_anchor_overlap = 0.9;
  int anchor_overlap_k = 10;
  int t = 0;             ///< > 0: diffusion time to use instead of opt.t / the automatic choice
  /// > 0 with an automatic t: the chosen t stays within a factor t_step of t_previous (the
  /// live updater: a window's entropy knee can jump 67 -> 19 between consecutive frames and
  /// redraw the picture; t then moves there over a few frames). EmbedResult::t_knee keeps
  /// the unclamped knee.
  int t_previous = 0;
  double t_step = 0.0;
  /// With landmarks and a given t: eigenpairs of P_L whose lambda^t is below this floor are
  /// left out of P_L^t (each entry changes by at most floor * sqrt(w_j / w_i), w the landmark
  /// weights), so only the dominant part of the spectrum is computed. 0: exact P_L^t.
  double power_floor = 0.0;
  /// > 0 with landmarks: stop after the spectrum (rejected = true, no potential or MDS) when
  /// slow_mode_energy differs from this reference by more than a factor (1 + energy_tolerance)
  /// either way. The incremental updater's guard against a landmark operator that mixes
  /// faster than the window's (docs/MONITOR.md).
  double energy_reference = 0.0;
  double energy_tolerance = 0.25;
};

/// Everything after the kernel. K must be symmetric with positive row sums.
EmbedResult embed_kernel(const SparseMatrix& K, const Options& opt);
EmbedResult embed_kernel(const SparseMatrix& K, const Options& opt, const EmbedHints& hints);

/// Plain PHATE on the rows of data.
EmbedResult run_phate(const RowMatrix& data, const Options& opt);

/// Multislice PHATE on a raw trace, (epochs * steps * units) x probes in epoch-major node order.
/// Applies opt.nan_policy and opt.normalize (prepare_trace), then the kernel of
/// opt.multislice_mode, then the engine.
EmbedResult run_multislice(const RowMatrix& raw, const TraceShape& shape, const Options& opt);

/// The same on an already prepared trace.
EmbedResult run_multislice(const PreparedTrace& trace, const Options& opt);

/// M-PHATE-style input [slices, units, probes] (steps = 1).
EmbedResult run_multislice(const RowMatrix& features, Index slices, Index units, const Options& opt);

/// Kernel of plain PHATE (after optional PCA), exposed for tests and tools.
SparseMatrix phate_kernel(const RowMatrix& data, const Options& opt, KnnMethod* used = nullptr);

/// Principal components: centred data projected on its top n_components directions.
RowMatrix pca(const RowMatrix& data, int n_components);

}  // namespace mmphate
