// IncrementalEmbedder: one MM-PHATE frame per call for a sliding window of snapshots, reusing
// what the previous frame computed (the live monitor's updater; docs/MONITOR.md).
//
// Every frame:
//  * graph: WindowGraph keeps the exact scalable kernel of the window, paying only for the
//    epochs that entered or left (incremental/window_graph.hpp);
//  * landmarks: nodes keep the landmark (spectral cluster) they had; the nodes of new epochs
//    are clustered among themselves (spectral features of their own subgraph + seeded
//    k-means) into a share of landmarks equal to their share of the window, so the landmark
//    count stays near the last full recompute's; clusters of epochs that left disappear
//    (joining new nodes to old landmarks in the window's spectral features was tried: the
//    operator still mixed up to 5x faster on the language model, at 0.4-1 s more a frame);
//  * diffusion: t kept from the last full recompute, so P_L^t only needs the eigenpairs with
//    lambda^t above power_floor (MRRR over that value range, not a full dsyevd);
//  * MDS: SMACOF warm-started from the previous landmark layout (new landmarks start at the
//    kernel-weighted mean of the old landmarks their nodes touch);
//  * alignment: Procrustes (rotation/reflection, uniform scale, translation) onto the
//    previous frame's coordinates of the nodes both frames share, so the picture does not
//    jump; the first frame is centred and scaled to RMS radius 1, so every frame's
//    coordinates sit near unit scale (the scale of an MDS layout is the procedure's: t and
//    the landmark count set it).
// A full recompute (spectral clustering of the whole window, automatic t) runs for the first
// frame, after a layout change, for windows of at most full_below_nodes, every full_every
// frames, and when a drift measure passes its limit: the share of nodes clustered since the
// last full, the relative change of the interslice bandwidth since then, or the landmark
// operator's slow-mode energy (EmbedResult::slow_mode_energy) moving more than
// max_energy_change from the last full's. The last guards the incremental landmarks: on a
// real language model, new epochs clustered among themselves made the operator mix faster
// frame after frame (lambda_2 0.981 -> 0.924 in four frames, potential distances / 60) and
// the layout collapsed. So windows below full_below_nodes (50,000) are recomputed in full every
// frame, warm-started: the spectral subspace iteration from the previous full's eigenvectors
// and k-means from the previous clusters' centres (ClusterWarmStart: 0.2 s instead of a cold
// k-means's 0.67 s on a 27k-node real window, and landmarks that stay put where the graph did
// not change), t within a factor max_t_step of the previous frame's, and SMACOF from the
// previous layout (each landmark at its nodes' previous mean position), anchored like an
// incremental frame, so it refines the picture instead of drawing a new one. A warm frame that
// would still move the shared nodes more than max_move_full / max_move_incremental of their
// radius is solved again with the anchor doubled (EmbedHints::move_of).
// Each frame says which ran and why.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "incremental/refresh_policy.hpp"
#include "incremental/window_graph.hpp"
#include "mmphate/phate.hpp"
#include "mmphate/monitor/updater_options.hpp"
#include "engine/embed/procrustes.hpp"
#include "mmphate/snapshot_store.hpp"

namespace mmphate {


struct FrameEmbedding {
  EmbedResult result;   // rows = graph rows of window.nodes; aligned to the previous frame
  WindowKernel window;  // kernel, node index, prepared features, window epochs
  WindowChange change;
  bool full = true;     // a full recompute (refresh says why)
  RefreshReason refresh = RefreshReason::none;  // why full
  std::string reason;   // the same for a person, or "incremental: N new nodes, ..."
  bool aligned = false;
  Alignment alignment;  // when aligned
  double new_share = 0.0;   // drift measures at this frame
  double eps_change = 0.0;
  double energy_ratio = 1.0;  // slow-mode energy / the last full's, of the tried incremental operator
  bool warm = false;        // the MDS started from the previous layout (full or incremental)
  StageTimes times;         // all stages of this frame, graph update included
};

class IncrementalEmbedder {
 public:
  IncrementalEmbedder(Options engine, IncrementalOptions inc = {});

