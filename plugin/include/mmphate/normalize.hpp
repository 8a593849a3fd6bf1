// Input checks and normalisation of node feature vectors.
#pragma once
#include <string>

#include "mmphate/types.hpp"

namespace mmphate {

// Throws Error if X holds NaN or Inf, reporting how many and the first (row, column).
void require_finite(const RowMatrix& X, const std::string& what);

// z-scores each row across its columns (population std). A constant row becomes all
// zeros, never NaN. Returns the number of constant rows.
Index zscore_rows(RowMatrix& X);

}  // namespace mmphate
