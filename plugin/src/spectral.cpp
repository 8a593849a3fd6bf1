#include "mmphate/spectral.hpp"

#include <Spectra/MatOp/DenseSymMatProd.h>
#include <Spectra/SymEigsSolver.h>
#include <algorithm>
#include <lapacke.h>
#include <numeric>
#include <random>

#include "mmphate/error.hpp"

namespace mmphate {
namespace {

Matrix orthonormalize(const Matrix& Y) {
  Eigen::HouseholderQR<Matrix> qr(Y);
  return qr.householderQ() * Matrix::Identity(Y.rows(), Y.cols());
}

EigenPairs sort_by_magnitude(const Vector& vals, const Matrix& vecs, int k) {
  std::vector<Index> order(static_cast<std::size_t>(vals.size()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](Index a, Index b) { return std::abs(vals(a)) > std::abs(vals(b)); });
  EigenPairs out;
  out.values.resize(k);
  out.vectors.resize(vecs.rows(), k);
  for (int i = 0; i < k; ++i) {
    out.values(i) = vals(order[i]);
    out.vectors.col(i) = vecs.col(order[i]);
  }
  return out;
}

}  // namespace

EigenPairs top_eigenpairs(const SparseMatrix& A, int k, std::uint64_t seed, int power_iterations,
                          int oversample) {
  const Index n = A.rows();
  k = static_cast<int>(std::min<Index>(k, n));
  const Index m = std::min<Index>(n, k + oversample);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix Q(n, m);
  for (Index j = 0; j < m; ++j)
    for (Index i = 0; i < n; ++i) Q(i, j) = normal(rng);
  Q = orthonormalize(A * Q);
  for (int it = 0; it < power_iterations; ++it) Q = orthonormalize(A * Q);
  const Matrix B = Q.transpose() * (A * Q);
  Eigen::SelfAdjointEigenSolver<Matrix> es(0.5 * (B + B.transpose()));
  return sort_by_magnitude(es.eigenvalues(), Q * es.eigenvectors(), k);
}

EigenPairs top_eigenpairs_dense(const Matrix& A, int k) {
  const Index n = A.rows();
  if (k >= n) {
    Eigen::SelfAdjointEigenSolver<Matrix> es(A);
    return sort_by_magnitude(es.eigenvalues(), es.eigenvectors(), static_cast<int>(std::min<Index>(k, n)));
  }
  if (n <= 64) {
    Eigen::SelfAdjointEigenSolver<Matrix> es(A);
    return sort_by_magnitude(es.eigenvalues(), es.eigenvectors(), k);
  }
  Spectra::DenseSymMatProd<double> op(A);
  const Index ncv = std::min<Index>(n, std::max<Index>(2 * k + 1, 20));
  Spectra::SymEigsSolver<Spectra::DenseSymMatProd<double>> eigs(op, k, ncv);
  eigs.init();
  eigs.compute(Spectra::SortRule::LargestMagn, 1000, 1e-12);
  if (eigs.info() != Spectra::CompInfo::Successful) {
    Eigen::SelfAdjointEigenSolver<Matrix> es(A);
    return sort_by_magnitude(es.eigenvalues(), es.eigenvectors(), k);
  }
  return sort_by_magnitude(eigs.eigenvalues(), eigs.eigenvectors(), k);
}

Vector symmetric_eigenvalues(const Matrix& A) {
  const Index n = A.rows();
  Matrix work = A;  // dsyevd overwrites its input
  Vector w(n);
  const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'U', static_cast<lapack_int>(n),
                                         work.data(), static_cast<lapack_int>(n), w.data());
  if (info != 0) throw Error("LAPACK dsyevd failed with info = " + std::to_string(info));
  return w;
}

}  // namespace mmphate
