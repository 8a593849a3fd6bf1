#include "testing/synthetic.hpp"

#include <random>

namespace mmphate {

RowMatrix make_tree_data(Index n, Index dims, int branches, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  RowMatrix X(n, dims);
  const Index per_branch = std::max<Index>(1, n / branches);
  Index row = 0;
  for (int b = 0; b < branches && row < n; ++b) {
    Eigen::RowVectorXd pos(dims);
    if (row == 0) {
      pos.setZero();
    } else {
      std::uniform_int_distribution<Index> pick(0, row - 1);
      pos = X.row(pick(rng));
    }
    Eigen::RowVectorXd drift(dims);
    for (Index d = 0; d < dims; ++d) drift(d) = normal(rng);
    drift *= 0.5 / std::max(1e-12, drift.norm()) ;
    const Index count = (b == branches - 1) ? n - row : std::min(per_branch, n - row);
    for (Index i = 0; i < count; ++i, ++row) {
      for (Index d = 0; d < dims; ++d) pos(d) += drift(d) + 0.05 * normal(rng);
      X.row(row) = pos;
    }
  }
  for (Index i = 0; i < n; ++i)
    for (Index d = 0; d < dims; ++d) X(i, d) += 0.05 * normal(rng);
  return X;
}

RowMatrix make_multislice_trace(Index slices, Index units, Index probes, int communities,
                                std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  RowMatrix profile(communities, probes), velocity(communities, probes);
  for (Index c = 0; c < communities; ++c)
    for (Index p = 0; p < probes; ++p) { profile(c, p) = normal(rng); velocity(c, p) = normal(rng); }
  std::vector<int> community(static_cast<std::size_t>(units));
  for (Index u = 0; u < units; ++u) community[u] = static_cast<int>(u % communities);
  RowMatrix unit_offset(units, probes);
  for (Index u = 0; u < units; ++u)
    for (Index p = 0; p < probes; ++p) unit_offset(u, p) = 0.3 * normal(rng);
  RowMatrix X(slices * units, probes);
  const double step = 6.0 / std::max<Index>(1, slices);
  for (Index s = 0; s < slices; ++s) {
    for (Index c = 0; c < communities; ++c)
      for (Index p = 0; p < probes; ++p) {
        velocity(c, p) = 0.95 * velocity(c, p) + 0.3 * normal(rng);
        profile(c, p) += step * velocity(c, p);
      }
    for (Index u = 0; u < units; ++u)
      for (Index p = 0; p < probes; ++p)
        X(s * units + u, p) = profile(community[u], p) + unit_offset(u, p) + 0.1 * normal(rng);
  }
  return X;
}

}  // namespace mmphate
