#include "incremental/embedder.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "mmphate/error.hpp"
#include "engine/diffusion/kmeans.hpp"
#include "engine/diffusion/landmarks.hpp"
#include "mmphate/log.hpp"

namespace mmphate {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// K restricted to the listed rows and columns.
SparseMatrix restrict_kernel(const SparseMatrix& K, const std::vector<Index>& rows) {
  std::vector<int> local(static_cast<std::size_t>(K.rows()), -1);
  for (std::size_t i = 0; i < rows.size(); ++i) local[rows[i]] = static_cast<int>(i);
  std::vector<Triplet> trip;
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (SparseMatrix::InnerIterator it(K, rows[i]); it; ++it)
      if (local[it.col()] >= 0) trip.emplace_back(static_cast<int>(i), local[it.col()], it.value());
  SparseMatrix S(static_cast<Index>(rows.size()), static_cast<Index>(rows.size()));
  S.setFromTriplets(trip.begin(), trip.end());
  return S;
}

std::string percent(double share) {
  std::ostringstream os;
  os.precision(3);
  os << 100.0 * share << "%";
  return os.str();
}

}  // namespace

void IncrementalOptions::validate() const {
  auto bad = [](const std::string& key, const std::string& value, const std::string& allowed) {
    throw Error("invalid updater option " + key + " = " + value + ": " + allowed);
  };
  // Upper bounds as for the engine's own sizes (options.cpp): no option alone may drive a frame
  // into hours of iterations or neighbour lists beyond any real input.
  if (full_every < 0 || full_every > 1000000)
    bad("full_every", std::to_string(full_every), "must be in [0, 1000000] (0: no schedule)");
  if (full_below_nodes < 0) bad("full_below_nodes", std::to_string(full_below_nodes), "must be >= 0");
  if (!(max_new_share > 0 && max_new_share <= 1))
    bad("max_new_share", std::to_string(max_new_share), "must be in (0, 1]");
  if (!(max_eps_change > 0)) bad("max_eps_change", std::to_string(max_eps_change), "must be > 0");
  if (warm_mds_iter < 1 || warm_mds_iter > 1000000)
    bad("warm_mds_iter", std::to_string(warm_mds_iter), "must be in [1, 1000000]");
  if (!(mds_anchor >= 0 && mds_anchor <= 100)) bad("mds_anchor", std::to_string(mds_anchor), "must be in [0, 100]");
  if (!(max_move_full >= 0 && max_move_full <= 10))
    bad("max_move_full", std::to_string(max_move_full), "must be in [0, 10] (0: no limit)");
  if (!(max_move_incremental >= 0 && max_move_incremental <= 10))
    bad("max_move_incremental", std::to_string(max_move_incremental), "must be in [0, 10] (0: no limit)");
  if (!(move_keep_neighbours >= 0 && move_keep_neighbours <= 1))
    bad("move_keep_neighbours", std::to_string(move_keep_neighbours), "must be in [0, 1] (0: no guard)");
  if (align_sample < 0) bad("align_sample", std::to_string(align_sample), "must be >= 0 (0: all)");
  if (knn_margin < 0 || knn_margin > 100000) bad("knn_margin", std::to_string(knn_margin), "must be in [0, 100000]");
  if (!(power_floor >= 0 && power_floor < 1)) bad("power_floor", std::to_string(power_floor), "must be in [0, 1)");
  if (!(max_t_step == 0 || (max_t_step > 1 && max_t_step <= 100)))
    bad("max_t_step", std::to_string(max_t_step), "must be 0 (no limit) or in (1, 100]");
  if (!(max_energy_change > 0 && max_energy_change <= 1000))
    bad("max_energy_change", std::to_string(max_energy_change), "must be in (0, 1000]");
}

IncrementalEmbedder::IncrementalEmbedder(Options engine, IncrementalOptions inc)
    : opt_(std::move(engine)), inc_(inc), graph_(opt_, inc.knn_margin) {
  inc_.validate();
}

