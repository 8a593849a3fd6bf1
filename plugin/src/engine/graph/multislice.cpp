#include "engine/graph/multislice.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "mmphate/error.hpp"
#include "engine/graph/kernel.hpp"
#include "engine/graph/knn.hpp"
#include "mmphate/log.hpp"
#include "data/normalize.hpp"
#include "util/parallel.hpp"
#include "engine/graph/distances.hpp"
#include "engine/graph/sparse_build.hpp"

namespace mmphate {
namespace {

using TripletList = std::vector<Triplet>;

// Exact pairwise distances between the rows of X (small blocks only).
Matrix pairwise_distances(const RowMatrix& X) {
  const Index n = X.rows();
  Matrix D(n, n);
  for (Index i = 0; i < n; ++i) {
    D(i, i) = 0.0;
    for (Index j = i + 1; j < n; ++j) D(i, j) = D(j, i) = (X.row(i) - X.row(j)).norm();
  }
  return D;
}

// Graph rows of one slice's units (alive only), and of one unit's slice-points.
std::vector<Index> slice_rows(const NodeIndex& nodes, Index s) {
  std::vector<Index> rows;
  for (Index u = 0; u < nodes.shape.units; ++u)
    if (nodes.row(s, u) >= 0) rows.push_back(nodes.row(s, u));
  return rows;
}
std::vector<Index> unit_rows(const NodeIndex& nodes, Index u) {
  std::vector<Index> rows;
  for (Index s = 0; s < nodes.shape.slices(); ++s)
    if (nodes.row(s, u) >= 0) rows.push_back(nodes.row(s, u));
  return rows;
}
RowMatrix gather(const RowMatrix& features, const std::vector<Index>& rows) {
  RowMatrix Y(static_cast<Index>(rows.size()), features.cols());
  for (std::size_t i = 0; i < rows.size(); ++i) Y.row(static_cast<Index>(i)) = features.row(rows[i]);
  return Y;
}

}  // namespace

namespace {

// One slice's intraslice block over its graph rows: alpha-decay rows, symmetrised densely
// (slices hold tens to hundreds of units, so an m x m block is cheaper than a sparse matrix
// per slice), entries below the threshold set to 0. The diagonal is included.
Matrix intraslice_block(const RowMatrix& features, const std::vector<Index>& rows, const Options& opt) {
  const Index m = static_cast<Index>(rows.size());
  if (m <= 1) return Matrix::Constant(m, m, 1.0);
  const int k = static_cast<int>(std::min<Index>(opt.intraslice_knn, m - 1));
  const Matrix D = pairwise_distances(gather(features, rows));
  TripletList local;
  std::vector<std::pair<int, double>> cand;
  std::vector<double> sorted(static_cast<std::size_t>(m));
  for (Index i = 0; i < m; ++i) {
    for (Index j = 0; j < m; ++j) sorted[j] = D(i, j);
    std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
    const double sigma = sorted[k];  // index 0 is the point itself
    // Only points inside the decay radius can reach the threshold: the others would cost a
    // pow and an exp each (most of a 256-unit slice's pairs) to be dropped. The slack keeps
    // every pair the rounding of pow/exp could still let through, so the row is unchanged.
    const double radius = sigma > 0 ? alpha_decay_radius(sigma, opt.decay, opt.thresh) * (1 + 1e-9) : 0.0;
    cand.clear();
    for (Index j = 0; j < m; ++j)
      if (j != i && D(i, j) <= radius) cand.emplace_back(static_cast<int>(j), D(i, j));
    append_alpha_decay_row(static_cast<int>(i), sigma, opt.decay, opt.thresh, cand, local);
  }
  Matrix Kd = Matrix::Zero(m, m);
  for (const auto& t : local) Kd(t.row(), t.col()) = t.value();
  Matrix S(m, m);
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < m; ++j) {
      const double v = 0.5 * (Kd(i, j) + Kd(j, i));
      S(i, j) = (v >= opt.thresh && v > 0) ? v : 0.0;
    }
  return S;
}

}  // namespace

