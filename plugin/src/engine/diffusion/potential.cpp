#include "engine/diffusion/potential.hpp"

#include <algorithm>
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
  // gamma = 0 (M-PHATE's) is a square root: exact and vectorised, where pow is neither.
  if (c == 0.5) Pt = Pt.array().max(0.0).sqrt() / c;
  else Pt = Pt.array().max(0.0).pow(c) / c;
}

}  // namespace mmphate
