#include "engine/embed/mds.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "mmphate/error.hpp"
#include "util/parallel.hpp"
#include "engine/diffusion/spectral.hpp"

namespace mmphate {

RowMatrix classical_mds(const Matrix& D, int n_components) {
  const Index n = D.rows();
  if (n <= n_components)
    throw Error("classical MDS needs more than " + std::to_string(n_components) + " points, got " +
                std::to_string(n));
  Matrix B = D.array().square().matrix();
  const Vector col_mean = B.colwise().mean();
  B.rowwise() -= col_mean.transpose();
  const Vector row_mean = B.rowwise().mean();
  B.colwise() -= row_mean;
  B = 0.5 * (B + Matrix(B.transpose()));
  const EigenPairs ep = top_eigenpairs_dense(B, n_components);
  RowMatrix Y(n, n_components);
  for (int c = 0; c < n_components; ++c) {
    Vector v = ep.vectors.col(c);
    // Deterministic sign: largest-magnitude entry positive.
    Index imax;
    v.cwiseAbs().maxCoeff(&imax);
    if (v(imax) < 0) v = -v;
    Y.col(c) = v * std::abs(ep.values(c));
  }
  return Y;
}

double raw_stress(const Matrix& D, const RowMatrix& Y) {
  double s = 0;
  for (Index i = 0; i < Y.rows(); ++i)
    for (Index j = i + 1; j < Y.rows(); ++j) {
      const double d = (Y.row(i) - Y.row(j)).norm() - D(i, j);
      s += d * d;
    }
  return s;
}

RowMatrix smacof(const Matrix& D, RowMatrix X, int max_iter, double tol, int threads,
                 SmacofResult* result) {
  return smacof_anchored(D, std::move(X), RowMatrix(), 0.0, max_iter, tol, threads, result);
}

RowMatrix smacof_anchored(const Matrix& D, RowMatrix X, const RowMatrix& anchors, double anchor_weight,
                          int max_iter, double tol, int threads, SmacofResult* result) {
  const Index n = D.rows(), dim = X.cols();
  if (X.rows() != n) throw Error("smacof: initial layout has the wrong number of points");
  if (!(anchor_weight >= 0.0) || !std::isfinite(anchor_weight))
    throw Error("smacof: anchor_weight must be finite and >= 0, got " + std::to_string(anchor_weight));
  const bool anchored = anchor_weight > 0.0;
  RowMatrix centred_anchors;
  Eigen::RowVectorXd anchor_mean;
  if (anchored) {
    if (anchors.rows() != n || anchors.cols() != dim)
      throw Error("smacof: anchors are " + std::to_string(anchors.rows()) + " x " + std::to_string(anchors.cols()) +
                  ", expected " + std::to_string(n) + " x " + std::to_string(dim));
    anchor_mean = anchors.colwise().mean();
    centred_anchors = anchors.rowwise() - anchor_mean;
  }
  // Column copies of the coordinates keep the inner loop contiguous and vectorised.
  std::vector<Eigen::ArrayXd> col(static_cast<std::size_t>(dim));
  std::vector<double> row_stress(static_cast<std::size_t>(n));
  RowMatrix next(n, dim);
  double old = -1.0;
  bool have_old = false;
  int it = 0;
  double stress = 0;
  for (it = 0; it < max_iter; ++it) {
    for (Index c = 0; c < dim; ++c) col[c] = X.col(c).array();
    parallel_for(n, threads, [&](Index i) {
      Eigen::ArrayXd d2 = Eigen::ArrayXd::Zero(n);
      for (Index c = 0; c < dim; ++c) d2 += (col[c] - X(i, c)).square();
      Eigen::ArrayXd d = d2.sqrt();
      const auto target = D.col(i).array();  // D symmetric: column i == row i, contiguous
      Eigen::ArrayXd diff = d - target;
      diff(i) = 0.0;
      row_stress[i] = diff.square().sum();
      // Guttman transform: x_i <- (1/n) sum_j (D_ij / d_ij) (x_i - x_j), with d_ij = 0 -> 1e-5.
      Eigen::ArrayXd ratio = target / (d == 0.0).select(1e-5, d);
      ratio(i) = 0.0;
      const double rs = ratio.sum();
      for (Index c = 0; c < dim; ++c)
        next(i, c) = (rs * X(i, c) - (ratio * col[c]).sum()) / static_cast<double>(n);
    });
    stress = 0.5 * std::accumulate(row_stress.begin(), row_stress.end(), 0.0);
    double objective = stress;
    if (anchored) {
      // The anchor term of the layout the stress was measured on, then the anchored update.
      objective += anchor_weight * static_cast<double>(n) * (X - anchors).squaredNorm();
      next = (next + anchor_weight * centred_anchors) / (1.0 + anchor_weight);
      next.rowwise() += anchor_mean;
    }
    X.swap(next);
    const double dis = X.rowwise().norm().sum();
    const double normalized = objective / dis;
    if (have_old && old - normalized < tol) { ++it; break; }
    old = normalized;
    have_old = true;
  }
  if (result) {
    result->iterations = it;
    result->stress = stress;
  }
  return X;
}

RowMatrix sgd_mds(const Matrix& D, RowMatrix X, int epochs, double eps, std::uint64_t seed) {
  const Index n = D.rows(), dim = X.cols();
  if (X.rows() != n) throw Error("sgd_mds: initial layout has the wrong number of points");
  std::vector<std::pair<int, int>> pairs;
  pairs.reserve(static_cast<std::size_t>(n * (n - 1) / 2));
  for (Index i = 0; i < n; ++i)
    for (Index j = i + 1; j < n; ++j) pairs.emplace_back(static_cast<int>(i), static_cast<int>(j));
  if (pairs.empty()) return X;
  // Unit weights: the same (unweighted) stress SMACOF minimises. With w = 1 the schedule of
  // Zheng et al. runs the step size from 1 / w_min = 1 down to eps / w_max = eps.
  const double eta_max = 1.0, eta_min = eps;
  const double lambda = epochs > 1 ? std::log(eta_max / eta_min) / (epochs - 1) : 0.0;
  std::mt19937_64 rng(seed);
  for (int e = 0; e < epochs; ++e) {
    const double mu = eta_max * std::exp(-lambda * e);
    std::shuffle(pairs.begin(), pairs.end(), rng);
    for (const auto& [i, j] : pairs) {
      const double target = D(i, j);
      double delta[3] = {0, 0, 0};
      double norm2 = 0;
      for (Index c = 0; c < dim; ++c) {
        delta[c] = X(i, c) - X(j, c);
        norm2 += delta[c] * delta[c];
      }
      const double norm = std::sqrt(norm2);
      if (norm == 0) continue;
      const double scale = mu * (norm - target) / (2.0 * norm);
      for (Index c = 0; c < dim; ++c) {
        X(i, c) -= scale * delta[c];
        X(j, c) += scale * delta[c];
      }
    }
  }
  return X;
}

double stress_optimal_scale(const Matrix& D, const RowMatrix& Y) {
  const Index n = Y.rows();
  double num = 0, den = 0;
  for (Index i = 0; i < n; ++i)
    for (Index j = i + 1; j < n; ++j) {
      const double d = (Y.row(i) - Y.row(j)).norm();
      num += D(j, i) * d;
      den += d * d;
    }
  return den > 0 && std::isfinite(num / den) ? num / den : 0.0;
}

}  // namespace mmphate
