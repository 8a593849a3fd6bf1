#include "incremental/window_graph.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "engine/graph/sparse_build.hpp"
#include "util/parallel.hpp"

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

// Rows of a fresh-point block ranked per GEMM at once (keeps the block in cache).
constexpr Index kFreshBlock = 64;

// Bound on |GEMM-expanded squared distance - directly summed one| for points with squared
// norms summing to `norms`: both are dot products over `dims` terms (error <= dims * eps *
// norms each), with a factor 8 to spare. Rankings by the expansion are only trusted beyond it.
double expansion_slack(Index dims, double norms) { return 8.0 * static_cast<double>(dims + 4) * DBL_EPSILON * norms; }

}  // namespace

// Window position of each epoch ordinal in the window (ordinals only grow, so a vector over
// the window's ordinal range replaces a hash map in the per-entry lookups).
struct WindowGraph::OrdinalMap {
  std::int32_t base = 0;
  std::vector<int> pos;
  int at(std::int32_t ordinal) const {
    const std::int64_t i = static_cast<std::int64_t>(ordinal) - base;
    return i >= 0 && i < static_cast<std::int64_t>(pos.size()) ? pos[static_cast<std::size_t>(i)] : -1;
  }
};

struct WindowGraph::EpochGraph {
  SnapshotPtr snap;
  std::int32_t ordinal = 0;
  PreparedTrace prep;  // one epoch: shape.epochs = 1, rows = present nodes
  // Intraslice block (diagonal included) as CSR over local rows, columns ascending.
  std::vector<Index> intra_start;
  std::vector<int> intra_col;
  std::vector<double> intra_val;
  std::vector<std::vector<Neighbour>> lists;  // per local row, ascending (closer())
  std::vector<double> horizon;  // per local row: every point closer than this is listed
};

// One unit's interslice (kNN) and multiway entries. Rows and columns are the unit's local
// numbering (window position, then step), which is the order of their graph rows.
struct WindowGraph::UnitRows {
  std::vector<Index> row;    // local -> graph row, ascending
  std::vector<Index> start;  // local -> first entry, m + 1
  std::vector<int> col;      // local columns, ascending within a row
  std::vector<double> val;
  Index interslice = 0, multiway = 0;  // entries before duplicates merge (MultisliceInfo)
};

