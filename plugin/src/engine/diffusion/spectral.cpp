#include "engine/diffusion/spectral.hpp"

#include <Spectra/MatOp/DenseSymMatProd.h>
#include <Spectra/SymEigsSolver.h>
#include <algorithm>
#include <cmath>
#include <lapacke.h>
#include <numeric>
#include <random>
#include <vector>

#include "mmphate/error.hpp"
#include "util/parallel.hpp"

namespace mmphate {
namespace {

// The tall-skinny products below are split into row blocks by hand: Eigen's own GEMM
// parallelises poorly when one dimension is 100k and the others ~100 (measured 5-35x slower).
Index row_chunks(Index n, int threads) { return std::max<Index>(1, std::min<Index>(4 * threads, n / 256)); }

// Y^T Y for a tall Y.
Matrix gram(const RowMatrix& Y, int threads) {
  const Index n = Y.rows(), m = Y.cols(), chunks = row_chunks(n, threads);
  std::vector<Matrix> part(static_cast<std::size_t>(chunks));
  parallel_for(chunks, threads, [&](Index c) {
    const Index r0 = n * c / chunks, r1 = n * (c + 1) / chunks;
    part[c].noalias() = Y.middleRows(r0, r1 - r0).transpose() * Y.middleRows(r0, r1 - r0);
  });
  Matrix G = Matrix::Zero(m, m);
  for (const auto& p : part) G += p;
  return G;
}

// Y * S for a tall Y and a small square S.
RowMatrix times_small(const RowMatrix& Y, const Matrix& S, int threads) {
  const Index n = Y.rows(), chunks = row_chunks(n, threads);
  RowMatrix out(n, S.cols());
  parallel_for(chunks, threads, [&](Index c) {
    const Index r0 = n * c / chunks, r1 = n * (c + 1) / chunks;
    out.middleRows(r0, r1 - r0).noalias() = Y.middleRows(r0, r1 - r0) * S;
  });
  return out;
}

// Y <- Y * S in place, through a small per-thread block (a full-size temporary is 600 MB at
// 1.28 M rows x 60, and each fresh one is faulted in page by page).
void times_small_in_place(RowMatrix& Y, const Matrix& S, int threads) {
  constexpr Index kRows = 512;
  const Index n = Y.rows(), blocks = (n + kRows - 1) / kRows;
  parallel_for(blocks, threads, [&](Index b) {
    thread_local RowMatrix tmp;
    const Index r0 = b * kRows, len = std::min(kRows, n - r0);
    tmp.resize(len, S.cols());
    tmp.noalias() = Y.middleRows(r0, len) * S;
    Y.middleRows(r0, len) = tmp;
  });
}

// A * Q for a sparse row-major A and a tall row-major Q; with `scale`, A is diag(scale) A
// diag(scale), each entry scaled as symmetric_diffusion scales it (the same bits).
RowMatrix sparse_times(const SparseMatrix& A, const Vector* scale, const RowMatrix& Q, int threads) {
  RowMatrix out = RowMatrix::Zero(A.rows(), Q.cols());
  if (scale) {
    const Vector& s = *scale;
    parallel_for(A.rows(), threads, [&](Index i) {
      for (SparseMatrix::InnerIterator it(A, i); it; ++it) out.row(i) += (it.value() * (s(i) * s(it.col()))) * Q.row(it.col());
    });
  } else {
    parallel_for(A.rows(), threads, [&](Index i) {
      for (SparseMatrix::InnerIterator it(A, i); it; ++it) out.row(i) += it.value() * Q.row(it.col());
    });
  }
  return out;
}

// The same product with Q's rows gathered and summed in single precision. Each kernel entry
// reads one row of Q (60 doubles in the default preset) from anywhere in the matrix, so above
// a few hundred thousand nodes the product is bound by that gather: in float it ran 2.4x
// faster at 487,680 nodes (bench, 2 threads). Used for the power iterations only, whose
// result is re-orthonormalised in double; the Rayleigh-Ritz product stays in double. Qf and
// out are the caller's, reused across iterations (fresh 300-600 MB blocks fault page by page).
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
void sparse_times_single(const SparseMatrix& A, const Vector* scale, const RowMatrix& Q, int threads,
                         RowMatrixF& Qf, RowMatrix& out) {
  // With `scale`, Q's rows are scaled before the gather (diag(s) A diag(s) Q = diag(s) A (s Q)):
  // reading s at each entry's column was one more cache miss per entry.
  Qf.resize(Q.rows(), Q.cols());
  parallel_for(Q.rows(), threads, [&](Index i) {
    Qf.row(i) = (Q.row(i) * (scale ? (*scale)(i) : 1.0)).cast<float>();
  });
  const Index m = Q.cols();
  out.resize(A.rows(), m);
  parallel_for(A.rows(), threads, [&](Index i) {
    // One accumulator per thread, not one heap allocation per row (1.28 M rows a product).
    thread_local Eigen::Matrix<float, 1, Eigen::Dynamic> acc;
    acc.setZero(m);
    for (SparseMatrix::InnerIterator it(A, i); it; ++it) acc += static_cast<float>(it.value()) * Qf.row(it.col());
    out.row(i) = acc.cast<double>() * (scale ? (*scale)(i) : 1.0);
  });
}

// Q <- an orthonormal basis of its columns, in place: Cholesky QR applied twice (CholeskyQR2,
// Yamamoto et al. 2015), a Gram matrix and one small triangular inverse per pass. Falls back
// to Householder QR when the Gram matrix is numerically singular.
void orthonormalize(RowMatrix& Q, int threads) {
  for (int pass = 0; pass < 2; ++pass) {
    const Matrix G = gram(Q, threads);
    Eigen::LLT<Matrix> llt(G);
    const Matrix R = llt.matrixU();
    const Eigen::VectorXd d = R.diagonal().cwiseAbs();
    if (llt.info() != Eigen::Success || d.minCoeff() <= 1e-7 * d.maxCoeff()) {
      // Q still spans the input's columns (pass 1 only rescaled them within that span).
      const Matrix dense = Q;
      Eigen::HouseholderQR<Matrix> qr(dense);
      Q = RowMatrix(qr.householderQ() * Matrix::Identity(dense.rows(), dense.cols()));
      return;
    }
    const Matrix Rinv = R.triangularView<Eigen::Upper>().solve(Matrix::Identity(R.rows(), R.cols()));
    times_small_in_place(Q, Rinv, threads);
  }
}

}  // namespace

namespace {
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

namespace {
EigenPairs subspace_eigenpairs(const SparseMatrix& A, const Vector* scale, int k, std::uint64_t seed, int threads,
                               int power_iterations, int oversample, const RowMatrix* start) {
  const Index n = A.rows();
  k = static_cast<int>(std::min<Index>(k, n));
  const Index m = std::min<Index>(n, k + oversample);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  RowMatrix Q(n, m);
  if (!start) {
    for (Index i = 0; i < n; ++i)
      for (Index j = 0; j < m; ++j) Q(i, j) = normal(rng);
  } else {
    if (start->rows() != n) throw Error("top_eigenpairs: start block has " + std::to_string(start->rows()) +
                                        " rows for a matrix of " + std::to_string(n));
    // Unit-norm columns: the Gaussian columns are scaled to match, and rows the start does not
    // know start at 0 (the first product with A fills them from their neighbours). Only the
    // columns the start lacks are drawn (on the live updater's path: 10 of 60).
    const Index c = std::min<Index>(m, start->cols());
    const double scale = 1.0 / std::sqrt(static_cast<double>(n));
    for (Index i = 0; i < n; ++i) {
      if (start->row(i).head(c).allFinite()) Q.row(i).head(c) = start->row(i).head(c);
      else Q.row(i).head(c).setZero();
      for (Index j = c; j < m; ++j) Q(i, j) = scale * normal(rng);
    }
  }
  RowMatrixF Qf;
  RowMatrix AQf;
  for (int it = 0; it <= power_iterations; ++it) {
    sparse_times_single(A, scale, Q, threads, Qf, AQf);
    Q.swap(AQf);
    orthonormalize(Q, threads);
  }
  RowMatrixF().swap(Qf);
  RowMatrix().swap(AQf);
  const RowMatrix AQ = sparse_times(A, scale, Q, threads);
  Matrix B = Matrix::Zero(m, m);
  {
    const Index chunks = row_chunks(n, threads);
    std::vector<Matrix> part(static_cast<std::size_t>(chunks));
    parallel_for(chunks, threads, [&](Index c) {
      const Index r0 = n * c / chunks, r1 = n * (c + 1) / chunks;
      part[c].noalias() = Q.middleRows(r0, r1 - r0).transpose() * AQ.middleRows(r0, r1 - r0);
    });
    for (const auto& p : part) B += p;
  }
  Eigen::SelfAdjointEigenSolver<Matrix> es(0.5 * (B + Matrix(B.transpose())));
  EigenPairs small = sort_by_magnitude(es.eigenvalues(), es.eigenvectors(), k);
  small.vectors = Matrix(times_small(Q, small.vectors, threads));
  return small;
}
}  // namespace

EigenPairs top_eigenpairs(const SparseMatrix& A, int k, std::uint64_t seed, int threads, int power_iterations,
                          int oversample, const RowMatrix* start) {
  return subspace_eigenpairs(A, nullptr, k, seed, threads, power_iterations, oversample, start);
}

EigenPairs top_eigenpairs_scaled(const SparseMatrix& K, const Vector& scale, int k, std::uint64_t seed, int threads,
                                 int power_iterations, int oversample, const RowMatrix* start) {
  if (scale.size() != K.rows())
    throw Error("top_eigenpairs_scaled: " + std::to_string(scale.size()) + " scale entries for " +
                std::to_string(K.rows()) + " rows");
  return subspace_eigenpairs(K, &scale, k, seed, threads, power_iterations, oversample, start);
}

EigenPairs top_eigenpairs_dense(const Matrix& A, int k) {
  const Index n = A.rows();
  auto full = [&]() {
    Eigen::SelfAdjointEigenSolver<Matrix> es(A);
    return sort_by_magnitude(es.eigenvalues(), es.eigenvectors(), static_cast<int>(std::min<Index>(k, n)));
  };
  if (k >= n || n <= 64) return full();
  // Lanczos can break down on exactly repeated eigenvalues of a low-rank matrix (e.g. the
  // double-centred distances of a symmetric grid): it then throws or returns garbage while
  // reporting success. Results are therefore verified and the dense solver used instead.
  try {
    Spectra::DenseSymMatProd<double> op(A);
    const Index ncv = std::min<Index>(n, std::max<Index>(2 * k + 1, 20));
    Spectra::SymEigsSolver<Spectra::DenseSymMatProd<double>> eigs(op, k, ncv);
    eigs.init();
    eigs.compute(Spectra::SortRule::LargestMagn, 1000, 1e-12);
    if (eigs.info() == Spectra::CompInfo::Successful) {
      EigenPairs out = sort_by_magnitude(eigs.eigenvalues(), eigs.eigenvectors(), k);
      const double scale = std::max(A.cwiseAbs().maxCoeff(), 1e-300);
      const Matrix residual = A * out.vectors - out.vectors * out.values.asDiagonal();
      const bool finite = out.values.allFinite() && out.vectors.allFinite();
      const bool orthonormal =
          finite && (out.vectors.transpose() * out.vectors - Matrix::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-6;
      if (finite && orthonormal && residual.cwiseAbs().maxCoeff() <= 1e-8 * scale * std::sqrt(double(n))) return out;
    }
  } catch (const std::exception&) {
  }
  return full();
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

EigenPairs symmetric_eigen(const Matrix& A) {
  const Index n = A.rows();
  EigenPairs out;
  out.vectors = A;
  out.values.resize(n);
  const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', static_cast<lapack_int>(n),
                                         out.vectors.data(), static_cast<lapack_int>(n), out.values.data());
  if (info != 0) throw Error("LAPACK dsyevd failed with info = " + std::to_string(info));
  return out;
}

EigenPairs symmetric_eigen_above(const Matrix& A, double lower) {
  // dsyevr would do this, but for a partial range it switches from MRRR (dstemr) to bisection
  // and inverse iteration (dstebz + dstein): on 2000 x 2000 with ~240 pairs those took 0.22 s
  // on top of the reduction's 0.29 s (2 threads). So: Householder tridiagonalisation
  // (dsytrd), MRRR on the value range, back-transformation of those vectors only (dormtr).
  const lapack_int n = static_cast<lapack_int>(A.rows());
  EigenPairs out;
  // Gershgorin: no eigenvalue exceeds the largest absolute row sum.
  const double upper = 2.0 * A.cwiseAbs().rowwise().sum().maxCoeff() + 1.0;
  if (n == 0 || !(lower < upper)) {
    out.vectors.resize(n, 0);
    return out;
  }
  Matrix T = A;  // dsytrd overwrites it with the reflectors
  Vector d(n), e(n), tau(std::max<lapack_int>(n - 1, 1));
  lapack_int info = LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'U', n, T.data(), n, d.data(), e.data(), tau.data());
  if (info != 0) throw Error("LAPACK dsytrd failed with info = " + std::to_string(info));
  lapack_int found = 0;
  lapack_logical tryrac = 1;
  std::vector<lapack_int> support(2 * static_cast<std::size_t>(n));
  Vector w(n);
  // Query the number of eigenvalues in (lower, upper] to size the eigenvector block.
  double count = 0;
  info = LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'V', n, Vector(d).data(), Vector(e).data(), lower, upper, 0, 0, &found,
                        w.data(), &count, n, -1, support.data(), &tryrac);
  if (info != 0) throw Error("LAPACK dstemr (count) failed with info = " + std::to_string(info));
  const lapack_int cols = std::max<lapack_int>(1, static_cast<lapack_int>(count));
  Matrix Z(n, cols);
  tryrac = 1;
  info = LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'V', n, d.data(), e.data(), lower, upper, 0, 0, &found, w.data(),
                        Z.data(), n, cols, support.data(), &tryrac);
  if (info != 0) throw Error("LAPACK dstemr failed with info = " + std::to_string(info));
  if (found > 0) {
    info = LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'U', 'N', n, found, T.data(), n, tau.data(), Z.data(), n);
    if (info != 0) throw Error("LAPACK dormtr failed with info = " + std::to_string(info));
  }
  out.values = w.head(found);
  out.vectors = Z.leftCols(found);
  return out;
}

Vector singular_values(const Matrix& M) {
  const Matrix G = M * M.transpose();
  Vector ev = symmetric_eigenvalues(G);
  for (Index i = 0; i < ev.size(); ++i) ev(i) = std::sqrt(std::max(0.0, ev(i)));
  return ev;
}

}  // namespace mmphate
