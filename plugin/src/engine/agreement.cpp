#include "mmphate/agreement.hpp"

#include <algorithm>

#include "mmphate/error.hpp"
#include "engine/graph/knn.hpp"

namespace mmphate {

double knn_agreement(const RowMatrix& a, const RowMatrix& b, int k, int threads) {
  if (a.rows() != b.rows())
    throw Error("knn_agreement: embeddings have " + std::to_string(a.rows()) + " and " +
                std::to_string(b.rows()) + " rows");
  const Neighbors na = knn_search(a, k, KnnMethod::automatic, threads);
  const Neighbors nb = knn_search(b, k, KnnMethod::automatic, threads);
  double total = 0;
  std::vector<int> x(static_cast<std::size_t>(k)), y(static_cast<std::size_t>(k));
  for (Index i = 0; i < a.rows(); ++i) {
    for (int j = 0; j < k; ++j) { x[j] = na.at(i, j); y[j] = nb.at(i, j); }
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    std::vector<int> common;
    std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(common));
    total += static_cast<double>(common.size()) / k;
  }
  return total / static_cast<double>(a.rows());
}

}  // namespace mmphate