std::vector<int> IncrementalEmbedder::cluster_new_nodes(const SparseMatrix& K, const std::vector<Index>& rows,
                                                        int count) {
  const Index m = static_cast<Index>(rows.size());
  std::vector<int> labels(static_cast<std::size_t>(m));
  if (count >= m) {
    for (Index i = 0; i < m; ++i) labels[i] = static_cast<int>(i);
    return labels;
  }
  const SparseMatrix S = restrict_kernel(K, rows);
  const int n_svd = static_cast<int>(std::min<Index>(opt_.n_svd, m - 1));
  const RowMatrix F = spectral_features(S, n_svd, opt_.seed + static_cast<std::uint64_t>(frames_), opt_.threads,
                                        opt_.svd_power_iterations);
  KMeansOptions ko;
  ko.seed = opt_.seed + 1 + static_cast<std::uint64_t>(frames_);
  ko.threads = opt_.threads;
  KMeansResult km = kmeans(F, count, ko);
  return km.labels;
}

std::vector<Index> IncrementalEmbedder::join_old_landmarks(const SparseMatrix& K, const std::vector<int>& prior,
                                                           const std::vector<Index>& fresh, std::vector<int>& assigned) {
  // Decided from the old nodes' landmarks only (`prior`), so the order of the new nodes does
  // not matter.
  std::vector<Index> loners;
  std::unordered_map<int, double> mass;
  for (const Index r : fresh) {
    mass.clear();
    for (SparseMatrix::InnerIterator it(K, r); it; ++it)
      if (it.col() != r && prior[static_cast<std::size_t>(it.col())] >= 0)
        mass[prior[static_cast<std::size_t>(it.col())]] += it.value();
    int best = -1;
    double top = 0.0;
    for (const auto& [landmark, m] : mass)
      if (m > top || (m == top && landmark < best)) {
        best = landmark;
        top = m;
      }
    if (best >= 0) assigned[static_cast<std::size_t>(r)] = best;
    else loners.push_back(r);
  }
  return loners;
}

