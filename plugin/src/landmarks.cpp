#include "mmphate/landmarks.hpp"

#include <algorithm>
#include <functional>

#include "mmphate/diffusion.hpp"
#include "mmphate/kmeans.hpp"
#include "mmphate/log.hpp"
#include "mmphate/spectral.hpp"

namespace mmphate {

RowMatrix spectral_features(const SparseMatrix& K, int n_svd, std::uint64_t seed, int threads,
                            int power_iterations) {
  const SparseMatrix A = symmetric_diffusion(K);
  const Vector inv_sqrt_deg = kernel_degrees(K).cwiseSqrt().cwiseInverse();
  const int k = static_cast<int>(std::min<Index>(n_svd, K.rows() - 1));
  const EigenPairs ep = top_eigenpairs(A, k, seed, threads, power_iterations);
  RowMatrix F = inv_sqrt_deg.asDiagonal() * ep.vectors * ep.values.asDiagonal();
  return F;
}

Landmarks landmark_operators(const SparseMatrix& K, std::vector<int> cluster, int count) {
  const Index n = K.rows();
  std::vector<Triplet> trip;
  trip.reserve(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) trip.emplace_back(static_cast<int>(i), cluster[i], 1.0);
  SparseMatrix C(n, count);
  C.setFromTriplets(trip.begin(), trip.end());

  Landmarks L;
  L.cluster = std::move(cluster);
  L.count = count;
  L.node_to_landmark = K * C;
  normalize_rows(L.node_to_landmark);
  SparseMatrix Ct = C.transpose();
  L.landmark_to_node = Ct * K;
  L.weight = L.landmark_to_node * Vector::Ones(n);
  normalize_rows(L.landmark_to_node);
  const SparseMatrix prod = L.landmark_to_node * L.node_to_landmark;
  L.op = Matrix(prod);
  return L;
}

namespace {
// S = w^1/2 P_L w^-1/2, symmetrised exactly against round-off.
Matrix symmetric_conjugate(const Landmarks& L) {
  const Vector sq = L.weight.cwiseSqrt();
  Matrix S = sq.asDiagonal() * L.op * sq.cwiseInverse().asDiagonal();
  return 0.5 * (S + Matrix(S.transpose()));
}
}  // namespace

EigenPairs Landmarks::symmetric_eigen() const { return mmphate::symmetric_eigen(symmetric_conjugate(*this)); }

Landmarks build_landmarks(const SparseMatrix& K, int n_landmark, int n_svd, std::uint64_t seed,
                          int threads, StageTimes* times, int power_iterations) {
  StageTimes local;
  StageTimes& t = times ? *times : local;
  RowMatrix F;
  {
    ScopedStage st(t, "landmarks.spectral");
    F = spectral_features(K, n_svd, seed, threads, power_iterations);
  }
  KMeansResult km;
  {
    ScopedStage st(t, "landmarks.kmeans");
    KMeansOptions ko;
    ko.seed = seed + 1;
    ko.threads = threads;
    km = kmeans(F, n_landmark, ko);
  }
  if (km.empty_dropped > 0)
    logger()->info("landmarks: {} of {} clusters came out empty and were dropped", km.empty_dropped, n_landmark);
  ScopedStage st(t, "landmarks.operators");
  return landmark_operators(K, std::move(km.labels), km.n_clusters);
}

}  // namespace mmphate
