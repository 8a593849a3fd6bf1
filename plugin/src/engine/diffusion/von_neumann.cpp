#include "engine/diffusion/von_neumann.hpp"

#include <cmath>
#include <limits>

#include "mmphate/error.hpp"
#include "engine/diffusion/spectral.hpp"

namespace mmphate {
namespace {

// Sum of |residuals| of the least-squares line through (x, y[x]) for x in [a, b].
double line_abs_error(const std::vector<double>& y, int a, int b) {
  const double n = b - a + 1;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int x = a; x <= b; ++x) {
    sx += x; sy += y[x]; sxx += double(x) * x; sxy += x * y[x];
  }
  const double denom = n * sxx - sx * sx;
  const double slope = denom != 0 ? (n * sxy - sx * sy) / denom : 0.0;
  const double icept = (sy - slope * sx) / n;
  double err = 0;
  for (int x = a; x <= b; ++x) err += std::abs(y[x] - (slope * x + icept));
  return err;
}

}  // namespace

std::vector<double> von_neumann_entropy(const Vector& s, int t_max) {
  std::vector<double> H(static_cast<std::size_t>(t_max));
  const double eps = std::numeric_limits<double>::epsilon();
  Vector st = s;
  for (int i = 0; i < t_max; ++i) {
    const double total = st.sum();
    double h = 0;
    for (Index j = 0; j < st.size(); ++j) {
      const double q = (total > 0 ? st(j) / total : 0.0) + eps;
      h -= q * std::log(q);
    }
    H[i] = h;
    st = st.cwiseProduct(s);
  }
  return H;
}

int knee_index(const std::vector<double>& y) {
  const int n = static_cast<int>(y.size());
  if (n < 3) throw Error("knee detection needs at least 3 points, got " + std::to_string(n));
  int best = 1;
  double best_err = std::numeric_limits<double>::infinity();
  for (int b = 1; b <= n - 2; ++b) {
    const double err = line_abs_error(y, 0, b) + line_abs_error(y, b, n - 1);
    if (err < best_err) { best_err = err; best = b; }
  }
  return best;
}

}  // namespace mmphate