namespace {

// Mean previous position of each group's nodes (`prev`: one row per graph row, NaN when the
// node had none); NaN rows for groups without such nodes.
RowMatrix member_means(const std::vector<int>& group_of, int count, const RowMatrix& prev) {
  RowMatrix init = RowMatrix::Zero(count, prev.cols());
  Vector members = Vector::Zero(count);
  for (Index r = 0; r < prev.rows(); ++r)
    if (std::isfinite(prev(r, 0))) {
      init.row(group_of[r]) += prev.row(r);
      members(group_of[r]) += 1;
    }
  for (int c = 0; c < count; ++c) {
    if (members(c) > 0) init.row(c) /= members(c);
    else init.row(c).setConstant(kNaN);
  }
  return init;
}

// Places the groups still NaN in `init` at the kernel-weighted mean of the known groups their
// nodes are linked to, or at the centroid of the known ones.
void place_unknown_groups(const SparseMatrix& K, const std::vector<int>& group_of, RowMatrix& init) {
  const Index count = init.rows(), dims = init.cols();
  std::vector<char> known(static_cast<std::size_t>(count), 0);
  Eigen::RowVectorXd centroid = Eigen::RowVectorXd::Zero(dims);
  int n_known = 0;
  for (Index c = 0; c < count; ++c)
    if (std::isfinite(init(c, 0))) {
      known[c] = 1;
      centroid += init.row(c);
      ++n_known;
    }
  if (n_known > 0) centroid /= n_known;
  RowMatrix acc = RowMatrix::Zero(count, dims);
  Vector weight = Vector::Zero(count);
  for (Index r = 0; r < K.rows(); ++r) {
    const int c = group_of[r];
    if (known[c]) continue;
    for (SparseMatrix::InnerIterator it(K, r); it; ++it) {
      const int d = group_of[it.col()];
      if (!known[d]) continue;
      acc.row(c) += it.value() * init.row(d);
      weight(c) += it.value();
    }
  }
  for (Index c = 0; c < count; ++c)
    if (!known[c]) init.row(c) = weight(c) > 0 ? Eigen::RowVectorXd(acc.row(c) / weight(c)) : centroid;
}

// The hints both warm paths (warm full recompute, incremental frame) share: the groups' previous
// positions as the MDS start, unknown groups placed from their neighbours first, a capped and
// anchored SMACOF; `landmark_of` (the groups as landmarks) or null (every node its own group).
EmbedHints warm_layout_hints(const SparseMatrix& K, const std::vector<int>& group_of, const std::vector<int>* landmark_of,
                             int count, RowMatrix& init, const IncrementalOptions& inc) {
  place_unknown_groups(K, group_of, init);
  EmbedHints hints;
  if (landmark_of) {
    hints.landmark_of = landmark_of;
    hints.landmark_count = count;
  }
  hints.mds_init = &init;
  hints.mds_max_iter = inc.warm_mds_iter;
  hints.mds_anchor = inc.mds_anchor;
  return hints;
}

// The similarity Procrustes fit of `embedding` onto `prev` on the listed shared rows.
Alignment fit_shared(const RowMatrix& embedding, const RowMatrix& prev, const std::vector<Index>& rows) {
  const Index dims = prev.cols();
  RowMatrix cur(static_cast<Index>(rows.size()), dims), old(static_cast<Index>(rows.size()), dims);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    cur.row(static_cast<Index>(i)) = embedding.row(rows[i]);
    old.row(static_cast<Index>(i)) = prev.row(rows[i]);
  }
  return procrustes(cur, old, true);
}

// How far `embedding` moves the sampled shared rows from `prev`: RMS movement after the
// similarity alignment align() will apply, over their previous RMS radius (bench_live's measure).
double shared_move(const RowMatrix& embedding, const RowMatrix& prev, const std::vector<Index>& sample) {
  const Alignment a = fit_shared(embedding, prev, sample);
  return a.radius > 0 ? a.rms_after / a.radius : 0.0;
}

// The frame's `update_reason` suffix when the movement cap raised the anchor (else empty).
std::string anchor_text(const EmbedResult& r, double anchor) {
  std::ostringstream os;
  os.precision(3);
  if (r.mds_anchor > anchor)
    os << "; anchor raised " << anchor << " -> " << r.mds_anchor << ": shared nodes move " << r.move
       << " of their radius (" << r.move_unraised << " at " << anchor << ")";
  if (r.move_bound_by_change)
    os << (r.mds_anchor > anchor ? ", " : "; ") << "held no further: the window's neighbourhoods changed";
  return os.str();
}

}  // namespace

// The policy: the first reason in RefreshReason's order that applies (none: incremental).
RefreshReason IncrementalEmbedder::refresh_reason(bool force_full, Index n, bool landmarks, Index known_nodes,
                                                  const FrameEmbedding& fe) const {
  if (force_full) return RefreshReason::requested;
  if (!inc_.incremental) return RefreshReason::incremental_off;
  if (frames_ == 0) return RefreshReason::first_frame;
  if (fe.change.reset) return RefreshReason::layout_changed;
  if (!landmarks) return RefreshReason::exact_diffusion;
  if (n <= inc_.full_below_nodes) return RefreshReason::small_window;
  if (landmarks_full_ == 0) return RefreshReason::first_with_landmarks;
  if (known_nodes == 0) return RefreshReason::no_shared_nodes;
  if (inc_.full_every > 0 && frames_since_full_ + 1 >= inc_.full_every) return RefreshReason::schedule;
  if (fe.new_share > inc_.max_new_share) return RefreshReason::drift_new_share;
  if (fe.eps_change > inc_.max_eps_change) return RefreshReason::drift_bandwidth;
  if (skip_incremental_ > 0) return RefreshReason::drift_backoff;
  return RefreshReason::none;
}

