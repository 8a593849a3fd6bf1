// Automatic diffusion time (docs/METHOD.md section 3.2).
// H[i] = -sum q log q with q = s^(i+1) / sum(s^(i+1)) + machine epsilon, s the singular
// values of the diffusion operator, for i = 0 .. t_max-1. t is the knee of H: the break
// index b in 1 .. t_max-2 minimising the summed absolute residuals of two least-squares
// lines fitted to (x, H[x]) for x = 0..b and x = b..t_max-1; the reference uses t = b.
#pragma once
#include <vector>

#include "mmphate/types.hpp"

namespace mmphate {

std::vector<double> von_neumann_entropy(const Vector& singular_values, int t_max);

int knee_index(const std::vector<double>& curve);

}  // namespace mmphate
