#include "engine/graph/sparse_build.hpp"

#include <algorithm>

#include "util/parallel.hpp"

namespace mmphate {

SparseMatrix from_triplets_max(Index n, const std::vector<Triplet>& entries, int threads) {
  // Counting sort by row.
  std::vector<Index> start(static_cast<std::size_t>(n) + 1, 0);
  for (const auto& e : entries) ++start[e.row() + 1];
  for (Index r = 0; r < n; ++r) start[r + 1] += start[r];
  std::vector<std::pair<int, double>> slot(entries.size());
  {
    std::vector<Index> fill(start.begin(), start.end() - 1);
    for (const auto& e : entries) slot[fill[e.row()]++] = {static_cast<int>(e.col()), e.value()};
  }
  // Per row: sort by column, merge duplicates with max.
  std::vector<Index> kept(static_cast<std::size_t>(n), 0);
  parallel_for(n, threads, [&](Index r) {
    auto b = slot.begin() + start[r], e = slot.begin() + start[r + 1];
    std::sort(b, e, [](const auto& x, const auto& y) { return x.first < y.first; });
    auto out = b;
    for (auto it = b; it != e; ++it) {
      if (out != b && (out - 1)->first == it->first) {
        (out - 1)->second = std::max((out - 1)->second, it->second);
      } else {
        *out++ = *it;
      }
    }
    kept[r] = out - b;
  });
  SparseMatrix K(n, n);
  Index nnz = 0;
  for (Index r = 0; r < n; ++r) nnz += kept[r];
  K.resizeNonZeros(nnz);
  Index pos = 0;
  K.outerIndexPtr()[0] = 0;
  for (Index r = 0; r < n; ++r) {
    for (Index j = 0; j < kept[r]; ++j) {
      K.innerIndexPtr()[pos] = slot[start[r] + j].first;
      K.valuePtr()[pos] = slot[start[r] + j].second;
      ++pos;
    }
    K.outerIndexPtr()[r + 1] = static_cast<int>(pos);
  }
  return K;
}

}  // namespace mmphate