// The frame's `update_reason` for a full recompute: the reason with the numbers behind it.
std::string IncrementalEmbedder::refresh_text(RefreshReason why, Index n, const FrameEmbedding& fe) const {
  switch (why) {
    case RefreshReason::none: return {};
    case RefreshReason::requested: return "requested";
    case RefreshReason::incremental_off: return "incremental updates are off";
    case RefreshReason::first_frame: return "first frame";
    case RefreshReason::layout_changed: return "the snapshot layout changed";
    case RefreshReason::exact_diffusion:
      return "window of " + std::to_string(n) + " nodes is within n_landmark (exact diffusion)";
    case RefreshReason::small_window:
      return "window of " + std::to_string(n) + " nodes is within full_below_nodes = " +
             std::to_string(inc_.full_below_nodes);
    case RefreshReason::first_with_landmarks: return "first frame with landmarks";
    case RefreshReason::no_shared_nodes: return "no node of the previous frame is left";
    case RefreshReason::schedule: return "schedule: every " + std::to_string(inc_.full_every) + " frames";
    case RefreshReason::drift_new_share:
      return "drift: " + percent(fe.new_share) + " of the nodes were clustered since the last full recompute (limit " +
             percent(inc_.max_new_share) + ")";
    case RefreshReason::drift_bandwidth:
      return "drift: the interslice bandwidth moved " + percent(fe.eps_change) +
             " since the last full recompute (limit " + percent(inc_.max_eps_change) + ")";
    case RefreshReason::drift_backoff:
      return "drift: an incremental landmark operator failed the slow-mode check " + std::to_string(rejections_) +
             " time(s) in a row; full recomputes for " + std::to_string(skip_incremental_) + " more frame(s)";
    case RefreshReason::drift_energy: {
      std::ostringstream os;
      os.precision(3);
      os << "drift: the incremental landmark operator's slow-mode energy is " << fe.energy_ratio
         << " x the last full recompute's (allowed " << 1.0 / (1.0 + inc_.max_energy_change) << " - "
         << 1.0 + inc_.max_energy_change << ")";
      return os.str();
    }
  }
  return {};
}

IncrementalEmbedder::Decision IncrementalEmbedder::decide(const SnapshotStore::View& view, const WindowKernel& w,
                                                          bool force_full, FrameEmbedding& fe) const {
  Decision d;
  const Index n = w.nodes.size();
  const Index per_epoch = w.nodes.shape.steps * w.nodes.shape.units;
  d.state_at.assign(view.snapshots.size(), nullptr);
  for (std::size_t p = 0; p < view.snapshots.size(); ++p) {
    auto it = state_.find(view.snapshots[p].get());
    if (it != state_.end()) d.state_at[p] = &it->second;
  }
  Index since_full_nodes = 0;
  d.prior.assign(static_cast<std::size_t>(n), -1);
  for (Index r = 0; r < n; ++r) {
    const Index grid = w.nodes.full_id[r];
    const EpochState* es = d.state_at[static_cast<std::size_t>(grid / per_epoch)];
    if (!es || es->since_full) ++since_full_nodes;
    if (es) {
      d.prior[r] = es->cluster[static_cast<std::size_t>(grid % per_epoch)];
      ++d.known_nodes;
    }
  }
  d.prev = RowMatrix::Constant(n, opt_.n_components, kNaN);
  for (Index r = 0; r < n; ++r) {
    const Index grid = w.nodes.full_id[r];
    const EpochState* es = d.state_at[static_cast<std::size_t>(grid / per_epoch)];
    if (es && es->coords.cols() == opt_.n_components && std::isfinite(es->coords(grid % per_epoch, 0))) {
      d.prev.row(r) = es->coords.row(grid % per_epoch);
      d.shared.push_back(r);
    }
  }
  fe.new_share = n > 0 ? static_cast<double>(since_full_nodes) / static_cast<double>(n) : 1.0;
  fe.eps_change = eps_full_ > 0 ? std::abs(w.info.interslice_eps / eps_full_ - 1.0) : 0.0;
  const bool landmarks = opt_.n_landmark > 0 && n > opt_.n_landmark;

  d.refresh = refresh_reason(force_full, n, landmarks, d.known_nodes, fe);
  if (d.full()) d.reason = refresh_text(d.refresh, n, fe);
  return d;
}