  // The frame of the snapshots in `view` (oldest first). force_full: recompute from scratch.
  FrameEmbedding update(const SnapshotStore::View& view, bool force_full = false);

  const Options& engine_options() const { return opt_; }
  const IncrementalOptions& options() const { return inc_; }
  int frames() const { return frames_; }

 private:
  struct EpochState {
    SnapshotPtr snapshot;     // held so the key (its address) cannot be reused
    std::vector<int> cluster; // per local grid node (step * units + unit): landmark id, -1 none
    RowMatrix coords;         // per local grid node; NaN when absent
    RowMatrix basis;          // per local grid node: spectral eigenvectors of the last full (NaN: none)
    bool since_full = false;  // entered after the last full recompute
  };
  struct Decision {
    RefreshReason refresh = RefreshReason::none;  // why full; none: try the incremental update
    std::string reason;           // the same for a person (the frame's `update_reason`)
    bool full() const { return refresh != RefreshReason::none; }
    std::vector<const EpochState*> state_at;  // per window position: its state, null for new epochs
    std::vector<int> prior;       // per graph row: previous global landmark id, -1 none
    Index known_nodes = 0;
    RowMatrix prev;               // per graph row: previous display coordinates, NaN when none
    std::vector<Index> shared;    // graph rows with previous coordinates
  };
  Decision decide(const SnapshotStore::View& view, const WindowKernel& w, bool force_full, FrameEmbedding& fe) const;
  RefreshReason refresh_reason(bool force_full, Index n, bool landmarks, Index known_nodes,
                               const FrameEmbedding& fe) const;
  std::string refresh_text(RefreshReason why, Index n, const FrameEmbedding& fe) const;
  void embed_full(const WindowKernel& w, const Decision& d, FrameEmbedding& fe, std::vector<int>& global_of);
  RowMatrix previous_basis(const WindowKernel& w, const Decision& d) const;  // empty when none is kept
  bool embed_incremental(const WindowKernel& w, const Decision& d, FrameEmbedding& fe, std::vector<int>& global_of);
  std::vector<Index> fit_rows(const Decision& d) const;  // the shared rows the alignment is fitted on
  // Caps the frame's movement of the shared nodes (EmbedHints::move_of) at max_move (0: none).
  void limit_move(const Decision& d, double max_move, EmbedHints& hints) const;
  void align(const Decision& d, FrameEmbedding& fe) const;
  void remember(const SnapshotStore::View& view, const Decision& d, const FrameEmbedding& fe,
                const std::vector<int>& global_of);
  std::vector<int> cluster_new_nodes(const SparseMatrix& K, const std::vector<Index>& rows, int count);
  // Puts each of `fresh` (nodes without a landmark in `prior`) in `assigned` into the old
  // landmark its kernel row weighs most; returns those linked to no old node.
  static std::vector<Index> join_old_landmarks(const SparseMatrix& K, const std::vector<int>& prior,
                                               const std::vector<Index>& fresh, std::vector<int>& assigned);

  Options opt_;
  IncrementalOptions inc_;
  WindowGraph graph_;
  std::unordered_map<const Snapshot*, EpochState> state_;
  std::unordered_map<int, Eigen::RowVectorXd> landmark_coords_;  // global landmark id -> layout
  RowMatrix basis_;  // per graph row of the current frame: its full recompute's eigenvectors (else empty)
  int next_cluster_ = 0;
  int frames_ = 0;
  int frames_since_full_ = 0;
  int t_full_ = 0;
  int landmarks_full_ = 0;
  double eps_full_ = 0.0;
  double energy_full_ = 0.0;  // slow_mode_energy of the last full recompute (0: none)
  int rejections_ = 0;        // incremental operators rejected in a row
  int skip_incremental_ = 0;  // frames left that go straight to a full recompute
};

}  // namespace mmphate