namespace {

// Intraslice entries as CSR rows with ascending columns (each position appears once: the
// blocks are symmetrised densely).
void intra_csr(const std::vector<Triplet>& entries, Index rows, std::vector<Index>& start, std::vector<int>& col,
               std::vector<double>& val) {
  start.assign(static_cast<std::size_t>(rows) + 1, 0);
  for (const auto& e : entries) ++start[e.row() + 1];
  for (Index r = 0; r < rows; ++r) start[r + 1] += start[r];
  std::vector<std::pair<int, double>> slot(entries.size());
  std::vector<Index> fill(start.begin(), start.end() - 1);
  for (const auto& e : entries) slot[fill[e.row()]++] = {e.col(), e.value()};
  col.resize(entries.size());
  val.resize(entries.size());
  for (Index r = 0; r < rows; ++r) {
    std::sort(slot.begin() + start[r], slot.begin() + start[r + 1]);
    for (Index e = start[r]; e < start[r + 1]; ++e) {
      col[e] = slot[e].first;
      val[e] = slot[e].second;
    }
  }
}

}  // namespace

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
  intra_csr(intraslice_entries(eg->prep.features, eg->prep.index, opt_), eg->prep.index.size(), eg->intra_start,
            eg->intra_col, eg->intra_val);
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
  // Strong guarantee: everything that can fail on bad input (layout, NaN policy, a rejected
  // epoch) runs before the window is touched, so a throw leaves the previous window intact
  // and the next update with a valid view goes on from it.
  const Snapshot& first = *view.snapshots.front();
  const bool relayout = window_.empty() || first.steps != steps_ || first.units != units_ || first.probes != probes_;
  if (opt_.intraslice_knn >= first.units)
    throw Error("intraslice_knn = " + std::to_string(opt_.intraslice_knn) + " needs more than " +
                std::to_string(opt_.intraslice_knn) + " units per slice, got " + std::to_string(first.units));
  for (const auto& snap : view.snapshots)
    if (snap->steps != first.steps || snap->units != first.units || snap->probes != first.probes)
      throw Error("snapshot of epoch " + std::to_string(snap->epoch) + " has a different layout than the window");

  // Kept entries by snapshot identity (each used once), fresh entries prepared aside.
  std::unordered_map<const Snapshot*, std::size_t> old;
  if (!relayout)
    for (std::size_t p = 0; p < window_.size(); ++p) old.emplace(window_[p]->snap.get(), p);
  std::vector<std::unique_ptr<EpochGraph>> fresh(view.snapshots.size());
  std::vector<std::size_t> kept_at(view.snapshots.size(), 0);
  std::vector<char> is_new(view.snapshots.size(), 0);
  std::vector<char> kept(window_.size(), 0);
  std::int32_t ordinal = next_ordinal_;
  for (std::size_t i = 0; i < view.snapshots.size(); ++i) {
    const SnapshotPtr& snap = view.snapshots[i];
    auto it = old.find(snap.get());
    if (it != old.end()) {
      kept_at[i] = it->second;
      kept[it->second] = 1;
      old.erase(it);
    } else {
      fresh[i] = prepare_epoch(snap, ordinal++);
      is_new[i] = 1;
    }
  }
  std::vector<std::unique_ptr<EpochGraph>> next;
  next.reserve(view.snapshots.size());
  change.added.reserve(view.snapshots.size());
  change.removed.reserve(window_.size());

  // Commit (nothing below throws on bad input).
  change.reset = relayout && !window_.empty();
  for (std::size_t p = 0; p < window_.size(); ++p)
    if (!kept[p]) change.removed.push_back(window_[p]->snap->epoch);
  std::sort(change.removed.begin(), change.removed.end());
  for (std::size_t i = 0; i < view.snapshots.size(); ++i) {
    if (is_new[i]) {
      change.added.push_back(view.snapshots[i]->epoch);
      next.push_back(std::move(fresh[i]));
    } else {
      next.push_back(std::move(window_[kept_at[i]]));
    }
  }
  if (relayout) reset_layout(first);
  window_ = std::move(next);
  next_ordinal_ = ordinal;
  if (opt_.multislice_mode == MultisliceMode::scalable && (!change.added.empty() || !change.removed.empty())) {
    try {
      update_lists(is_new, change);
    } catch (...) {
      // Only an allocation failure gets here, with lists half updated: drop the window so
      // the next update rebuilds it instead of building from inconsistent lists.
      window_.clear();
      throw;
    }
  }
  return change;
}

WindowGraph::OrdinalMap WindowGraph::ordinal_map() const {
  OrdinalMap map;
  if (window_.empty()) return map;
  std::int32_t lo = window_.front()->ordinal, hi = lo;
  for (const auto& e : window_) {
    lo = std::min(lo, e->ordinal);
    hi = std::max(hi, e->ordinal);
  }
  map.base = lo;
  map.pos.assign(static_cast<std::size_t>(hi - lo) + 1, -1);
  for (std::size_t p = 0; p < window_.size(); ++p) map.pos[static_cast<std::size_t>(window_[p]->ordinal - lo)] = static_cast<int>(p);
  return map;
}

void WindowGraph::update_lists(const std::vector<char>& is_new, WindowChange& change) {
  const OrdinalMap where = ordinal_map();
  std::vector<Index> refilled(static_cast<std::size_t>(units_), 0), inserted(static_cast<std::size_t>(units_), 0);
  parallel_for(units_, opt_.threads, [&](Index u) { update_unit_lists(u, is_new, where, refilled[u], inserted[u]); });
  for (Index u = 0; u < units_; ++u) {
    change.refilled_lists += refilled[u];
    change.inserted_entries += inserted[u];
  }
}