RowMatrix IncrementalEmbedder::previous_basis(const WindowKernel& w, const Decision& d) const {
  const Index n = w.nodes.size(), per_epoch = w.nodes.shape.steps * w.nodes.shape.units;
  Index cols = 0, known = 0;
  for (const EpochState* es : d.state_at)
    if (es && es->basis.cols() > 0) cols = es->basis.cols();
  if (cols == 0) return {};
  RowMatrix B = RowMatrix::Constant(n, cols, kNaN);
  for (Index r = 0; r < n; ++r) {
    const Index grid = w.nodes.full_id[r];
    const EpochState* es = d.state_at[static_cast<std::size_t>(grid / per_epoch)];
    if (es && es->basis.cols() == cols && std::isfinite(es->basis(grid % per_epoch, 0))) {
      B.row(r) = es->basis.row(grid % per_epoch);
      ++known;
    }
  }
  return known > 0 ? B : RowMatrix();
}

void IncrementalEmbedder::embed_full(const WindowKernel& w, const Decision& d, FrameEmbedding& fe,
                                     std::vector<int>& global_of) {
  fe.full = true;
  fe.refresh = d.refresh;
  fe.reason = d.reason;
  const Index n = w.nodes.size(), dims = opt_.n_components;
  const bool landmarks = opt_.n_landmark > 0 && n > opt_.n_landmark;
  const bool warm = inc_.warm_full && frames_ > 0 && opt_.mds == MdsMethod::metric &&
                    static_cast<Index>(d.shared.size()) > dims;
  if (!warm) {
    fe.result = embed_kernel(w.K, opt_);
  } else {
    // Warm full recompute: fresh landmarks and t, the previous layout as the MDS start. The
    // clusters go to embed_kernel as a hint, which builds their operators (once).
    std::vector<int> group_of;
    int count = 0;
    if (landmarks) {
      ClusterWarmStart ws;
      ws.prior = d.prior;
      ws.basis = previous_basis(w, d);
      KMeansResult km = cluster_landmarks(w.K, opt_.n_landmark, opt_.n_svd, opt_.seed, opt_.threads, &fe.times,
                                          opt_.svd_power_iterations, &ws);
      group_of = std::move(km.labels);
      count = km.n_clusters;
      basis_ = std::move(ws.basis);
    } else {
      group_of.resize(static_cast<std::size_t>(n));
      for (Index r = 0; r < n; ++r) group_of[r] = static_cast<int>(r);
      count = static_cast<int>(n);
    }
    RowMatrix init = member_means(group_of, count, d.prev);
    EmbedHints hints = warm_layout_hints(w.K, group_of, landmarks ? &group_of : nullptr, count, init, inc_);
    hints.t_previous = t_full_;
    hints.t_step = inc_.max_t_step;
    limit_move(d, inc_.max_move_full, hints);
    fe.result = embed_kernel(w.K, opt_, hints);
    fe.warm = true;
    fe.reason += anchor_text(fe.result, inc_.mds_anchor);
    if (fe.result.t_automatic && fe.result.t != fe.result.t_knee) {
      std::ostringstream os;
      os << "; t " << fe.result.t << " (knee " << fe.result.t_knee << ", at most x" << inc_.max_t_step
         << " a frame from " << t_full_ << ")";
      fe.reason += os.str();
    }
  }
  if (fe.result.landmarks_used)
    for (int c = 0; c < fe.result.n_landmarks; ++c) global_of.push_back(next_cluster_++);
  t_full_ = fe.result.t;
  landmarks_full_ = fe.result.n_landmarks;
  eps_full_ = w.info.interslice_eps;
  energy_full_ = std::isfinite(fe.result.slow_mode_energy) && fe.result.slow_mode_energy > 0 ? fe.result.slow_mode_energy : 0.0;
  frames_since_full_ = 0;
  fe.new_share = 0.0;
  fe.eps_change = 0.0;
  fe.energy_ratio = 1.0;
}

