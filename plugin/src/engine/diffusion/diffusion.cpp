#include "engine/diffusion/diffusion.hpp"

#include <cmath>

#include "mmphate/error.hpp"

namespace mmphate {

Vector kernel_degrees(const SparseMatrix& K) {
  Vector d = Vector::Zero(K.rows());
  for (Index r = 0; r < K.outerSize(); ++r)
    for (SparseMatrix::InnerIterator it(K, r); it; ++it) d(r) += it.value();
  for (Index r = 0; r < d.size(); ++r)
    if (!(d(r) > 0) || !std::isfinite(d(r)))
      throw Error("kernel row " + std::to_string(r) + " has degree " + std::to_string(d(r)) +
                  " (isolated or invalid node)");
  return d;
}

void normalize_rows(SparseMatrix& M) {
  for (Index r = 0; r < M.outerSize(); ++r) {
    double s = 0.0;
    for (SparseMatrix::InnerIterator it(M, r); it; ++it) s += it.value();
    if (s == 0.0) continue;
    for (SparseMatrix::InnerIterator it(M, r); it; ++it) it.valueRef() /= s;
  }
}

SparseMatrix diffusion_operator(const SparseMatrix& K) {
  kernel_degrees(K);  // validates
  SparseMatrix P = K;
  normalize_rows(P);
  return P;
}

SparseMatrix symmetric_diffusion(const SparseMatrix& K) {
  const Vector d = kernel_degrees(K);
  const Vector inv_sqrt = d.cwiseSqrt().cwiseInverse();
  SparseMatrix A = K;
  for (Index r = 0; r < A.outerSize(); ++r)
    for (SparseMatrix::InnerIterator it(A, r); it; ++it)
      it.valueRef() *= inv_sqrt(r) * inv_sqrt(it.col());
  return A;
}

}  // namespace mmphate
