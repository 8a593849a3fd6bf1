#include "mmphate/multislice.hpp"

#include <algorithm>
#include <cmath>

#include "mmphate/error.hpp"
#include "mmphate/kernel.hpp"
#include "mmphate/log.hpp"
#include "mmphate/parallel.hpp"

namespace mmphate {
namespace {

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

// Distances between the slice-points of one unit, via one GEMM (slices x slices).
Matrix unit_distances(const RowMatrix& features, Index slices, Index units, Index u) {
  RowMatrix Y(slices, features.cols());
  for (Index s = 0; s < slices; ++s) Y.row(s) = features.row(s * units + u);
  const Vector sq = Y.rowwise().squaredNorm();
  Matrix D = -2.0 * (Y * Y.transpose());
  D.colwise() += sq;
  D.rowwise() += sq.transpose();
  D = D.cwiseMax(0.0).cwiseSqrt();
  D.diagonal().setZero();
  return D;
}

void check_shape(const RowMatrix& features, Index slices, Index units) {
  if (slices < 1 || units < 1 || features.rows() != slices * units)
    throw Error("multislice input: expected " + std::to_string(slices) + " x " +
                std::to_string(units) + " = " + std::to_string(slices * units) + " nodes, got " +
                std::to_string(features.rows()));
  if (features.cols() < 1) throw Error("multislice input: the probe set is empty (0 probes)");
}

}  // namespace

double faithful_kernel_bytes(Index slices, Index units) {
  const double s = static_cast<double>(slices), u = static_cast<double>(units);
  // one dense slices^2 block at a time (8 B) + up to units * slices^2 triplets (16 B)
  // + the compressed matrix (12 B per entry).
  return 8.0 * s * s + 28.0 * u * s * s;
}

double interslice_bandwidth(const RowMatrix& features, Index slices, Index units, int kappa) {
  check_shape(features, slices, units);
  if (slices < 2) return 1.0;
  const Index rank = std::min<Index>(kappa, slices - 1);
  if (rank < kappa)
    logger()->warn("interslice_knn = {} but there are only {} slices; using rank {}", kappa, slices, rank);
  double total = 0.0;
  std::vector<double> kth(static_cast<std::size_t>(slices)), row(static_cast<std::size_t>(slices));
  for (Index u = 0; u < units; ++u) {
    const Matrix D = unit_distances(features, slices, units, u);
    for (Index s = 0; s < slices; ++s) {
      for (Index j = 0; j < slices; ++j) row[j] = D(s, j);
      std::nth_element(row.begin(), row.begin() + rank, row.end());
      kth[s] = row[rank];
    }
    // median as numpy defines it: mean of the two middle values for an even count
    std::sort(kth.begin(), kth.end());
    const std::size_t m = kth.size();
    total += (m % 2 == 1) ? kth[m / 2] : 0.5 * (kth[m / 2 - 1] + kth[m / 2]);
  }
  return total / static_cast<double>(units);
}

SparseMatrix multislice_kernel(const RowMatrix& features, Index slices, Index units,
                               const Options& opt, MultisliceInfo* info) {
  check_shape(features, slices, units);
  if (opt.intraslice_knn >= units)
    throw Error("intraslice_knn = " + std::to_string(opt.intraslice_knn) + " needs more than " +
                std::to_string(opt.intraslice_knn) + " units per slice, got " + std::to_string(units));
  const Index n = slices * units;
  const double thresh = opt.thresh;

  // Intraslice blocks: alpha-decay kernel among the units of each slice.
  std::vector<std::vector<Triplet>> per_slice(static_cast<std::size_t>(slices));
  parallel_for(slices, opt.threads, [&](Index s) {
    const RowMatrix X = features.middleRows(s * units, units);
    const Matrix D = pairwise_distances(X);
    std::vector<Triplet> local;
    std::vector<std::pair<int, double>> cand;
    std::vector<double> sorted(static_cast<std::size_t>(units));
    for (Index i = 0; i < units; ++i) {
      for (Index j = 0; j < units; ++j) sorted[j] = D(i, j);
      std::nth_element(sorted.begin(), sorted.begin() + opt.intraslice_knn, sorted.end());
      const double sigma = sorted[opt.intraslice_knn];  // index 0 is the point itself
      cand.clear();
      for (Index j = 0; j < units; ++j)
        if (j != i) cand.emplace_back(static_cast<int>(j), D(i, j));
      append_alpha_decay_row(static_cast<int>(i), sigma, opt.decay, thresh, cand, local);
    }
    SparseMatrix Ks(units, units);
    Ks.setFromTriplets(local.begin(), local.end());
    const SparseMatrix S = symmetrize(Ks);
    auto& out = per_slice[s];
    const int off = static_cast<int>(s * units);
    for (Index r = 0; r < S.outerSize(); ++r)
      for (SparseMatrix::InnerIterator it(S, r); it; ++it)
        if (it.value() >= thresh) out.emplace_back(off + it.row(), off + it.col(), it.value());
  });

  // Interslice: the same unit across slices, one global Gaussian bandwidth.
  const double eps = interslice_bandwidth(features, slices, units, opt.interslice_knn);
  std::vector<std::vector<Triplet>> per_unit(static_cast<std::size_t>(units));
  parallel_for(units, opt.threads, [&](Index u) {
    const Matrix D = unit_distances(features, slices, units, u);
    auto& out = per_unit[u];
    for (Index a = 0; a < slices; ++a)
      for (Index b = 0; b < slices; ++b) {
        if (a == b) continue;
        const double w = std::exp(-(D(a, b) * D(a, b)) / (eps * eps));
        if (w >= thresh && w > 0)
          out.emplace_back(static_cast<int>(a * units + u), static_cast<int>(b * units + u), w);
      }
  });

  std::vector<Triplet> all;
  Index intra = 0, inter = 0;
  for (auto& v : per_slice) intra += static_cast<Index>(v.size());
  for (auto& v : per_unit) inter += static_cast<Index>(v.size());
  all.reserve(static_cast<std::size_t>(intra + inter));
  for (auto& v : per_slice) { all.insert(all.end(), v.begin(), v.end()); std::vector<Triplet>().swap(v); }
  for (auto& v : per_unit) { all.insert(all.end(), v.begin(), v.end()); std::vector<Triplet>().swap(v); }
  SparseMatrix K(n, n);
  K.setFromTriplets(all.begin(), all.end());
  K.makeCompressed();
  if (info) {
    info->interslice_eps = eps;
    info->intraslice_nnz = intra;
    info->interslice_nnz = inter;
  }
  return K;
}

}  // namespace mmphate