void WindowGraph::update_unit_lists(Index u, const std::vector<char>& is_new, const OrdinalMap& where,
                                    Index& refilled, Index& inserted) {
  const int need = edges_needed();
  const std::size_t store = static_cast<std::size_t>(need + margin_);
  // The unit's slice-points over the window, in window order.
  struct Point {
    EpochGraph* eg;
    Index row;
    std::int64_t key;
    bool entered;  // of a new epoch
    bool fresh;    // new epoch, or a list to recompute
  };
  std::vector<Point> pts;
  for (std::size_t p = 0; p < window_.size(); ++p) {
    EpochGraph* eg = window_[p].get();
    for (Index t = 0; t < steps_; ++t) {
      const Index r = eg->prep.index.row(t, u);
      if (r >= 0) pts.push_back({eg, r, pack(eg->ordinal, t), is_new[p] != 0, is_new[p] != 0});
    }
  }
  const Index m = static_cast<Index>(pts.size());
  RowMatrix Y(m, probes_);
  for (Index i = 0; i < m; ++i) Y.row(i) = pts[i].eg->prep.features.row(pts[i].row);
  const Vector sq = Y.rowwise().squaredNorm();
  const double sq_max = m > 0 ? sq.maxCoeff() : 0.0;
  // The distance the from-scratch search reports (knn.hpp), bit for bit.
  auto exact = [&](Index a, Index b) { return std::sqrt((Y.row(a) - Y.row(b)).squaredNorm()); };

  // Old points: forget neighbours that left; a list too short to give `need` edges while
  // points beyond its horizon exist is recomputed below.
  for (auto& pt : pts) {
    if (pt.fresh) continue;
    auto& list = pt.eg->lists[pt.row];
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const Neighbour& nb) { return where.at(ordinal_of(nb.key)) < 0; }),
               list.end());
    if (static_cast<int>(list.size()) < need && pt.eg->horizon[pt.row] < kInf) {
      pt.fresh = true;
      ++refilled;
    }
  }
  std::vector<Index> fresh;
  for (Index i = 0; i < m; ++i)
    if (pts[i].fresh) fresh.push_back(i);

  // Fresh points: squared distances to every point by GEMM expansion, block by block.
  std::vector<std::vector<Neighbour>> offered(static_cast<std::size_t>(m));
  RowMatrix block, G;
  Vector approx(m);
  std::vector<double> order;
  for (std::size_t f0 = 0; f0 < fresh.size(); f0 += kFreshBlock) {
    const Index rows = std::min<Index>(kFreshBlock, static_cast<Index>(fresh.size() - f0));
    block.resize(rows, probes_);
    for (Index i = 0; i < rows; ++i) block.row(i) = Y.row(fresh[f0 + i]);
    G.noalias() = block * Y.transpose();
    for (Index i = 0; i < rows; ++i) {
      const Index a = fresh[f0 + i];
      approx = (sq.array() + sq(a) - 2.0 * G.row(i).transpose().array()).matrix();
      const double slack = expansion_slack(probes_, sq(a) + sq_max);
      // The exact top-`store` (ties by key) and the first distance cut off: the expansion
      // ranks, and every point within `slack` of its (store+1)-th value is re-measured.
      auto& list = pts[a].eg->lists[pts[a].row];
      double& horizon = pts[a].eg->horizon[pts[a].row];
      double cut = kInf;
      if (static_cast<std::size_t>(m - 1) > store) {
        order.clear();
        for (Index b = 0; b < m; ++b)
          if (b != a) order.push_back(approx(b));
        std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(store), order.end());
        cut = order[store] + slack;
      }
      list.clear();
      for (Index b = 0; b < m; ++b)
        if (b != a && approx(b) <= cut) list.push_back({pts[b].key, exact(a, b)});
      std::sort(list.begin(), list.end(), closer);
      if (list.size() > store) {
        horizon = list[store].dist;
        list.resize(store);
      } else {
        horizon = kInf;
      }
      // A point of a new epoch is offered to the old points it is closer to than their
      // horizon (recomputed old points already searched every point).
      if (!pts[a].entered) continue;
      for (Index b = 0; b < m; ++b) {
        if (b == a || pts[b].fresh) continue;
        const double h = pts[b].eg->horizon[pts[b].row];
        if (approx(b) - slack >= h * h) continue;
        const double d = exact(a, b);
        if (d < h) offered[b].push_back({pts[a].key, d});
      }
    }
  }
  std::vector<Neighbour> merged;
  for (Index b = 0; b < m; ++b) {
    if (offered[b].empty()) continue;
    auto& list = pts[b].eg->lists[pts[b].row];
    inserted += static_cast<Index>(offered[b].size());
    std::sort(offered[b].begin(), offered[b].end(), closer);
    merged.resize(list.size() + offered[b].size());
    std::merge(list.begin(), list.end(), offered[b].begin(), offered[b].end(), merged.begin(), closer);
    if (merged.size() > store) {
      pts[b].eg->horizon[pts[b].row] = merged[store].dist;
      merged.resize(store);
    }
    list.assign(merged.begin(), merged.end());
  }
}

