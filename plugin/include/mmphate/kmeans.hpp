// Seeded k-means for landmark selection: k-means++ seeding and Lloyd iterations on a
// sample, then one assignment pass over every point (blocked GEMM distances).
#pragma once
#include <cstdint>
#include <vector>

#include "mmphate/types.hpp"

namespace mmphate {

struct KMeansOptions {
  int max_iter = 20;
  Index sample_size = 0;   // 0: max(3 * k, 10000) points, or all when fewer
  std::uint64_t seed = 42;
  int threads = 1;
};

struct KMeansResult {
  std::vector<int> labels;  // compacted: clusters are 0 .. n_clusters-1, none empty
  int n_clusters = 0;
  int empty_dropped = 0;
  int iterations = 0;
};

KMeansResult kmeans(const RowMatrix& X, int k, const KMeansOptions& opt);

}  // namespace mmphate
