// IncrementalEmbedder: one MM-PHATE frame per call for a sliding window of snapshots, reusing
// what the previous frame computed (the live monitor's updater; docs/MONITOR.md).
//
// Every frame:
//  * graph: WindowGraph keeps the exact scalable kernel of the window, paying only for the
//    epochs that entered or left (incremental_graph.hpp);
//  * landmarks: nodes keep the landmark (spectral cluster) they had; the nodes of new epochs
//    are clustered among themselves (spectral features of their own subgraph + seeded
//    k-means) into a share of landmarks equal to their share of the window, so the landmark
//    count stays near the last full recompute's; clusters of epochs that left disappear;
//  * diffusion: t kept from the last full recompute, so P_L^t only needs the eigenpairs with
//    lambda^t above power_floor (MRRR over that value range, not a full dsyevd);
//  * MDS: SMACOF warm-started from the previous landmark layout (new landmarks start at the
//    kernel-weighted mean of the old landmarks their nodes touch);
//  * alignment: Procrustes (rotation/reflection + translation) onto the previous frame's
//    coordinates of the nodes both frames share, so the picture does not jump.
// A full recompute (spectral clustering of the whole window, classical-MDS start, automatic
// t) runs for the first frame, after a layout change, for windows of at most
// full_below_nodes, every full_every frames, and when a drift measure passes its limit:
// the share of nodes clustered since the last full, or the relative change of the interslice
// bandwidth since then. Each frame says which ran and why.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mmphate/incremental_graph.hpp"
#include "mmphate/phate.hpp"
#include "mmphate/procrustes.hpp"
#include "mmphate/snapshot_store.hpp"

namespace mmphate {

struct IncrementalOptions {
  bool incremental = true;         // false: every frame is a full recompute
  int full_every = 32;             // frames between scheduled full recomputes (0: none)
  Index full_below_nodes = 4000;   // windows this small are recomputed in full (cheap)
  double max_new_share = 0.5;      // drift: share of nodes clustered since the last full
  double max_eps_change = 0.25;    // drift: |eps / eps at the last full - 1|
  int warm_mds_iter = 300;         // SMACOF iteration cap for warm starts
  // Warm starts: weight of the pull towards the previous layout, relative to the stress
  // (smacof_anchored; 0: plain SMACOF). Keeps a frame from sliding into a different layout of
  // nearly the same stress (docs/MONITOR.md).
  double mds_anchor = 0.2;
  bool align = true;               // Procrustes onto the previous frame
  Index align_sample = 20000;      // shared nodes used to fit the alignment (0: all)
  int knn_margin = 16;             // spare neighbours per list (fewer recomputations on drops)
  double power_floor = 1e-12;      // incremental frames: EmbedHints::power_floor (0: exact P_L^t)

  void validate() const;
};

struct FrameEmbedding {
  EmbedResult result;   // rows = graph rows of window.nodes; aligned to the previous frame
  WindowKernel window;  // kernel, node index, prepared features, window epochs
  WindowChange change;
  bool full = true;
  std::string reason;   // why full, or "incremental: N new nodes, ..."
  bool aligned = false;
  Alignment alignment;  // when aligned
  double new_share = 0.0;   // drift measures at this frame
  double eps_change = 0.0;
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
    bool since_full = false;  // entered after the last full recompute
  };
  std::vector<int> cluster_new_nodes(const SparseMatrix& K, const std::vector<Index>& rows, int count);

  Options opt_;
  IncrementalOptions inc_;
  WindowGraph graph_;
  std::unordered_map<const Snapshot*, EpochState> state_;
  std::unordered_map<int, Eigen::RowVectorXd> landmark_coords_;  // global landmark id -> layout
  int next_cluster_ = 0;
  int frames_ = 0;
  int frames_since_full_ = 0;
  int t_full_ = 0;
  int landmarks_full_ = 0;
  double eps_full_ = 0.0;
};

}  // namespace mmphate
