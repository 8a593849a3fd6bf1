// Diffusion potential (docs/METHOD.md section 3.3): P^t, then elementwise
//   gamma = 1:  -log(P^t + 1e-7)
//   else:       (P^t)^c / c with c = (1 - gamma) / 2   (gamma = 0: 2 sqrt(P^t))
#pragma once
#include "mmphate/types.hpp"

namespace mmphate {

// M^t by repeated squaring (t >= 1).
Matrix matrix_power(const Matrix& M, int t);

// Applies the gamma transform in place.
void potential_transform(Matrix& Pt, double gamma);

}  // namespace mmphate
