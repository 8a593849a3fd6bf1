#include "engine/graph/multislice.hpp"

#include <algorithm>
#include <cmath>
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

// Intraslice alpha-decay blocks (identical in both modes).
TripletList intraslice_entries(const RowMatrix& features, const NodeIndex& nodes, const Options& opt) {
  const Index slices = nodes.shape.slices();
  std::vector<TripletList> per_slice(static_cast<std::size_t>(slices));
  parallel_for(slices, opt.threads, [&](Index s) {
    const std::vector<Index> rows = slice_rows(nodes, s);
    const Index m = static_cast<Index>(rows.size());
    auto& out = per_slice[s];
    if (m == 0) return;
    if (m == 1) { out.emplace_back(rows[0], rows[0], 1.0); return; }
    const int k = static_cast<int>(std::min<Index>(opt.intraslice_knn, m - 1));
    const Matrix D = pairwise_distances(gather(features, rows));
    TripletList local;
    std::vector<std::pair<int, double>> cand;
    std::vector<double> sorted(static_cast<std::size_t>(m));
    for (Index i = 0; i < m; ++i) {
      for (Index j = 0; j < m; ++j) sorted[j] = D(i, j);
      std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
      const double sigma = sorted[k];  // index 0 is the point itself
      cand.clear();
      for (Index j = 0; j < m; ++j)
        if (j != i) cand.emplace_back(static_cast<int>(j), D(i, j));
      append_alpha_decay_row(static_cast<int>(i), sigma, opt.decay, opt.thresh, cand, local);
    }
    // Dense symmetrisation: slices hold tens to hundreds of units, so an m x m block is
    // cheaper than building a sparse matrix per slice.
    Matrix Kd = Matrix::Zero(m, m);
    for (const auto& t : local) Kd(t.row(), t.col()) = t.value();
    for (Index i = 0; i < m; ++i)
      for (Index j = 0; j < m; ++j) {
        const double v = 0.5 * (Kd(i, j) + Kd(j, i));
        if (v >= opt.thresh && v > 0)
          out.emplace_back(static_cast<int>(rows[i]), static_cast<int>(rows[j]), v);
      }
  });
  TripletList all;
  for (auto& v : per_slice) all.insert(all.end(), v.begin(), v.end());
  return all;
}

Index append_multiway_edges(const RowMatrix& features, const NodeIndex& nodes, const Options& opt, double eps,
                            std::vector<Triplet>& out) {
  if (opt.multislice_mode == MultisliceMode::faithful || (opt.time_edge_weight <= 0 && opt.epoch_edge_weight <= 0))
    return 0;
  const TraceShape& shape = nodes.shape;
  const double inv_eps2 = 1.0 / (eps * eps);
  Index multiway = 0;
  auto link = [&](Index a, Index b, double weight) {
    if (a < 0 || b < 0 || weight <= 0) return;
    const double d2 = (features.row(a) - features.row(b)).squaredNorm();
    const double w = weight * std::max(std::exp(-d2 * inv_eps2), opt.thresh);
    out.emplace_back(static_cast<int>(a), static_cast<int>(b), w);
    out.emplace_back(static_cast<int>(b), static_cast<int>(a), w);
    multiway += 2;
  };
  for (Index e = 0; e < shape.epochs; ++e)
    for (Index t = 0; t < shape.steps; ++t)
      for (Index u = 0; u < shape.units; ++u) {
        const Index here = nodes.row(e * shape.steps + t, u);
        if (here < 0) continue;
        if (t + 1 < shape.steps) link(here, nodes.row(e * shape.steps + t + 1, u), opt.time_edge_weight);
        if (e + 1 < shape.epochs) link(here, nodes.row((e + 1) * shape.steps + t, u), opt.epoch_edge_weight);
      }
  return multiway;
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

  TripletList all = intraslice_entries(features, nodes, opt);
  const Index intra = static_cast<Index>(all.size());

  // The bandwidth needs interslice_knn neighbours; scalable edges may use more.
  const int edges = faithful ? opt.interslice_knn
                             : std::max(opt.interslice_knn, opt.interslice_edges > 0 ? opt.interslice_edges : 0);
  const std::vector<UnitNeighbours> un = unit_neighbours(features, nodes, edges, opt.threads);
  const double eps = bandwidth_from(un, opt.interslice_knn);
  const int keep = faithful ? 0 : (opt.interslice_edges > 0 ? opt.interslice_edges : opt.interslice_knn);
  const double inv_eps2 = 1.0 / (eps * eps);

  std::vector<TripletList> per_unit(static_cast<std::size_t>(shape.units));
  parallel_for(shape.units, opt.threads, [&](Index u) {
    const auto& U = un[u];
    auto& out = per_unit[u];
    const Index m = static_cast<Index>(U.rows.size());
    if (m < 2) return;
    if (faithful) {
      const Matrix D = row_distances(Matrix(gather(features, U.rows)));
      for (Index a = 0; a < m; ++a)
        for (Index b = 0; b < m; ++b) {
          if (a == b) continue;
          const double w = std::exp(-(D(a, b) * D(a, b)) * inv_eps2);
          if (w >= opt.thresh && w > 0) out.emplace_back(static_cast<int>(U.rows[a]), static_cast<int>(U.rows[b]), w);
        }
    } else {
      const int k = std::min(keep, U.nb.k);
      out.reserve(static_cast<std::size_t>(2 * m * k));
      for (Index a = 0; a < m; ++a)
        for (int j = 0; j < k; ++j) {
          const double d = U.nb.dist(a, j);
          const double w = std::exp(-d * d * inv_eps2);
          if (!(w >= opt.thresh && w > 0)) continue;
          const int ra = static_cast<int>(U.rows[a]), rb = static_cast<int>(U.rows[U.nb.at(a, j)]);
          out.emplace_back(ra, rb, w);
          out.emplace_back(rb, ra, w);
        }
    }
  });
  Index inter = 0;
  {
    std::size_t total = all.size();
    for (const auto& v : per_unit) total += v.size();
    const std::size_t multiway_bound = static_cast<std::size_t>(4 * n);
    all.reserve(total + multiway_bound);
  }
  for (auto& v : per_unit) {
    inter += static_cast<Index>(v.size());
    all.insert(all.end(), v.begin(), v.end());
    TripletList().swap(v);
  }

  const Index multiway = append_multiway_edges(features, nodes, opt, eps, all);

  SparseMatrix K = from_triplets_max(n, all, opt.threads);
  if (info) {
    info->interslice_eps = eps;
    info->intraslice_nnz = intra;
    info->interslice_nnz = inter;
    info->multiway_nnz = multiway;
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
