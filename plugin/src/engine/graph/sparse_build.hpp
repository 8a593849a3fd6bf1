// Assembling large sparse matrices from unordered (row, col, value) entries.
// Eigen's setFromTriplets sorts through two temporary transposes; for the multislice
// kernel's ~200 entries per node that was the kernel's slowest step (1.7 s of 2.5 s at
// 40k nodes). This is a counting sort by row plus a per-row sort, rows in parallel.
#pragma once
#include <vector>

#include "mmphate/types.hpp"

namespace mmphate {

// n x n row-major matrix; duplicate positions keep the largest value.
SparseMatrix from_triplets_max(Index n, const std::vector<Triplet>& entries, int threads);

}  // namespace mmphate
