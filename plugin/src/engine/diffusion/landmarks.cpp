#include "engine/diffusion/landmarks.hpp"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "engine/diffusion/diffusion.hpp"
#include "mmphate/error.hpp"
#include "engine/diffusion/kmeans.hpp"
#include "mmphate/log.hpp"
#include "util/parallel.hpp"
#include "engine/diffusion/spectral.hpp"

namespace mmphate {

RowMatrix spectral_features(const SparseMatrix& K, int n_svd, std::uint64_t seed, int threads,
                            int power_iterations, const RowMatrix* start, RowMatrix* basis_out) {
  // The eigenvectors of A = D^-1/2 K D^-1/2 (symmetric_diffusion), with A applied on the fly.
  const Vector inv_sqrt_deg = kernel_degrees(K).cwiseSqrt().cwiseInverse();
  const int k = static_cast<int>(std::min<Index>(n_svd, K.rows() - 1));
  const EigenPairs ep = top_eigenpairs_scaled(K, inv_sqrt_deg, k, seed, threads, power_iterations, 10, start);
  RowMatrix F = inv_sqrt_deg.asDiagonal() * ep.vectors * ep.values.asDiagonal();
  if (basis_out) *basis_out = ep.vectors;
  return F;
}

namespace {

// W^T (N x L): row j holds the kernel mass of node j in each landmark, sum over the nodes i
// of landmark l of K(j, i). Rows in parallel blocks, each with a dense accumulator.
SparseMatrix cluster_sums(const SparseMatrix& K, const std::vector<int>& cluster, int count, int threads) {
  const Index n = K.rows(), blocks = std::max<Index>(1, std::min<Index>(n / 512, 16 * resolve_threads(threads)));
  struct Part {
    std::vector<Index> len;
    std::vector<int> col;
    std::vector<double> val;
  };
  std::vector<Part> part(static_cast<std::size_t>(blocks));
  parallel_for(blocks, threads, [&](Index b) {
    const Index r0 = n * b / blocks, r1 = n * (b + 1) / blocks;
    std::vector<double> acc(static_cast<std::size_t>(count), 0.0);
    std::vector<char> seen(static_cast<std::size_t>(count), 0);
    std::vector<int> touched;
    Part& p = part[b];
    for (Index j = r0; j < r1; ++j) {
      for (SparseMatrix::InnerIterator it(K, j); it; ++it) {
        const int l = cluster[it.col()];
        if (!seen[l]) { seen[l] = 1; touched.push_back(l); }
        acc[l] += it.value();
      }
      std::sort(touched.begin(), touched.end());
      for (int l : touched) {
        p.col.push_back(l);
        p.val.push_back(acc[l]);
        acc[l] = 0.0;
        seen[l] = 0;
      }
      p.len.push_back(static_cast<Index>(touched.size()));
      touched.clear();
    }
  });
  SparseMatrix S(n, count);
  Index nnz = 0;
  for (const auto& p : part) nnz += static_cast<Index>(p.col.size());
  S.resizeNonZeros(nnz);
  Index row = 0, pos = 0;
  S.outerIndexPtr()[0] = 0;
  for (const auto& p : part) {
    std::copy(p.col.begin(), p.col.end(), S.innerIndexPtr() + pos);
    std::copy(p.val.begin(), p.val.end(), S.valuePtr() + pos);
    for (Index len : p.len) {
      pos += len;
      S.outerIndexPtr()[++row] = static_cast<int>(pos);
    }
  }
  return S;
}

}  // namespace

Landmarks landmark_operators(const SparseMatrix& K, std::vector<int> cluster, int count, int threads) {
  // With W the cluster-summed kernel rows (L x N) and K symmetric: P_NL = D^-1 W^T,
  // P_LN = diag(w)^-1 W and P_L = diag(w)^-1 G with G = W D^-1 W^T. G is accumulated densely,
  // one landmark at a time (sum over the nodes j touching landmark l of W(l, j) / d_j times
  // row j of W^T), instead of as a product of two sparse operators.
  Landmarks L;
  L.cluster = std::move(cluster);
  L.count = count;
  SparseMatrix Wt = cluster_sums(K, L.cluster, count, threads);
  SparseMatrix W = Wt.transpose();
  const Vector degree = Wt * Vector::Ones(count);
  L.weight = W * Vector::Ones(K.rows());
  L.op.resize(count, count);
  parallel_for(count, threads, [&](Index l) {
    // Column l of P_L (G symmetric): G(m, l) / w_m.
    Vector g = Vector::Zero(count);
    for (SparseMatrix::InnerIterator it(W, l); it; ++it) {
      const double c = it.value() / degree(it.col());
      for (SparseMatrix::InnerIterator jt(Wt, it.col()); jt; ++jt) g(jt.col()) += c * jt.value();
    }
    L.op.col(l) = g.cwiseQuotient(L.weight);
  });
  normalize_rows(Wt);
  normalize_rows(W);
  L.node_to_landmark = std::move(Wt);
  L.landmark_to_node = std::move(W);
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

EigenPairs Landmarks::dominant_eigen(double lower) const {
  return mmphate::symmetric_eigen_above(symmetric_conjugate(*this), lower);
}

namespace {
// Centres of the previous clusters in the new features: the mean of each surviving cluster's
// nodes, at most n_landmark of them (the most populous; k-means++ adds the rest).
RowMatrix prior_centres(const RowMatrix& F, const std::vector<int>& prior, int n_landmark) {
  std::unordered_map<int, Index> slot;
  std::vector<Index> count;
  std::vector<Eigen::RowVectorXd> sums;
  for (Index i = 0; i < F.rows(); ++i) {
    if (prior[i] < 0) continue;
    auto it = slot.emplace(prior[i], static_cast<Index>(count.size())).first;
    if (it->second == static_cast<Index>(count.size())) {
      count.push_back(0);
      sums.push_back(Eigen::RowVectorXd::Zero(F.cols()));
    }
    sums[it->second] += F.row(i);
    ++count[it->second];
  }
  std::vector<Index> order(count.size());
  for (std::size_t c = 0; c < order.size(); ++c) order[c] = static_cast<Index>(c);
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return count[a] > count[b]; });
  order.resize(std::min<std::size_t>(order.size(), static_cast<std::size_t>(std::max(n_landmark, 0))));
  RowMatrix C(static_cast<Index>(order.size()), F.cols());
  for (std::size_t c = 0; c < order.size(); ++c) C.row(static_cast<Index>(c)) = sums[order[c]] / static_cast<double>(count[order[c]]);
  return C;
}
}  // namespace

