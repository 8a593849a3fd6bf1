#include "engine/diffusion/kmeans.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>

#include "mmphate/error.hpp"
#include "util/parallel.hpp"

namespace mmphate {
namespace {

constexpr Index kBlock = 512;  // rows per distance GEMM

// For every row i of X, its nearest row of C: visit(block, i, best, min_c ||c||^2 - 2 x_i.c),
// the squared distance less ||x_i||^2. Blocked GEMM distances; single: the GEMM in float (twice
// the speed; a near-tie may then go to the other centre).
template <class Visit>
void for_each_nearest(const RowMatrix& X, const RowMatrix& C, int threads, bool single, Visit visit) {
  using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Vector cn = C.rowwise().squaredNorm();
  const RowMatrixF Cf = single ? RowMatrixF(C.cast<float>()) : RowMatrixF();
  const Eigen::VectorXf cnf = single ? Eigen::VectorXf(cn.cast<float>()) : Eigen::VectorXf();
  const Index n = X.rows();
  parallel_for((n + kBlock - 1) / kBlock, threads, [&](Index b) {
    const Index r0 = b * kBlock, rows = std::min(kBlock, n - r0);
    Index best;
    if (single) {
      Eigen::MatrixXf G;
      G.noalias() = Cf * X.middleRows(r0, rows).cast<float>().transpose();  // k x rows
      for (Index r = 0; r < rows; ++r) {
        const double d = (cnf - 2.0f * G.col(r)).minCoeff(&best);
        visit(b, r0 + r, best, d);
      }
    } else {
      Matrix G;
      G.noalias() = C * X.middleRows(r0, rows).transpose();  // k x rows
      for (Index r = 0; r < rows; ++r) {
        const double d = (cn - 2.0 * G.col(r)).minCoeff(&best);
        visit(b, r0 + r, best, d);
      }
    }
  });
}

// Nearest centre of every row of X; returns the number of changed labels.
Index assign(const RowMatrix& X, const RowMatrix& C, std::vector<int>& labels, int threads, bool single = false) {
  std::vector<Index> changed(static_cast<std::size_t>((X.rows() + kBlock - 1) / kBlock), 0);
  for_each_nearest(X, C, threads, single, [&](Index b, Index i, Index best, double) {
    if (labels[i] != static_cast<int>(best)) { labels[i] = static_cast<int>(best); ++changed[b]; }
  });
  return std::accumulate(changed.begin(), changed.end(), Index{0});
}

// Squared distance from every row of X to its nearest row of C.
std::vector<double> nearest_sq(const RowMatrix& X, const RowMatrix& C, int threads) {
  std::vector<double> d2(static_cast<std::size_t>(X.rows()));
  for_each_nearest(X, C, threads, false, [&](Index, Index i, Index, double d) {
    d2[i] = std::max(0.0, X.row(i).squaredNorm() + d);
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