bool IncrementalEmbedder::embed_incremental(const WindowKernel& w, const Decision& d, FrameEmbedding& fe,
                                            std::vector<int>& global_of) {
  const Index n = w.nodes.size(), dims = opt_.n_components;
  // New nodes join the old landmarks they are linked to most (join_landmarks); the rest get
  // landmarks of their own, in proportion to their share of the window.
  std::vector<Index> fresh;
  for (Index r = 0; r < n; ++r)
    if (d.prior[r] < 0) fresh.push_back(r);
  std::vector<int> assigned = d.prior;
  const std::size_t new_nodes = fresh.size();
  std::unordered_map<int, char> live;
  for (Index r = 0; r < n; ++r)
    if (d.prior[r] >= 0) live.emplace(d.prior[r], 1);
  const int old_live = static_cast<int>(live.size());
  // Joining keeps the landmark count only while no landmark has left with its epochs: once
  // some have, new nodes form landmarks again (joining alone went 150 -> 10 landmarks over
  // eight frames of a sliding window in tests/test_incremental.cpp).
  const bool join = inc_.join_landmarks && old_live >= landmarks_full_;
  if (join && !fresh.empty()) {
    ScopedStage st(fe.times, "landmarks.join");
    fresh = join_old_landmarks(w.K, d.prior, fresh, assigned);
  }
  if (!fresh.empty()) {
    ScopedStage st(fe.times, "landmarks.new_nodes");
    // Their share of the landmark budget, or what the leaving epochs freed if more. While
    // a window grows the count rises above the budget; the new-share drift limit bounds
    // that (at 0.5: about 1.5x) until the next full recompute resets it.
    const double share = static_cast<double>(fresh.size()) / static_cast<double>(n);
    int count = std::max(static_cast<int>(std::lround(share * landmarks_full_)), landmarks_full_ - old_live);
    count = std::max(count, 1);
    const std::vector<int> labels = cluster_new_nodes(w.K, fresh, count);
    const int base = next_cluster_;
    int top = 0;
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      assigned[fresh[i]] = base + labels[i];
      top = std::max(top, labels[i] + 1);
    }
    next_cluster_ += top;
  }
  // Compact ids 0..L-1 (clusters whose epochs left are gone).
  std::unordered_map<int, int> compact;
  std::vector<int> landmark_of(static_cast<std::size_t>(n));
  for (Index r = 0; r < n; ++r) {
    auto it = compact.find(assigned[r]);
    if (it == compact.end()) {
      it = compact.emplace(assigned[r], static_cast<int>(global_of.size())).first;
      global_of.push_back(assigned[r]);
    }
    landmark_of[r] = it->second;
  }
  const int L = static_cast<int>(global_of.size());
  // Warm start: old landmarks where they were; new ones from the old ones their nodes touch.
  RowMatrix init = RowMatrix::Constant(L, dims, kNaN);
  for (int c = 0; c < L; ++c) {
    auto it = landmark_coords_.find(global_of[c]);
    if (it != landmark_coords_.end() && it->second.size() == dims) init.row(c) = it->second;
  }
  EmbedHints hints = warm_layout_hints(w.K, landmark_of, &landmark_of, L, init, inc_);
  hints.t = t_full_;
  hints.power_floor = inc_.power_floor;
  hints.energy_reference = energy_full_;
  hints.energy_tolerance = inc_.max_energy_change;
  limit_move(d, inc_.max_move_incremental, hints);
  EmbedResult res = embed_kernel(w.K, opt_, hints);
  if (energy_full_ > 0 && std::isfinite(res.slow_mode_energy)) fe.energy_ratio = res.slow_mode_energy / energy_full_;
  if (res.rejected) {
    for (const auto& t : res.times) fe.times.push_back(t);
    global_of.clear();
    return false;
  }
  fe.result = std::move(res);
  fe.full = false;
  fe.warm = true;
  std::ostringstream os;
  os << "incremental: " << new_nodes << " new nodes (" << fe.change.added.size() << " epoch(s) in, "
     << fe.change.removed.size() << " out";
  if (join) os << "; " << new_nodes - fresh.size() << " joined old landmarks";
  os << "), " << L << " landmarks, t " << t_full_ << " kept from the last full";
  fe.reason = os.str() + anchor_text(fe.result, inc_.mds_anchor);
  ++frames_since_full_;
  return true;
}