KMeansResult cluster_landmarks(const SparseMatrix& K, int n_landmark, int n_svd, std::uint64_t seed, int threads,
                               StageTimes* times, int power_iterations, ClusterWarmStart* warm) {
  StageTimes local;
  StageTimes& t = times ? *times : local;
  if (warm && ((warm->basis.cols() > 0 && warm->basis.rows() != K.rows()) ||
               static_cast<Index>(warm->prior.size()) != K.rows()))
    throw Error("cluster_landmarks: warm start with " + std::to_string(warm->prior.size()) + " prior labels and " +
                std::to_string(warm->basis.rows()) + " basis rows for a kernel of " + std::to_string(K.rows()) + " nodes");
  RowMatrix F;
  {
    ScopedStage st(t, "landmarks.spectral");
    const bool from_basis = warm && warm->basis.cols() > 0;
    F = spectral_features(K, n_svd, seed, threads, from_basis ? warm->power_iterations : power_iterations,
                          from_basis ? &warm->basis : nullptr, warm ? &warm->basis : nullptr);
  }
  KMeansResult km;
  {
    ScopedStage st(t, "landmarks.kmeans");
    KMeansOptions ko;
    ko.seed = seed + 1;
    ko.threads = threads;
    RowMatrix init;
    if (warm) {
      init = prior_centres(F, warm->prior, n_landmark);
      ko.init = &init;
      ko.stop_share = warm->stop_share;
      ko.max_iter = warm->max_iter;
      ko.single_precision = true;
    }
    km = kmeans(F, n_landmark, ko);
  }
  if (km.empty_dropped > 0)
    logger()->info("landmarks: {} of {} clusters came out empty and were dropped", km.empty_dropped, n_landmark);
  return km;
}

Landmarks build_landmarks(const SparseMatrix& K, int n_landmark, int n_svd, std::uint64_t seed,
                          int threads, StageTimes* times, int power_iterations) {
  KMeansResult km = cluster_landmarks(K, n_landmark, n_svd, seed, threads, times, power_iterations);
  StageTimes local;
  ScopedStage st(times ? *times : local, "landmarks.operators");
  return landmark_operators(K, std::move(km.labels), km.n_clusters, threads);
}

}  // namespace mmphate
