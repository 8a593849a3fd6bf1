#include "data/normalize.hpp"

#include <cmath>

#include "mmphate/error.hpp"

namespace mmphate {
namespace {

// Magnitudes outside [2^-400, 2^400] are rescaled: squares of sums over thousands of columns
// stay far from overflow and underflow there. float32 data (|x| < 2^128) is never touched.
constexpr int kSafeExponent = 400;

// 2^-e for the binary exponent e of `max_abs`, when it lies outside the safe range; else 1.
double scale_for(double max_abs, bool rescale_small) {
  if (!(max_abs > 0) || !std::isfinite(max_abs)) return 1.0;
  int e = 0;
  std::frexp(max_abs, &e);
  if (e > kSafeExponent || (rescale_small && e < -kSafeExponent)) return std::ldexp(1.0, -e);
  return 1.0;
}

}  // namespace

double distance_safe_scale(const RowMatrix& X) {
  return X.size() == 0 ? 1.0 : scale_for(X.cwiseAbs().maxCoeff(), true);
}

void require_finite(const RowMatrix& X, const std::string& what) {
  Index bad = 0, first_r = -1, first_c = -1;
  for (Index r = 0; r < X.rows(); ++r)
    for (Index c = 0; c < X.cols(); ++c)
      if (!std::isfinite(X(r, c))) {
        if (bad == 0) { first_r = r; first_c = c; }
        ++bad;
      }
  if (bad > 0)
    throw Error(what + " contains " + std::to_string(bad) + " NaN/Inf value(s); first at row " +
                std::to_string(first_r) + ", column " + std::to_string(first_c));
}

Index zscore_rows(RowMatrix& X) {
  Index constant = 0;
  const double m = static_cast<double>(X.cols());
  for (Index r = 0; r < X.rows(); ++r) {
    auto row = X.row(r);
    // Tiny rows keep the absolute constant test below (float32 rounding noise of dead units).
    if (const double s = scale_for(row.cwiseAbs().maxCoeff(), false); s != 1.0) row *= s;
    const double mean = row.sum() / m;
    row.array() -= mean;
    const double sd = std::sqrt(row.squaredNorm() / m);
    // Relative test: float32 traces of a constant unit leave rounding noise after centring.
    if (sd <= 1e-12 * std::max(1.0, std::abs(mean))) {
      row.setZero();
      ++constant;
    } else {
      row /= sd;
    }
  }
  return constant;
}

}  // namespace mmphate
