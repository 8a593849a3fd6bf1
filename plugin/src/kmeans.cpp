#include "mmphate/kmeans.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>

#include "mmphate/error.hpp"
#include "mmphate/parallel.hpp"

namespace mmphate {
namespace {

// Nearest centre of every row of X; returns the number of changed labels. single: the
// distance GEMM in float (twice the speed; a near-tie may then go to the other centre).
Index assign(const RowMatrix& X, const RowMatrix& C, std::vector<int>& labels, int threads, bool single = false) {
  const Vector cn = C.rowwise().squaredNorm();
  const Index n = X.rows(), block = 512;
  const Index blocks = (n + block - 1) / block;
  std::vector<Index> changed(static_cast<std::size_t>(blocks), 0);
  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Cf =
      single ? C.cast<float>() : Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>();
  const Eigen::VectorXf cnf = single ? cn.cast<float>() : Eigen::VectorXf();
  parallel_for(blocks, threads, [&](Index b) {
    const Index r0 = b * block, rows = std::min(block, n - r0);
    auto relabel = [&](Index r, Index best) {
      if (labels[r0 + r] != static_cast<int>(best)) { labels[r0 + r] = static_cast<int>(best); ++changed[b]; }
    };
    if (single) {
      Eigen::MatrixXf G;
      G.noalias() = Cf * X.middleRows(r0, rows).cast<float>().transpose();
      for (Index r = 0; r < rows; ++r) {
        Index best;
        (cnf - 2.0f * G.col(r)).minCoeff(&best);
        relabel(r, best);
      }
      return;
    }
    Matrix G;
    G.noalias() = C * X.middleRows(r0, rows).transpose();  // k x rows
    for (Index r = 0; r < rows; ++r) {
      Index best;
      (cn - 2.0 * G.col(r)).minCoeff(&best);
      relabel(r, best);
    }
  });
  return std::accumulate(changed.begin(), changed.end(), Index{0});
}

// Squared distance from every row of X to its nearest row of C (blocked GEMM, as assign).
std::vector<double> nearest_sq(const RowMatrix& X, const RowMatrix& C, int threads) {
  const Vector cn = C.rowwise().squaredNorm();
  const Index n = X.rows(), block = 512;
  std::vector<double> d2(static_cast<std::size_t>(n));
  parallel_for((n + block - 1) / block, threads, [&](Index b) {
    const Index r0 = b * block, rows = std::min(block, n - r0);
    Matrix G;
    G.noalias() = C * X.middleRows(r0, rows).transpose();
    for (Index r = 0; r < rows; ++r)
      d2[r0 + r] = std::max(0.0, X.row(r0 + r).squaredNorm() + (cn - 2.0 * G.col(r)).minCoeff());
  });
  return d2;
}

void update_centres(const RowMatrix& X, const std::vector<int>& labels, RowMatrix& C) {
  std::vector<Index> count(static_cast<std::size_t>(C.rows()), 0);
  RowMatrix sum = RowMatrix::Zero(C.rows(), C.cols());
  for (Index i = 0; i < X.rows(); ++i) { sum.row(labels[i]) += X.row(i); ++count[labels[i]]; }
  for (Index c = 0; c < C.rows(); ++c)
    if (count[c] > 0) C.row(c) = sum.row(c) / static_cast<double>(count[c]);
}

}  // namespace

KMeansResult kmeans(const RowMatrix& X, int k, const KMeansOptions& opt) {
  const Index n = X.rows();
  if (k < 1 || k > n)
    throw Error("k-means: cannot form " + std::to_string(k) + " clusters from " + std::to_string(n) + " points");
  std::mt19937_64 rng(opt.seed);

  // Sample on which seeding and Lloyd iterations run.
  Index m = opt.sample_size > 0 ? opt.sample_size : std::max<Index>(3 * static_cast<Index>(k), 10000);
  m = std::min(std::max<Index>(m, k), n);
  std::vector<Index> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  if (m < n) {
    for (Index i = 0; i < m; ++i) {
      std::uniform_int_distribution<Index> pick(i, n - 1);
      std::swap(idx[i], idx[pick(rng)]);
    }
    idx.resize(static_cast<std::size_t>(m));
    std::sort(idx.begin(), idx.end());
  }
  RowMatrix S(m, X.cols());
  for (Index i = 0; i < m; ++i) S.row(i) = X.row(idx[i]);

  // k-means++ seeding (Arthur & Vassilvitskii 2007), around the given centres if any.
  RowMatrix C(k, X.cols());
  std::vector<double> d2(static_cast<std::size_t>(m), std::numeric_limits<double>::infinity());
  std::uniform_int_distribution<Index> first(0, m - 1);
  auto place = [&](int c, Index chosen) {
    C.row(c) = S.row(chosen);
    for (Index i = 0; i < m; ++i) d2[i] = std::min(d2[i], (S.row(i) - C.row(c)).squaredNorm());
  };
  int c = 0;
  if (opt.init && opt.init->rows() > 0) {
    if (opt.init->cols() != X.cols())
      throw Error("k-means: initial centres have " + std::to_string(opt.init->cols()) + " columns for " +
                  std::to_string(X.cols()) + "-dimensional points");
    c = static_cast<int>(std::min<Index>(k, opt.init->rows()));
    C.topRows(c) = opt.init->topRows(c);
    d2 = nearest_sq(S, C.topRows(c), opt.threads);
  } else {
    place(c++, first(rng));
  }
  for (; c < k; ++c) {
    double total = 0;
    for (Index i = 0; i < m; ++i) total += d2[i];
    Index chosen = m - 1;
    if (total <= 0) {  // all remaining points coincide with centres: pick uniformly
      chosen = first(rng);
    } else {
      std::uniform_real_distribution<double> u(0.0, total);
      double target = u(rng), acc = 0;
      for (Index i = 0; i < m; ++i) {
        acc += d2[i];
        if (acc >= target) { chosen = i; break; }
      }
    }
    place(c, chosen);
  }

  KMeansResult res;
  std::vector<int> sl(static_cast<std::size_t>(m), -1);
  for (int it = 0; it < opt.max_iter; ++it) {
    const Index changed = assign(S, C, sl, opt.threads, opt.single_precision);
    res.iterations = it + 1;
    if (changed == 0 || (opt.stop_share > 0 && static_cast<double>(changed) <= opt.stop_share * static_cast<double>(m)))
      break;
    update_centres(S, sl, C);
  }

  std::vector<int> labels(static_cast<std::size_t>(n), -1);
  assign(X, C, labels, opt.threads, opt.single_precision);

  // Compact away empty clusters.
  std::vector<int> remap(static_cast<std::size_t>(k), -1);
  int next = 0;
  for (Index i = 0; i < n; ++i)
    if (remap[labels[i]] < 0) remap[labels[i]] = -2;
  for (int c = 0; c < k; ++c)
    if (remap[c] == -2) remap[c] = next++;
  for (Index i = 0; i < n; ++i) labels[i] = remap[labels[i]];
  res.labels = std::move(labels);
  res.n_clusters = next;
  res.empty_dropped = k - next;
  return res;
}

}  // namespace mmphate
