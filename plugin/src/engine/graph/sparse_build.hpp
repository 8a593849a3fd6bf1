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

// Rows over a local numbering, as CSR: row a holds col/val[start[a], start[a + 1]).
struct LocalRows {
  std::vector<Index> start = {0};
  std::vector<int> col;
  std::vector<double> val;
  Index rows() const { return static_cast<Index>(start.size()) - 1; }
};

// The symmetric closure of directed rows over their own points (columns < rows()): row a =
// {b : a -> b} U {b : b -> a}, columns ascending, a position met more than once keeping its
// largest value (as from_triplets_max does). The interslice rows of one unit, shared by the
// batch scalable kernel and the live window graph.
LocalRows symmetric_union(const LocalRows& directed);

}  // namespace mmphate
