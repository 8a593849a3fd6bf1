#include "engine/graph/kernel.hpp"

#include <cmath>
#include <limits>

#include "mmphate/error.hpp"
#include "engine/graph/knn.hpp"
#include "mmphate/log.hpp"

namespace mmphate {

double alpha_decay_radius(double sigma, double alpha, double thresh) {
  if (thresh <= 0) return std::numeric_limits<double>::infinity();
  return sigma * std::pow(-std::log(thresh), 1.0 / alpha);
}

void append_alpha_decay_row(int i, double sigma, double alpha, double thresh,
                            const std::vector<std::pair<int, double>>& candidates,
                            std::vector<Triplet>& out) {
  out.emplace_back(i, i, 1.0);
  for (const auto& [j, d] : candidates) {
    if (j == i) continue;
    double w;
    if (sigma > 0) {
      w = std::exp(-std::pow(d / sigma, alpha));
    } else {
      // sigma = 0: the point's k-th neighbour is a duplicate; only exact duplicates connect.
      w = d == 0.0 ? 1.0 : 0.0;
    }
    if (w >= thresh && w > 0) out.emplace_back(i, j, w);
  }
}

SparseMatrix symmetrize(const SparseMatrix& K) {
  SparseMatrix Kt = K.transpose();
  SparseMatrix S = (K + Kt) * 0.5;
  S.makeCompressed();
  return S;
}

SparseMatrix alpha_decay_kernel(const RowMatrix& X, int knn, double decay, double thresh,
                                KnnMethod method, int threads, KernelInfo* info) {
  const Index n = X.rows();
  if (knn >= n)
    throw Error("knn = " + std::to_string(knn) + " but the data has only " + std::to_string(n) +
                " points (knn must be < number of points)");
  KnnIndex index(X, method, threads);
  const Neighbors nb = index.knn_all(knn);
  std::vector<double> sigma(static_cast<std::size_t>(n)), radius(static_cast<std::size_t>(n));
  Index zero_bw = 0;
  for (Index i = 0; i < n; ++i) {
    sigma[i] = nb.dist(i, knn - 1);
    if (sigma[i] == 0) ++zero_bw;
    radius[i] = sigma[i] > 0 ? alpha_decay_radius(sigma[i], decay, thresh) : 0.0;
  }
  if (zero_bw > 0)
    logger()->warn("{} point(s) have a zero bandwidth (duplicates among their {} nearest neighbours); "
                   "they connect only to exact duplicates", zero_bw, knn);
  const RadiusNeighbors within = index.radius_all(radius);

  std::vector<Triplet> trip;
  trip.reserve(static_cast<std::size_t>(n) * (knn + 4));
  for (Index i = 0; i < n; ++i)
    append_alpha_decay_row(static_cast<int>(i), sigma[i], decay, thresh, within[i], trip);
  SparseMatrix K(n, n);
  K.setFromTriplets(trip.begin(), trip.end());
  if (info) {
    info->zero_bandwidth_points = zero_bw;
    info->knn_method = index.method();
  }
  return symmetrize(K);
}

}  // namespace mmphate