// Intraslice alpha-decay blocks (identical in both modes).
TripletList intraslice_entries(const RowMatrix& features, const NodeIndex& nodes, const Options& opt) {
  const Index slices = nodes.shape.slices();
  std::vector<TripletList> per_slice(static_cast<std::size_t>(slices));
  parallel_for(slices, opt.threads, [&](Index s) {
    const std::vector<Index> rows = slice_rows(nodes, s);
    const Matrix S = intraslice_block(features, rows, opt);
    auto& out = per_slice[s];
    for (Index i = 0; i < S.rows(); ++i)
      for (Index j = 0; j < S.cols(); ++j)
        if (S(i, j) > 0) out.emplace_back(static_cast<int>(rows[i]), static_cast<int>(rows[j]), S(i, j));
  });
  TripletList all;
  for (auto& v : per_slice) all.insert(all.end(), v.begin(), v.end());
  return all;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size();
  return (m % 2 == 1) ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

namespace {

// kNN of every slice-point among the slice-points of its unit (graph rows), per unit.
struct UnitNeighbours {
  std::vector<Index> rows;  // the unit's graph rows, slice order
  Neighbors nb;             // indices into rows
};

std::vector<UnitNeighbours> unit_neighbours(const RowMatrix& features, const NodeIndex& nodes, int kappa,
                                            int threads) {
  const Index units = nodes.shape.units;
  std::vector<UnitNeighbours> out(static_cast<std::size_t>(units));
  // Parallel over units; each search runs single-threaded inside.
  parallel_for(units, threads, [&](Index u) {
    auto& un = out[u];
    un.rows = unit_rows(nodes, u);
    const Index m = static_cast<Index>(un.rows.size());
    if (m < 2) return;
    const RowMatrix Y = gather(features, un.rows);
    const int k = static_cast<int>(std::min<Index>(kappa, m - 1));
    un.nb = knn_search(Y, k, KnnMethod::automatic, 1);
  });
  return out;
}

double bandwidth_from(const std::vector<UnitNeighbours>& un, int kappa) {
  std::vector<double> unit_median(un.size(), -1.0);
  bool clamped = false;
  for (std::size_t u = 0; u < un.size(); ++u) {
    const Neighbors& nb = un[u].nb;
    if (nb.n == 0) continue;
    // Lists may hold more than kappa neighbours (scalable edges): read the kappa-th column.
    const int col = std::min(kappa, nb.k) - 1;
    if (nb.k < kappa) clamped = true;
    std::vector<double> kth(static_cast<std::size_t>(nb.n));
    for (Index i = 0; i < nb.n; ++i) kth[i] = nb.dist(i, col);
    unit_median[u] = median_of(std::move(kth));
  }
  return mean_unit_bandwidth(unit_median, clamped, kappa, false);
}

}  // namespace

double mean_unit_bandwidth(const std::vector<double>& unit_median, bool clamped, int kappa, bool repeated) {
  const auto level = repeated ? spdlog::level::debug : spdlog::level::warn;
  if (clamped)
    logger()->log(level, "interslice_knn = {} exceeds the slice-points of some unit; using the farthest one", kappa);
  double total = 0;
  Index counted = 0;
  for (double v : unit_median)
    if (v >= 0) {
      total += v;
      ++counted;
    }
  if (counted == 0) {
    logger()->log(level, "no unit has two slice-points (a single slice?): no interslice edges; bandwidth set to 1");
    return 1.0;
  }
  if (!(total > 0)) {
    logger()->log(level, "interslice bandwidth is 0 (every unit identical across slices); using 1");
    return 1.0;
  }
  return total / static_cast<double>(counted);
}

namespace {

// The scalable kernel assembled straight into CSR, without a triplet list (which took
// 16 B per entry, and as many again to sort it: at 1.28 M nodes x 256 units that, not the
// matrix, was the process's peak). Row g of slice s holds, in ascending columns, its unit's
// entries in slices before s, its intraslice row, and its unit's entries in later slices
// (graph rows ascend with slice * units + unit). Each part is computed twice, once to count
// and once to write in place, so that nothing but K and the kNN lists is held at once.
class ScalableAssembly {
 public:
  ScalableAssembly(const RowMatrix& features, const NodeIndex& nodes, const Options& opt,
                   const std::vector<UnitNeighbours>& un, double eps)
      : f_(features), nodes_(nodes), opt_(opt), un_(un), inv_eps2_(1.0 / (eps * eps)),
        keep_(opt.interslice_edges > 0 ? opt.interslice_edges : opt.interslice_knn) {}

  SparseMatrix build(MultisliceInfo* info) {
    const Index n = nodes_.size(), units = nodes_.shape.units, slices = nodes_.shape.slices();
    low_.assign(static_cast<std::size_t>(n), 0);
    unit_len_.assign(static_cast<std::size_t>(n), 0);
    intra_len_.assign(static_cast<std::size_t>(n), 0);
    std::vector<Index> inter(static_cast<std::size_t>(units), 0), multiway(static_cast<std::size_t>(units), 0);
    parallel_for(units, opt_.threads, [&](Index u) {
      const LocalRows adj = unit_adjacency(u, &inter[u], &multiway[u]);
      const auto& rows = un_[u].rows;
      for (Index a = 0; a < adj.rows(); ++a) {
        const Index g = rows[a];
        unit_len_[g] = adj.start[a + 1] - adj.start[a];
        low_[g] = std::lower_bound(adj.col.begin() + adj.start[a], adj.col.begin() + adj.start[a + 1], a) -
                  (adj.col.begin() + adj.start[a]);
      }
    });
    parallel_for(slices, opt_.threads, [&](Index s) {
      const std::vector<Index> rows = slice_rows(nodes_, s);
      const Matrix S = intraslice_block(f_, rows, opt_);
      for (Index i = 0; i < S.rows(); ++i) intra_len_[rows[i]] = (S.row(i).array() > 0).count();
    });
    start_.assign(static_cast<std::size_t>(n) + 1, 0);
    for (Index g = 0; g < n; ++g) start_[g + 1] = start_[g] + unit_len_[g] + intra_len_[g];
    if (start_[n] > std::numeric_limits<int>::max())
      throw Error("the multislice kernel would hold " + std::to_string(start_[n]) +
                  " entries, above the 2^31 - 1 a sparse matrix indexes: lower interslice_edges or the node count");
    SparseMatrix K(n, n);
    K.resizeNonZeros(start_[n]);
    for (Index g = 0; g <= n; ++g) K.outerIndexPtr()[g] = static_cast<int>(start_[g]);
    int* col = K.innerIndexPtr();
    double* val = K.valuePtr();
    parallel_for(units, opt_.threads, [&](Index u) {
      const LocalRows adj = unit_adjacency(u, nullptr, nullptr);
      const auto& rows = un_[u].rows;
      for (Index a = 0; a < adj.rows(); ++a) {
        const Index g = rows[a];
        Index at = start_[g];
        for (Index e = adj.start[a]; e < adj.start[a + 1]; ++e) {
          if (e - adj.start[a] == low_[g]) at += intra_len_[g];
          col[at] = static_cast<int>(rows[adj.col[e]]);
          val[at++] = adj.val[e];
        }
      }
    });
    parallel_for(slices, opt_.threads, [&](Index s) {
      const std::vector<Index> rows = slice_rows(nodes_, s);
      const Matrix S = intraslice_block(f_, rows, opt_);
      for (Index i = 0; i < S.rows(); ++i) {
        Index at = start_[rows[i]] + low_[rows[i]];
        for (Index j = 0; j < S.cols(); ++j)
          if (S(i, j) > 0) {
            col[at] = static_cast<int>(rows[j]);
            val[at++] = S(i, j);
          }
      }
    });
    if (info) {
      info->intraslice_nnz = 0;
      for (Index g = 0; g < n; ++g) info->intraslice_nnz += intra_len_[g];
      info->interslice_nnz = info->multiway_nnz = 0;
      for (Index u = 0; u < units; ++u) {
        info->interslice_nnz += inter[u];
        info->multiway_nnz += multiway[u];
      }
    }
    return K;
  }

 private:
  // Unit u's interslice entries over its slice-points (local numbering = slice order): its
  // kept kNN edges (above the threshold) and its multiway edges (the same unit at the next
  // step of the epoch and at the same step of the next epoch), symmetrised by union. The
  // counts are those of the directed entries both ways, as MultisliceInfo reports them.
  LocalRows unit_adjacency(Index u, Index* inter, Index* multiway) const {
    const UnitNeighbours& U = un_[u];
    const Index m = static_cast<Index>(U.rows.size());
    LocalRows directed;
    directed.start.assign(static_cast<std::size_t>(m) + 1, 0);
    if (m < 2) return directed;
    const TraceShape& shape = nodes_.shape;
    std::vector<int> local_of_slice(static_cast<std::size_t>(shape.slices()), -1);
    for (Index a = 0; a < m; ++a) local_of_slice[nodes_.slice(U.rows[a])] = static_cast<int>(a);
    const int k = std::min(keep_, U.nb.k);
    const bool links = opt_.time_edge_weight > 0 || opt_.epoch_edge_weight > 0;
    directed.col.reserve(static_cast<std::size_t>(m) * (static_cast<std::size_t>(k) + 2));
    directed.val.reserve(directed.col.capacity());
    Index kept = 0, linked = 0;
    for (Index a = 0; a < m; ++a) {
      for (int j = 0; j < k; ++j) {
        const double d = U.nb.dist(a, j);
        const double w = std::exp(-d * d * inv_eps2_);
        if (!(w >= opt_.thresh && w > 0)) continue;
        directed.col.push_back(U.nb.at(a, j));
        directed.val.push_back(w);
        ++kept;
      }
      if (links) {
        const Index s = nodes_.slice(U.rows[a]), e = s / shape.steps, t = s % shape.steps;
        auto link = [&](Index to, double weight) {
          const int b = local_of_slice[to];
          if (b < 0 || weight <= 0) return;
          const double d2 = (f_.row(U.rows[a]) - f_.row(U.rows[b])).squaredNorm();
          directed.col.push_back(b);
          directed.val.push_back(weight * std::max(std::exp(-d2 * inv_eps2_), opt_.thresh));
          ++linked;
        };
        if (t + 1 < shape.steps) link(s + 1, opt_.time_edge_weight);
        if (e + 1 < shape.epochs) link(s + shape.steps, opt_.epoch_edge_weight);
      }
      directed.start[a + 1] = static_cast<Index>(directed.col.size());
    }
    if (inter) *inter = 2 * kept;
    if (multiway) *multiway = 2 * linked;
    return symmetric_union(directed);
  }

  const RowMatrix& f_;
  const NodeIndex& nodes_;
  const Options& opt_;
  const std::vector<UnitNeighbours>& un_;
  const double inv_eps2_;
  const int keep_;
  std::vector<Index> low_, unit_len_, intra_len_, start_;
};

// Graph rows ascending with slice * units + unit: the order the assembly's row layout needs
// (prepare_trace and the window graph number nodes so).
bool rows_in_trace_order(const NodeIndex& nodes) {
  for (Index r = 1; r < nodes.size(); ++r)
    if (nodes.full_id[r] <= nodes.full_id[r - 1]) return false;
  return true;
}

}  // namespace

double faithful_kernel_bytes(Index slices, Index units) {
  const double s = static_cast<double>(slices), u = static_cast<double>(units);
  // per-thread dense slices^2 blocks (8 B) + up to units * slices^2 triplets (16 B)
  // + the compressed matrix (12 B per entry).
  return 16.0 * s * s + 28.0 * u * s * s;
}

SparseMatrix multislice_kernel(const RowMatrix& features, const NodeIndex& nodes, const Options& opt,
                               MultisliceInfo* info) {
  const TraceShape& shape = nodes.shape;
  if (features.rows() != nodes.size())
    throw Error("multislice kernel: " + std::to_string(features.rows()) + " feature rows for " +
                std::to_string(nodes.size()) + " nodes");
  if (features.cols() < 1) throw Error("multislice input: the probe set is empty (0 probes)");
  // Features prepared elsewhere may square to Inf: the kernel is scale-invariant, so rescale
  // exactly by a power of two (prepare_trace output is already in range).
  if (const double s = distance_safe_scale(features); s != 1.0) {
    logger()->warn("multislice features up to {:.3g} in magnitude scaled by 2^{} (squared distances would overflow)",
                   1.0 / s, std::ilogb(s));
    return multislice_kernel(RowMatrix(features * s), nodes, opt, info);
  }
  if (opt.intraslice_knn >= shape.units)
    throw Error("intraslice_knn = " + std::to_string(opt.intraslice_knn) + " needs more than " +
                std::to_string(opt.intraslice_knn) + " units per slice, got " + std::to_string(shape.units));
  const bool faithful = opt.multislice_mode == MultisliceMode::faithful;
  if (faithful) {
    const double need = faithful_kernel_bytes(shape.slices(), shape.units);
    if (need > opt.memory_budget_gb * 1e9) {
      std::ostringstream os;
      os.precision(3);
      os << "the faithful multislice kernel for " << shape.slices() << " slices x " << shape.units
         << " units needs ~" << need / 1e9 << " GB, above memory_budget_gb = " << opt.memory_budget_gb
         << "; use multislice_mode = scalable (O(nodes * interslice_knn)) or raise the budget";
      throw Error(os.str());
    }
  }
  const Index n = nodes.size();

  // The bandwidth needs interslice_knn neighbours; scalable edges may use more.
  const int edges = faithful ? opt.interslice_knn
                             : std::max(opt.interslice_knn, opt.interslice_edges > 0 ? opt.interslice_edges : 0);
  const std::vector<UnitNeighbours> un = unit_neighbours(features, nodes, edges, opt.threads);
  const double eps = bandwidth_from(un, opt.interslice_knn);
  if (info) info->interslice_eps = eps;
  if (!faithful) {
    if (!rows_in_trace_order(nodes))
      throw Error("multislice kernel: graph rows must ascend with slice * units + unit (as prepare_trace numbers them)");
    return ScalableAssembly(features, nodes, opt, un, eps).build(info);
  }

  // Faithful: every pair of slice-points of a unit, O(units * slices^2) (bounded above).
  TripletList all = intraslice_entries(features, nodes, opt);
  const Index intra = static_cast<Index>(all.size());
  const double inv_eps2 = 1.0 / (eps * eps);
  std::vector<TripletList> per_unit(static_cast<std::size_t>(shape.units));
  parallel_for(shape.units, opt.threads, [&](Index u) {
    const auto& U = un[u];
    auto& out = per_unit[u];
    const Index m = static_cast<Index>(U.rows.size());
    if (m < 2) return;
    const Matrix D = row_distances(Matrix(gather(features, U.rows)));
    for (Index a = 0; a < m; ++a)
      for (Index b = 0; b < m; ++b) {
        if (a == b) continue;
        const double w = std::exp(-(D(a, b) * D(a, b)) * inv_eps2);
        if (w >= opt.thresh && w > 0) out.emplace_back(static_cast<int>(U.rows[a]), static_cast<int>(U.rows[b]), w);
      }
  });
  Index inter = 0;
  {
    std::size_t total = all.size();
    for (const auto& v : per_unit) total += v.size();
    all.reserve(total);
  }
  for (auto& v : per_unit) {
    inter += static_cast<Index>(v.size());
    all.insert(all.end(), v.begin(), v.end());
    TripletList().swap(v);
  }
  SparseMatrix K = from_triplets_max(n, all, opt.threads);
  if (info) {
    info->intraslice_nnz = intra;
    info->interslice_nnz = inter;
    info->multiway_nnz = 0;
  }
  return K;
}

namespace {
NodeIndex all_nodes(const RowMatrix& features, Index slices, Index units) {
  return NodeIndex::all(slice_trace_shape(features, slices, units));
}
}  // namespace

double interslice_bandwidth(const RowMatrix& features, Index slices, Index units, int kappa) {
  const NodeIndex nodes = all_nodes(features, slices, units);
  return bandwidth_from(unit_neighbours(features, nodes, kappa, 1), kappa);
}

SparseMatrix multislice_kernel(const RowMatrix& features, Index slices, Index units, const Options& opt,
                               MultisliceInfo* info) {
  return multislice_kernel(features, all_nodes(features, slices, units), opt, info);
}

}  // namespace mmphate
