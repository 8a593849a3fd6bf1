#include "mmphate/normalize.hpp"

#include <cmath>

#include "mmphate/error.hpp"

namespace mmphate {

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
