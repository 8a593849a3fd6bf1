#include "mmphate/incremental_graph.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "mmphate/parallel.hpp"
#include "mmphate/sparse_build.hpp"

namespace mmphate {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A slice-point of the same unit: which epoch (by ordinal, stable while it stays in the
// window) and which step, packed in one integer.
struct Neighbour {
  std::int64_t key;
  double dist;
};
std::int64_t pack(std::int32_t ordinal, Index step) { return (static_cast<std::int64_t>(ordinal) << 32) | step; }
std::int32_t ordinal_of(std::int64_t key) { return static_cast<std::int32_t>(key >> 32); }
Index step_of(std::int64_t key) { return static_cast<Index>(key & 0xffffffffLL); }

bool closer(const Neighbour& a, const Neighbour& b) { return a.dist < b.dist || (a.dist == b.dist && a.key < b.key); }

}  // namespace

struct WindowGraph::EpochGraph {
  SnapshotPtr snap;
  std::int32_t ordinal = 0;
  PreparedTrace prep;               // one epoch: shape.epochs = 1, rows = present nodes
  std::vector<Triplet> intra;       // local rows
  std::vector<std::vector<Neighbour>> lists;  // per local row, ascending
  std::vector<double> horizon;      // per local row: every point closer than this is listed
};

WindowGraph::WindowGraph(Options opt, int margin) : opt_(std::move(opt)), margin_(margin) {
  opt_.validate();
  if (margin_ < 0) throw Error("WindowGraph: margin must be >= 0, got " + std::to_string(margin_));
}
WindowGraph::~WindowGraph() = default;

int WindowGraph::edges_needed() const {
  return std::max(opt_.interslice_knn, opt_.interslice_edges > 0 ? opt_.interslice_edges : 0);
}

std::vector<std::int64_t> WindowGraph::epochs() const {
  std::vector<std::int64_t> out;
  for (const auto& e : window_) out.push_back(e->snap->epoch);
  return out;
}

std::size_t WindowGraph::list_bytes() const {
  std::size_t b = 0;
  for (const auto& e : window_)
    for (const auto& l : e->lists) b += l.capacity() * sizeof(Neighbour);
  return b;
}

void WindowGraph::reset_layout(const Snapshot& s) {
  steps_ = s.steps;
  units_ = s.units;
  probes_ = s.probes;
  window_.clear();
}

std::unique_ptr<WindowGraph::EpochGraph> WindowGraph::prepare_epoch(const SnapshotPtr& snap, std::int32_t ordinal) const {
  auto eg = std::make_unique<EpochGraph>();
  eg->snap = snap;
  eg->ordinal = ordinal;
  const Snapshot& s = *snap;
  const TraceShape shape{1, s.steps, s.units, s.probes};
  RowMatrix raw(shape.nodes(), s.probes);
  std::vector<std::uint8_t> valid(static_cast<std::size_t>(shape.nodes()), 1);
  for (Index t = 0; t < s.steps; ++t) {
    const bool ok = s.step_valid.empty() || s.step_valid[t];
    for (Index u = 0; u < s.units; ++u) {
      const Index r = t * s.units + u;
      const float* src = s.values.data() + r * s.probes;
      for (Index p = 0; p < s.probes; ++p) raw(r, p) = src[p];
      valid[r] = ok ? 1 : 0;
    }
  }
  try {
    eg->prep = prepare_trace(raw, shape, opt_, &valid);
  } catch (const Error& e) {
    throw Error("epoch " + std::to_string(s.epoch) + ": " + e.what());
  }
  eg->intra = intraslice_entries(eg->prep.features, eg->prep.index, opt_);
  eg->lists.resize(static_cast<std::size_t>(eg->prep.index.size()));
  eg->horizon.assign(eg->lists.size(), kInf);
  return eg;
}

WindowChange WindowGraph::update(const SnapshotStore::View& view) {
  WindowChange change;
  if (view.snapshots.empty()) {
    for (const auto& e : window_) change.removed.push_back(e->snap->epoch);
    window_.clear();
    return change;
  }
  const Snapshot& first = *view.snapshots.front();
  if (window_.empty() || first.steps != steps_ || first.units != units_ || first.probes != probes_) {
    change.reset = !window_.empty();
    for (const auto& e : window_) change.removed.push_back(e->snap->epoch);
    reset_layout(first);
  }
  if (opt_.intraslice_knn >= units_)
    throw Error("intraslice_knn = " + std::to_string(opt_.intraslice_knn) + " needs more than " +
                std::to_string(opt_.intraslice_knn) + " units per slice, got " + std::to_string(units_));

  std::unordered_map<const Snapshot*, std::unique_ptr<EpochGraph>> old;
  for (auto& e : window_) old.emplace(e->snap.get(), std::move(e));
  std::vector<std::unique_ptr<EpochGraph>> next;
  std::vector<char> is_new;
  for (const auto& snap : view.snapshots) {
    if (snap->steps != steps_ || snap->units != units_ || snap->probes != probes_)
      throw Error("snapshot of epoch " + std::to_string(snap->epoch) + " has a different layout than the window");
    auto it = old.find(snap.get());
    if (it != old.end()) {
      next.push_back(std::move(it->second));
      old.erase(it);
      is_new.push_back(0);
    } else {
      next.push_back(prepare_epoch(snap, next_ordinal_++));
      is_new.push_back(1);
      change.added.push_back(snap->epoch);
    }
  }
  for (auto& kv : old) change.removed.push_back(kv.second->snap->epoch);
  std::sort(change.removed.begin(), change.removed.end());
  window_ = std::move(next);
  if (opt_.multislice_mode == MultisliceMode::scalable && (!change.added.empty() || !change.removed.empty()))
    update_lists(is_new, change);
  return change;
}

void WindowGraph::update_lists(const std::vector<char>& is_new, WindowChange& change) {
  const int need = edges_needed();
  const std::size_t store = static_cast<std::size_t>(need + margin_);
  std::unordered_map<std::int32_t, std::size_t> position;
  for (std::size_t p = 0; p < window_.size(); ++p) position.emplace(window_[p]->ordinal, p);

  std::vector<Index> refilled(static_cast<std::size_t>(units_), 0), inserted(static_cast<std::size_t>(units_), 0);
  parallel_for(units_, opt_.threads, [&](Index u) {
    // The unit's slice-points over the window, in window order.
    struct Point {
      EpochGraph* eg;
      Index row;
      std::int64_t key;
      bool fresh;  // new epoch, or a list to recompute
    };
    std::vector<Point> pts;
    for (std::size_t p = 0; p < window_.size(); ++p) {
      EpochGraph* eg = window_[p].get();
      for (Index t = 0; t < steps_; ++t) {
        const Index r = eg->prep.index.row(t, u);
        if (r >= 0) pts.push_back({eg, r, pack(eg->ordinal, t), is_new[p] != 0});
      }
    }
    const Index m = static_cast<Index>(pts.size());
    RowMatrix Y(m, probes_);
    for (Index i = 0; i < m; ++i) Y.row(i) = pts[i].eg->prep.features.row(pts[i].row);

    // Old points: forget neighbours that left; a list too short to give `need` edges while
    // points beyond its horizon exist is recomputed below.
    for (auto& pt : pts) {
      if (pt.fresh) continue;
      auto& list = pt.eg->lists[pt.row];
      list.erase(std::remove_if(list.begin(), list.end(),
                                [&](const Neighbour& nb) { return position.count(ordinal_of(nb.key)) == 0; }),
                 list.end());
      if (static_cast<int>(list.size()) < need && pt.eg->horizon[pt.row] < kInf) {
        pt.fresh = true;
        ++refilled[u];
      }
    }

    std::vector<std::vector<Neighbour>> candidates(static_cast<std::size_t>(m));
    Eigen::VectorXd d2(m);
    std::vector<Neighbour> row;
    for (Index a = 0; a < m; ++a) {
      if (!pts[a].fresh) continue;
      d2 = (Y.rowwise() - Y.row(a)).rowwise().squaredNorm();
      row.clear();
      for (Index b = 0; b < m; ++b)
        if (b != a) row.push_back({pts[b].key, std::sqrt(d2(b))});
      auto& list = pts[a].eg->lists[pts[a].row];
      double& horizon = pts[a].eg->horizon[pts[a].row];
      if (row.size() > store) {
        std::nth_element(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(store), row.end(), closer);
        horizon = row[store].dist;
        row.resize(store);
      } else {
        horizon = kInf;
      }
      std::sort(row.begin(), row.end(), closer);
      list = row;
      // A point of a new epoch is offered to the old points it is closer to than their
      // horizon (recomputed old points were already in every list they belong to).
      const bool entered = is_new[position.at(pts[a].eg->ordinal)] != 0;
      if (!entered) continue;
      for (Index b = 0; b < m; ++b) {
        if (b == a || pts[b].fresh) continue;
        const double d = std::sqrt(d2(b));
        if (d < pts[b].eg->horizon[pts[b].row]) candidates[b].push_back({pts[a].key, d});
      }
    }
    for (Index b = 0; b < m; ++b) {
      if (candidates[b].empty()) continue;
      auto& list = pts[b].eg->lists[pts[b].row];
      inserted[u] += static_cast<Index>(candidates[b].size());
      list.insert(list.end(), candidates[b].begin(), candidates[b].end());
      std::sort(list.begin(), list.end(), closer);
      if (list.size() > store) {
        pts[b].eg->horizon[pts[b].row] = list[store].dist;
        list.resize(store);
      }
    }
  });
  for (Index u = 0; u < units_; ++u) {
    change.refilled_lists += refilled[u];
    change.inserted_entries += inserted[u];
  }
}

WindowKernel WindowGraph::build() const {
  if (window_.empty()) throw Error("the window holds no snapshot yet");
  WindowKernel out;
  const TraceShape shape{static_cast<Index>(window_.size()), steps_, units_, probes_};
  const Index per_epoch = steps_ * units_;
  std::vector<Index> offset(window_.size() + 1, 0);
  for (std::size_t p = 0; p < window_.size(); ++p) {
    offset[p + 1] = offset[p] + window_[p]->prep.index.size();
    out.epochs.push_back(window_[p]->snap->epoch);
    out.nonfinite_values += window_[p]->prep.nonfinite_values;
    out.dropped_nodes += window_[p]->prep.dropped_nodes;
    out.padded_nodes += window_[p]->prep.padded_nodes;
    out.constant_nodes += window_[p]->prep.constant_nodes;
  }
  const Index n = offset.back();
  out.nodes.shape = shape;
  out.nodes.row_of.assign(static_cast<std::size_t>(shape.nodes()), -1);
  out.nodes.full_id.resize(static_cast<std::size_t>(n));
  out.features.resize(n, probes_);
  for (std::size_t p = 0; p < window_.size(); ++p) {
    const auto& idx = window_[p]->prep.index;
    for (Index r = 0; r < idx.size(); ++r) {
      const Index grid = static_cast<Index>(p) * per_epoch + idx.full_id[r];
      out.nodes.full_id[offset[p] + r] = grid;
      out.nodes.row_of[grid] = offset[p] + r;
    }
    out.features.middleRows(offset[p], idx.size()) = window_[p]->prep.features;
  }

  if (opt_.multislice_mode == MultisliceMode::faithful) {
    out.K = multislice_kernel(out.features, out.nodes, opt_, &out.info);
    return out;
  }

  std::unordered_map<std::int32_t, std::size_t> position;
  for (std::size_t p = 0; p < window_.size(); ++p) position.emplace(window_[p]->ordinal, p);
  auto row_of_key = [&](std::int64_t key, Index u) {
    const std::size_t p = position.at(ordinal_of(key));
    return offset[p] + window_[p]->prep.index.row(step_of(key), u);
  };

  // Bandwidth: mean over units of the median kappa-th neighbour distance (multislice.hpp).
  const int kappa = opt_.interslice_knn;
  std::vector<double> unit_median(static_cast<std::size_t>(units_), -1.0);
  bool clamped = false;
  for (Index u = 0; u < units_; ++u) {
    std::vector<double> kth;
    for (const auto& eg : window_)
      for (Index t = 0; t < steps_; ++t) {
        const Index r = eg->prep.index.row(t, u);
        if (r < 0 || eg->lists[r].empty()) continue;
        const auto& list = eg->lists[r];
        if (static_cast<int>(list.size()) < kappa) clamped = true;
        kth.push_back(list[std::min<std::size_t>(static_cast<std::size_t>(kappa), list.size()) - 1].dist);
      }
    if (!kth.empty()) unit_median[u] = median_of(std::move(kth));
  }
  double total = 0;
  Index counted = 0;
  for (double v : unit_median)
    if (v >= 0) { total += v; ++counted; }
  double eps = counted > 0 ? total / static_cast<double>(counted) : 1.0;
  if (clamped) logger()->debug("interslice_knn = {} exceeds the slice-points of some unit", kappa);
  if (!(eps > 0)) eps = 1.0;
  out.info.interslice_eps = eps;
  const double inv_eps2 = 1.0 / (eps * eps);
  const int keep = opt_.interslice_edges > 0 ? opt_.interslice_edges : opt_.interslice_knn;

  std::vector<Triplet> all;
  std::size_t intra_total = 0;
  for (const auto& eg : window_) intra_total += eg->intra.size();
  all.reserve(intra_total + static_cast<std::size_t>(n) * (2 * static_cast<std::size_t>(keep) + 4));
  for (std::size_t p = 0; p < window_.size(); ++p)
    for (const auto& t : window_[p]->intra)
      all.emplace_back(static_cast<int>(offset[p] + t.row()), static_cast<int>(offset[p] + t.col()), t.value());
  out.info.intraslice_nnz = static_cast<Index>(all.size());
  for (std::size_t p = 0; p < window_.size(); ++p) {
    const auto& eg = *window_[p];
    for (Index r = 0; r < eg.prep.index.size(); ++r) {
      const Index u = eg.prep.index.unit(r);
      const int ra = static_cast<int>(offset[p] + r);
      const auto& list = eg.lists[r];
      const std::size_t k = std::min<std::size_t>(static_cast<std::size_t>(keep), list.size());
      for (std::size_t j = 0; j < k; ++j) {
        const double w = std::exp(-list[j].dist * list[j].dist * inv_eps2);
        if (!(w >= opt_.thresh && w > 0)) continue;
        const int rb = static_cast<int>(row_of_key(list[j].key, u));
        all.emplace_back(ra, rb, w);
        all.emplace_back(rb, ra, w);
      }
    }
  }
  out.info.interslice_nnz = static_cast<Index>(all.size()) - out.info.intraslice_nnz;
  out.info.multiway_nnz = append_multiway_edges(out.features, out.nodes, opt_, eps, all);
  out.K = from_triplets_max(n, all, opt_.threads);
  return out;
}

}  // namespace mmphate