std::vector<Index> IncrementalEmbedder::fit_rows(const Decision& d) const {
  const std::vector<Index>& shared = d.shared;
  if (inc_.align_sample <= 0 || static_cast<Index>(shared.size()) <= inc_.align_sample) return shared;
  std::vector<Index> sample;
  sample.reserve(static_cast<std::size_t>(inc_.align_sample));
  const double stride = static_cast<double>(shared.size()) / static_cast<double>(inc_.align_sample);
  for (Index i = 0; i < inc_.align_sample; ++i) sample.push_back(shared[static_cast<std::size_t>(static_cast<double>(i) * stride)]);
  return sample;
}

void IncrementalEmbedder::limit_move(const Decision& d, double max_move, EmbedHints& hints) const {
  if (max_move <= 0 || hints.mds_anchor <= 0 || static_cast<Index>(d.shared.size()) <= opt_.n_components) return;
  hints.max_move = max_move;
  hints.min_anchor_overlap = inc_.move_keep_neighbours;
  hints.move_of = [&d, sample = fit_rows(d)](const RowMatrix& embedding) { return shared_move(embedding, d.prev, sample); };
}

void IncrementalEmbedder::align(const Decision& d, FrameEmbedding& fe) const {
  if (!inc_.align) return;
  ScopedStage st(fe.times, "align");
  const Index dims = opt_.n_components;
  const RowMatrix& prev = d.prev;
  const std::vector<Index>& shared = d.shared;
  if (static_cast<Index>(shared.size()) <= dims) {
    // Nothing to align to: centre the frame and scale it to RMS radius 1.
    const Eigen::RowVectorXd mean = fe.result.embedding.colwise().mean();
    const double radius = std::sqrt((fe.result.embedding.rowwise() - mean).rowwise().squaredNorm().mean());
    Alignment a;
    a.rotation = Matrix::Identity(dims, dims);
    a.scale = radius > 0 && std::isfinite(radius) ? 1.0 / radius : 1.0;
    a.shift = -a.scale * mean;
    a.apply(fe.result.embedding);
    if (fe.result.landmark_embedding.rows() > 0) a.apply(fe.result.landmark_embedding);
    return;
  }
  fe.alignment = fit_shared(fe.result.embedding, prev, fit_rows(d));
  fe.alignment.apply(fe.result.embedding);
  if (fe.result.landmark_embedding.rows() > 0) fe.alignment.apply(fe.result.landmark_embedding);
  // Report the displacement over every shared node, not only the fitted sample.
  double sq = 0;
  for (Index r : shared) sq += (fe.result.embedding.row(r) - prev.row(r)).squaredNorm();
  fe.alignment.shared = static_cast<Index>(shared.size());
  fe.alignment.rms_after = std::sqrt(sq / static_cast<double>(shared.size()));
  fe.aligned = true;
}

