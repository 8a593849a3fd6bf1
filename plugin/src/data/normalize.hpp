// Input checks and normalisation of node feature vectors.
#pragma once
#include <string>

#include "mmphate/types.hpp"

namespace mmphate {

// Throws Error if X holds NaN or Inf, reporting how many and the first (row, column).
void require_finite(const RowMatrix& X, const std::string& what);

// z-scores each row across its columns (population std). A constant row becomes all
// zeros, never NaN. Rows of finite values too large to square (|x| above ~1e120) are first
// divided by a power of two (exact, and the z-score does not depend on the row's scale),
// so they are standardised like any other row, not flattened. Returns the number of
// constant rows.
Index zscore_rows(RowMatrix& X);

// Squared distances between rows overflow double for |x| above ~1e150 (and underflow to 0
// for |x| below ~1e-160). Returns a power of two s (1 when X is in range) such that s * X has
// its largest magnitude near 1: multiplying by it is exact, and every kernel of the engine
// is invariant to a global scale, so the embedding of s * X is the embedding of X.
double distance_safe_scale(const RowMatrix& X);

}  // namespace mmphate
