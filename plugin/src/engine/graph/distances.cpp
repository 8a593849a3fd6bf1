#include "engine/graph/distances.hpp"

#include <algorithm>
#include <cmath>

// BLAS symmetric rank-k update (any LAPACK links a BLAS that has it); the trailing arguments
// are the Fortran lengths of the two character arguments.
extern "C" void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha,
                       const double* a, const int* lda, const double* beta, double* c, const int* ldc,
                       std::size_t uplo_len, std::size_t trans_len);

namespace mmphate {

Matrix row_distances(const Matrix& X) {
  // Gram matrix X X^T by dsyrk: one triangle, half the flops of a general product (this is
  // the landmark potential's largest dense product). Distances are computed on that triangle
  // and mirrored, so D is exactly symmetric.
  const int n = static_cast<int>(X.rows()), k = static_cast<int>(X.cols());
  const double one = 1.0, zero = 0.0;
  const Vector sq = X.rowwise().squaredNorm();
  Matrix D(n, n);
  if (n == 0) return D;
  dsyrk_("L", "N", &n, &k, &one, X.data(), &n, &zero, D.data(), &n, 1, 1);
  for (Index j = 0; j < n; ++j) {
    D(j, j) = 0.0;
    for (Index i = j + 1; i < n; ++i) D(i, j) = std::sqrt(std::max(sq(i) + sq(j) - 2.0 * D(i, j), 0.0));
  }
  D.triangularView<Eigen::StrictlyUpper>() = D.transpose();
  return D;
}

}  // namespace mmphate