double WindowGraph::bandwidth() const {
  // Mean over units of the median kappa-th neighbour distance (multislice.hpp).
  const int kappa = opt_.interslice_knn;
  std::vector<double> unit_median(static_cast<std::size_t>(units_), -1.0);
  std::vector<char> clamped(static_cast<std::size_t>(units_), 0);
  parallel_for(units_, opt_.threads, [&](Index u) {
    std::vector<double> kth;
    for (const auto& eg : window_)
      for (Index t = 0; t < steps_; ++t) {
        const Index r = eg->prep.index.row(t, u);
        if (r < 0 || eg->lists[r].empty()) continue;
        const auto& list = eg->lists[r];
        if (static_cast<int>(list.size()) < kappa) clamped[u] = 1;
        kth.push_back(list[std::min<std::size_t>(static_cast<std::size_t>(kappa), list.size()) - 1].dist);
      }
    if (!kth.empty()) unit_median[u] = median_of(std::move(kth));
  });
  return mean_unit_bandwidth(unit_median, std::count(clamped.begin(), clamped.end(), 1) > 0, kappa, true);
}

void WindowGraph::unit_rows(Index u, const OrdinalMap& where, const std::vector<Index>& offset, double inv_eps2,
                            std::vector<int>& local_of_row, UnitRows& out) const {
  out.row.clear();
  out.col.clear();
  out.val.clear();
  out.interslice = out.multiway = 0;
  const Index positions = static_cast<Index>(window_.size());
  std::vector<int> local(static_cast<std::size_t>(positions * steps_), -1);  // p * steps + t -> local
  struct Point {
    const EpochGraph* eg;
    Index p, t, row;
  };
  std::vector<Point> pts;
  for (Index p = 0; p < positions; ++p)
    for (Index t = 0; t < steps_; ++t) {
      const Index r = window_[p]->prep.index.row(t, u);
      if (r < 0) continue;
      local[p * steps_ + t] = static_cast<int>(pts.size());
      pts.push_back({window_[p].get(), p, t, r});
      out.row.push_back(offset[p] + r);
      local_of_row[offset[p] + r] = static_cast<int>(pts.size()) - 1;
    }
  const Index m = static_cast<Index>(pts.size());

  // Directed entries a -> b: the first `keep` neighbours of a's list above the threshold
  // (the weight falls with the distance, so the first one below ends the run), and a's
  // multiway edges (same unit at the adjacent steps of its epoch and the same step of the
  // adjacent epochs; both ends emit them).
  const int keep = opt_.interslice_edges > 0 ? opt_.interslice_edges : opt_.interslice_knn;
  LocalRows own;
  own.start.assign(static_cast<std::size_t>(m) + 1, 0);
  own.col.reserve(static_cast<std::size_t>(m) * (static_cast<std::size_t>(keep) + 4));
  own.val.reserve(own.col.capacity());
  auto emit = [&](int b, double w) {
    own.col.push_back(b);
    own.val.push_back(w);
  };
  for (Index a = 0; a < m; ++a) {
    const Point& pa = pts[a];
    const auto& list = pa.eg->lists[pa.row];
    const std::size_t k = std::min<std::size_t>(static_cast<std::size_t>(keep), list.size());
    for (std::size_t j = 0; j < k; ++j) {
      const double w = std::exp(-list[j].dist * list[j].dist * inv_eps2);
      if (!(w >= opt_.thresh && w > 0)) break;
      emit(local[where.at(ordinal_of(list[j].key)) * steps_ + step_of(list[j].key)], w);
    }
    out.interslice += 2 * (static_cast<Index>(own.col.size()) - own.start[a]);
    auto link = [&](Index p, Index t, double weight) {
      if (p < 0 || p >= positions || t < 0 || t >= steps_ || weight <= 0) return;
      const int b = local[p * steps_ + t];
      if (b < 0) return;
      const double d2 =
          (pa.eg->prep.features.row(pa.row) - pts[b].eg->prep.features.row(pts[b].row)).squaredNorm();
      emit(b, weight * std::max(std::exp(-d2 * inv_eps2), opt_.thresh));
      ++out.multiway;
    };
    link(pa.p - 1, pa.t, opt_.epoch_edge_weight);
    link(pa.p, pa.t - 1, opt_.time_edge_weight);
    link(pa.p, pa.t + 1, opt_.time_edge_weight);
    link(pa.p + 1, pa.t, opt_.epoch_edge_weight);
    own.start[a + 1] = static_cast<Index>(own.col.size());
  }

  // Row a = {b : a -> b} U {b : b -> a}.
  LocalRows sym = symmetric_union(own);
  out.start = std::move(sym.start);
  out.col = std::move(sym.col);
  out.val = std::move(sym.val);
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

  const double eps = bandwidth();
  out.info.interslice_eps = eps;
  const OrdinalMap where = ordinal_map();
  std::vector<int> local_of_row(static_cast<std::size_t>(n), -1);
  std::vector<UnitRows>& units = unit_rows_;
  units.resize(static_cast<std::size_t>(units_));
  parallel_for(units_, opt_.threads,
               [&](Index u) { unit_rows(u, where, offset, 1.0 / (eps * eps), local_of_row, units[u]); });

  // CSR: each graph row is its unit entries with smaller rows, then its slice's intraslice
  // row (the unit's other slice-points lie in other slices, so outside that block), then the
  // unit entries with larger rows.
  SparseMatrix& K = out.K;
  K.resize(n, n);
  std::vector<Index> row_start(static_cast<std::size_t>(n) + 1, 0);
  for (std::size_t p = 0; p < window_.size(); ++p) {
    const auto& eg = *window_[p];
    for (Index r = 0; r < eg.prep.index.size(); ++r) {
      const Index g = offset[p] + r;
      const UnitRows& ur = units[eg.prep.index.unit(r)];
      const Index a = local_of_row[g];
      row_start[g + 1] = row_start[g] + (ur.start[a + 1] - ur.start[a]) + (eg.intra_start[r + 1] - eg.intra_start[r]);
    }
    out.info.intraslice_nnz += static_cast<Index>(eg.intra_col.size());
  }
  for (const auto& ur : units) {
    out.info.interslice_nnz += ur.interslice;
    out.info.multiway_nnz += ur.multiway;
  }
  K.resizeNonZeros(row_start[n]);
  for (Index g = 0; g <= n; ++g) K.outerIndexPtr()[g] = static_cast<int>(row_start[g]);
  parallel_for(static_cast<Index>(window_.size()), opt_.threads, [&](Index p) {
    const auto& eg = *window_[p];
    for (Index r = 0; r < eg.prep.index.size(); ++r) {
      const Index g = offset[p] + r;
      const UnitRows& ur = units[eg.prep.index.unit(r)];
      const Index a = local_of_row[g];
      int* col = K.innerIndexPtr() + row_start[g];
      double* val = K.valuePtr() + row_start[g];
      Index e = ur.start[a];
      for (; e < ur.start[a + 1] && ur.row[ur.col[e]] < g; ++e) {
        *col++ = static_cast<int>(ur.row[ur.col[e]]);
        *val++ = ur.val[e];
      }
      for (Index i = eg.intra_start[r]; i < eg.intra_start[r + 1]; ++i) {
        *col++ = static_cast<int>(offset[p] + eg.intra_col[i]);
        *val++ = eg.intra_val[i];
      }
      for (; e < ur.start[a + 1]; ++e) {
        *col++ = static_cast<int>(ur.row[ur.col[e]]);
        *val++ = ur.val[e];
      }
    }
  });
  return out;
}

}  // namespace mmphate