void IncrementalEmbedder::remember(const SnapshotStore::View& view, const Decision& d, const FrameEmbedding& fe,
                                   const std::vector<int>& global_of) {
  const WindowKernel& w = fe.window;
  const Index n = w.nodes.size(), dims = opt_.n_components;
  const Index per_epoch = w.nodes.shape.steps * w.nodes.shape.units;
  std::unordered_map<const Snapshot*, EpochState> next;
  for (std::size_t p = 0; p < view.snapshots.size(); ++p) {
    EpochState es;
    es.snapshot = view.snapshots[p];
    es.cluster.assign(static_cast<std::size_t>(per_epoch), -1);
    es.coords = RowMatrix::Constant(per_epoch, dims, kNaN);
    es.since_full = !fe.full && (d.state_at[p] == nullptr || d.state_at[p]->since_full);
    if (basis_.rows() == n) es.basis = RowMatrix::Constant(per_epoch, basis_.cols(), kNaN);
    else if (d.state_at[p]) es.basis = d.state_at[p]->basis;  // no clustering of the whole window ran
    next.emplace(view.snapshots[p].get(), std::move(es));
  }
  for (Index r = 0; r < n; ++r) {
    const Index grid = w.nodes.full_id[r];
    EpochState& es = next.at(view.snapshots[static_cast<std::size_t>(grid / per_epoch)].get());
    if (fe.result.landmarks_used)
      es.cluster[static_cast<std::size_t>(grid % per_epoch)] = global_of[fe.result.landmark_of[r]];
    es.coords.row(grid % per_epoch) = fe.result.embedding.row(r);
    if (basis_.rows() == n) es.basis.row(grid % per_epoch) = basis_.row(r);
  }
  state_ = std::move(next);
  basis_ = RowMatrix();
  landmark_coords_.clear();
  for (Index c = 0; c < fe.result.landmark_embedding.rows(); ++c)
    landmark_coords_[global_of[c]] = fe.result.landmark_embedding.row(c);
}

FrameEmbedding IncrementalEmbedder::update(const SnapshotStore::View& view, bool force_full) {
  FrameEmbedding fe;
  {
    ScopedStage st(fe.times, "window_update");
    fe.change = graph_.update(view);
  }
  {
    ScopedStage st(fe.times, "kernel");
    fe.window = graph_.build();
  }
  const WindowKernel& w = fe.window;
  Decision d = decide(view, w, force_full, fe);
  if (skip_incremental_ > 0 && d.full()) --skip_incremental_;
  std::vector<int> global_of;  // compact landmark index -> global landmark id
  if (!d.full()) {
    if (embed_incremental(w, d, fe, global_of)) {
      rejections_ = 0;
    } else {
      // A rejected attempt costs its spectrum: after k rejections in a row, the next
      // 2^k - 1 frames (at most 7) go straight to a full recompute.
      ++rejections_;
      skip_incremental_ = (1 << std::min(rejections_, 3)) - 1;
      d.refresh = RefreshReason::drift_energy;
      d.reason = refresh_text(d.refresh, w.nodes.size(), fe);
    }
  }
  if (d.full()) {
    const double energy_ratio = fe.energy_ratio;
    embed_full(w, d, fe, global_of);
    fe.energy_ratio = energy_ratio;
  }
  fe.result.nodes = w.nodes;
  fe.result.interslice_eps = w.info.interslice_eps;
  fe.result.constant_nodes = w.constant_nodes;
  fe.result.dropped_nodes = w.dropped_nodes;
  fe.result.nonfinite_values = w.nonfinite_values;
  align(d, fe);
  remember(view, d, fe, global_of);
  ++frames_;
  for (const auto& t : fe.result.times) fe.times.push_back(t);
  return fe;
}

}  // namespace mmphate
