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
  // Warm start (the live updater's clusters of the previous frame): these rows (at most k)
  // are the first centres; k-means++ seeds the rest around them. Null: k-means++ from scratch.
  const RowMatrix* init = nullptr;
  // Stop once an iteration moves at most this share of the sample (0: until none moves). A
  // warm start begins near a local optimum; its last iterations move a handful of points.
  double stop_share = 0.0;
  // Distances in float: about twice as fast; the live updater's warm clusterings use it.
  bool single_precision = false;
};

struct KMeansResult {
  std::vector<int> labels;  // compacted: clusters are 0 .. n_clusters-1, none empty
  int n_clusters = 0;
  int empty_dropped = 0;
  int iterations = 0;
};

KMeansResult kmeans(const RowMatrix& X, int k, const KMeansOptions& opt);

}  // namespace mmphate
