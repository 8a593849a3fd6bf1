#include "mmphate/potential.hpp"

#include <cmath>

#include "mmphate/error.hpp"

namespace mmphate {

Matrix matrix_power(const Matrix& M, int t) {
  if (t < 1) throw Error("diffusion time t must be >= 1, got " + std::to_string(t));
  Matrix result;
  Matrix base = M;
  bool have = false;
  while (t > 0) {
    if (t & 1) {
      if (have) {
        Matrix tmp;
        tmp.noalias() = result * base;
        result.swap(tmp);
      } else {
        result = base;
        have = true;
      }
    }
    t >>= 1;
    if (t > 0) {
      Matrix tmp;
      tmp.noalias() = base * base;
      base.swap(tmp);
    }
  }
  return result;
}

void potential_transform(Matrix& Pt, double gamma) {
  if (gamma == 1.0) {
    Pt = -(Pt.array() + 1e-7).log();
    return;
  }
  const double c = (1.0 - gamma) / 2.0;
  // Tiny negative round-off from the products would give NaN under a fractional power.
  Pt = Pt.array().max(0.0).pow(c) / c;
}

Matrix row_distances(const Matrix& X) {
  const Vector sq = X.rowwise().squaredNorm();
  Matrix D;
  D.noalias() = -2.0 * (X * X.transpose());
  D.colwise() += sq;
  D.rowwise() += sq.transpose();
  D = D.cwiseMax(0.0).cwiseSqrt();
  D.diagonal().setZero();
  // Exact symmetry (GEMM round-off differs between (i,j) and (j,i)).
  const Matrix Dt = D.transpose();
  D = 0.5 * (D + Dt);
  return D;
}

}  // namespace mmphate
