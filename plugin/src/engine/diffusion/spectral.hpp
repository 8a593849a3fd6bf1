// Partial eigen-decompositions used by the engine.
//  * top_eigenpairs: randomized subspace iteration (Halko, Martinsson & Tropp 2011) for the
//    eigenpairs of largest magnitude of a large sparse symmetric matrix (landmark clustering).
//  * top_eigenpairs_dense: Lanczos (Spectra) for a few eigenpairs of a dense symmetric matrix
//    (classical MDS), accurate to working precision.
//  * symmetric_eigenvalues / symmetric_eigen: full spectra via LAPACK dsyevd;
//    symmetric_eigen_above: the part of a spectrum above a value (dsytrd + dstemr).
#pragma once
#include <cstdint>

#include "mmphate/types.hpp"

namespace mmphate {

struct EigenPairs {
  Vector values;   // ordered by decreasing magnitude
  Matrix vectors;  // one column per value
};

// start (optional, A.rows() rows): initial block of the subspace iteration instead of a
// Gaussian one, e.g. the previous frame's eigenvectors (a warm start converges in the
// iterations a cold start spends on finding the subspace). Missing columns (up to
// k + oversample) are drawn Gaussian; rows holding a NaN start at 0.
EigenPairs top_eigenpairs(const SparseMatrix& A, int k, std::uint64_t seed, int threads = 1,
                          int power_iterations = 7, int oversample = 10, const RowMatrix* start = nullptr);
// The same for A = diag(scale) K diag(scale), without forming A: for the symmetric diffusion
// operator of a kernel that is the process's largest object (1.28 M nodes: ~6 GB), a copy is
// what the memory cannot afford. The products are A's to the last bit.
EigenPairs top_eigenpairs_scaled(const SparseMatrix& K, const Vector& scale, int k, std::uint64_t seed,
                                 int threads = 1, int power_iterations = 7, int oversample = 10,
                                 const RowMatrix* start = nullptr);

EigenPairs top_eigenpairs_dense(const Matrix& A, int k);

// All eigenvalues (ascending) of a dense symmetric matrix.
Vector symmetric_eigenvalues(const Matrix& A);

// All eigenpairs (values ascending) of a dense symmetric matrix, LAPACK dsyevd.
EigenPairs symmetric_eigen(const Matrix& A);

// The eigenpairs with eigenvalue above `lower` (values ascending): the same tridiagonal
// reduction as dsyevd (LAPACK dsytrd), then MRRR (dstemr) on that value range only, and only
// those eigenvectors back-transformed (a few hundred of 2000 for P_L^t at the usual t).
EigenPairs symmetric_eigen_above(const Matrix& A, double lower);

// Singular values of a dense square operator (via the eigenvalues of M M^T).
Vector singular_values(const Matrix& M);

}  // namespace mmphate
