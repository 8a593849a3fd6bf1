/// @file
/// IncrementalOptions: the live updater's settings (MonitorConfig::updater.incremental,
/// docs/MONITOR.md). Public so that monitor/config.hpp needs no internal header; the updater
/// itself is internal (plugin/src/incremental/embedder.hpp).
#pragma once
#include "mmphate/types.hpp"

namespace mmphate {

struct IncrementalOptions {
  bool incremental = true;         ///< false: every frame is a full recompute
  int full_every = 32;             ///< frames between scheduled full recomputes (0: none)
  Index full_below_nodes = 50000;  ///< windows this small are recomputed in full (warm: cheap)
  double max_new_share = 0.5;      ///< drift: share of nodes clustered since the last full
  double max_eps_change = 0.25;    ///< drift: |eps / eps at the last full - 1|
  int warm_mds_iter = 300;         ///< SMACOF iteration cap for warm starts
  /// Warm starts: weight of the pull towards the previous layout, relative to the stress
  /// (smacof_anchored; 0: plain SMACOF). Keeps a frame from sliding into a different layout of
  /// nearly the same stress (docs/MONITOR.md).
  double mds_anchor = 0.2;
  /// Warm starts: the most a frame may move the nodes it shares with the previous frame (RMS
  /// movement after alignment, over their RMS radius). A frame that would move them further is
  /// solved again with the anchor doubled, up to 6 times (0: no limit). Full recomputes and
  /// incremental frames separately: the snapshots of shared nodes never change, so their
  /// movement is the procedure's, not the network's (docs/MONITOR.md).
  double max_move_full = 0.08;
  double max_move_incremental = 0.04;
  /// ... but a raise is kept only while the layout keeps this share of the unraised layout's
  /// 10 nearest neighbours of each landmark: where holding the picture would tear
  /// neighbourhoods, the window itself changed and the frame moves (0: no guard).
  double move_keep_neighbours = 0.9;
  bool align = true;               ///< Procrustes (with scale) onto the previous frame
  bool warm_full = true;           ///< full recomputes start from the previous layout
  /// drift: slow-mode energy of an incremental frame's landmark operator vs the last full's,
  /// as a factor: beyond (1 + this) either way the frame is recomputed in full.
  double max_energy_change = 0.25;
  Index align_sample = 20000;      ///< shared nodes used to fit the alignment (0: all)
  int knn_margin = 16;             ///< spare neighbours per list (fewer recomputations on drops)
  double power_floor = 1e-12;      ///< incremental frames: EmbedHints::power_floor (0: exact P_L^t)
  /// Warm full recomputes: the automatic t moves at most this factor from the previous frame's
  /// (0: no limit). The knee of the entropy curve jumps when the window's spectrum crosses a
  /// plateau (Hopf ramp: 67 -> 19 in one frame moved shared nodes by 0.42 radii).
  double max_t_step = 1.25;
  /// Incremental frames: true: a new node joins the old landmark its kernel row weighs most
  /// (a unit's node of the new epoch sits with its previous epochs'); only new nodes without
  /// an old neighbour form landmarks of their own. false: new nodes go to landmarks clustered
  /// among the new nodes (docs/MONITOR.md).
  bool join_landmarks = false;

  void validate() const;
};


}  // namespace mmphate
