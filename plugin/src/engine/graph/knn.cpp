#include "engine/graph/knn.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <nanoflann.hpp>
#include <sstream>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "data/normalize.hpp"
#include "util/parallel.hpp"

namespace mmphate {
namespace {

// nanoflann dataset adaptor over a row-major Eigen matrix.
struct RowMatrixAdaptor {
  const RowMatrix& m;
  std::size_t kdtree_get_point_count() const { return static_cast<std::size_t>(m.rows()); }
  double kdtree_get_pt(std::size_t i, std::size_t d) const {
    return m(static_cast<Index>(i), static_cast<Index>(d));
  }
  template <class BBox>
  bool kdtree_get_bbox(BBox&) const { return false; }
};

using KdTree = nanoflann::KDTreeSingleIndexAdaptor<
    nanoflann::L2_Simple_Adaptor<double, RowMatrixAdaptor>, RowMatrixAdaptor, -1, int>;

double exact_sq_distance(const RowMatrix& X, Index i, Index j) {
  return (X.row(i) - X.row(j)).squaredNorm();
}

constexpr Index kBlockRows = 256;

struct SmallestScratch {
  std::vector<double> sample, kept;
};

// The m-th smallest of v (1-based), exactly the value std::nth_element finds, at a fraction of
// its cost when m << v.size() (the multislice kernel's 208 of 5,000 slice-points): a strided
// sample gives a cut that about twice m values pass; if at least m pass, the m smallest are all
// among them, and only those are selected from. Otherwise the full selection runs.
double mth_smallest(const std::vector<double>& v, int m, SmallestScratch& s) {
  const std::size_t n = v.size(), want = static_cast<std::size_t>(m);
  constexpr std::size_t stride = 8;
  if (n >= 8 * want && n >= 1024) {
    s.sample.clear();
    for (std::size_t j = 0; j < n; j += stride) s.sample.push_back(v[j]);
    const std::size_t rank = std::min(s.sample.size() - 1, 2 * want / stride + 8);
    std::nth_element(s.sample.begin(), s.sample.begin() + static_cast<std::ptrdiff_t>(rank), s.sample.end());
    const double cut = s.sample[rank];
    s.kept.resize(n);
    std::size_t kept = 0;
    for (std::size_t j = 0; j < n; ++j) {  // branch-free append of the values <= cut
      s.kept[kept] = v[j];
      kept += v[j] <= cut;
    }
    if (kept >= want) {
      std::nth_element(s.kept.begin(), s.kept.begin() + static_cast<std::ptrdiff_t>(want - 1),
                       s.kept.begin() + static_cast<std::ptrdiff_t>(kept));
      return s.kept[want - 1];
    }
  }
  s.kept.assign(v.begin(), v.end());
  std::nth_element(s.kept.begin(), s.kept.begin() + static_cast<std::ptrdiff_t>(want - 1), s.kept.end());
  return s.kept[want - 1];
}

}  // namespace

struct KnnIndex::Tree {
  RowMatrixAdaptor adaptor;
  KdTree tree;
  explicit Tree(const RowMatrix& X)
      : adaptor{X},
        tree(static_cast<int>(X.cols()), adaptor, nanoflann::KDTreeSingleIndexAdaptorParams(16)) {
    tree.buildIndex();
  }
};

KnnMethod choose_knn_method(Index n, Index dims, KnnMethod requested) {
  if (requested != KnnMethod::automatic) return requested;
  // Brute force is exact and cheap on small inputs. Above, the k-d tree is built and
  // KnnIndex::calibrate() times it against brute force on the actual queries.
  (void)dims;
  if (n <= 2000) return KnnMethod::exact;
  return KnnMethod::kdtree;
}

KnnIndex::KnnIndex(const RowMatrix& X, KnnMethod method, int threads)
    : X_(X), requested_(method), method_(choose_knn_method(X.rows(), X.cols(), method)), threads_(threads) {
  if (X.rows() < 2) throw Error("nearest-neighbour search needs at least 2 points, got " +
                                std::to_string(X.rows()));
  // NaN/Inf, or squared distances that overflow, would leave the searches without candidates.
  if (!X.allFinite()) throw Error("nearest-neighbour search: the points hold NaN/Inf values");
  if (distance_safe_scale(X) < 1.0) {
    std::ostringstream os;
    os << "nearest-neighbour search: values up to " << X.cwiseAbs().maxCoeff()
       << " in magnitude would overflow squared distances (allowed: |x| < 2^400 ~ 2.6e120; "
          "scale the data, e.g. with distance_safe_scale in normalize.hpp)";
    throw Error(os.str());
  }
  if (method_ == KnnMethod::kdtree) tree_ = new Tree(X_);
}

KnnIndex::~KnnIndex() { delete tree_; }

Neighbors KnnIndex::knn_all(int k) const {
  std::vector<Index> rows(static_cast<std::size_t>(X_.rows()));
  for (Index i = 0; i < X_.rows(); ++i) rows[i] = i;
  return knn_rows(rows, k);
}

Neighbors KnnIndex::knn_rows(const std::vector<Index>& rows, int k) const {
  const Index n = X_.rows();
  if (k < 1 || k >= n)
    throw Error("k = " + std::to_string(k) + " nearest neighbours requested but there are only " +
                std::to_string(n) + " points (k must be < number of points)");
  if (!calibrated_) calibrate(rows, k);
  return search(rows, k, method_);
}

// The k-d tree wins by orders of magnitude on data of low intrinsic dimension (10-170x on the
// branching-tree benchmarks) and loses by as much on noisy traces of 25-40 dimensions with
// large k. Neither size nor nominal dimension predicts which, so `automatic` times both back
// ends on a sample of the queries and keeps the faster.
void KnnIndex::calibrate(const std::vector<Index>& rows, int k) const {
  calibrated_ = true;
  if (requested_ != KnnMethod::automatic || method_ != KnnMethod::kdtree) return;
  const std::size_t m = std::min<std::size_t>(rows.size(), 64);
  if (m == rows.size()) return;  // too few queries to be worth timing
  std::vector<Index> sample(m);
  for (std::size_t i = 0; i < m; ++i) sample[i] = rows[i * rows.size() / m];
  // Brute force first (predictable); then tree queries one by one, given at most the same time.
  const auto t0 = std::chrono::steady_clock::now();
  search(sample, k, KnnMethod::exact);
  const double brute = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<int> idx(static_cast<std::size_t>(k + 1));
  std::vector<double> d2(static_cast<std::size_t>(k + 1));
  const auto t1 = std::chrono::steady_clock::now();
  double tree = 0;
  for (std::size_t i = 0; i < m && tree <= brute; ++i) {
    nanoflann::KNNResultSet<double, int> rs(static_cast<std::size_t>(k + 1));
    rs.init(idx.data(), d2.data());
    tree_->tree.findNeighbors(rs, X_.row(sample[i]).data(), nanoflann::SearchParams());
    tree = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  }
  // brute force ran on threads_ threads, the tree queries on one
  if (tree / std::max(1, resolve_threads(threads_)) > brute) method_ = KnnMethod::exact;
  logger()->debug("kNN back end: k-d tree {:.2e} s vs brute force {:.2e} s per {} queries -> {}", tree, brute, m,
                  to_string(method_));
}

Neighbors KnnIndex::search(const std::vector<Index>& rows, int k, KnnMethod method) const {
  const Index n = X_.rows();
  const Index q = static_cast<Index>(rows.size());
  Neighbors out;
  out.n = q;
  out.k = k;
  out.index.resize(static_cast<std::size_t>(q) * k);
  out.distance.resize(static_cast<std::size_t>(q) * k);

  if (method == KnnMethod::kdtree) {
    parallel_for(q, threads_, [&](Index r) {
      const Index i = rows[r];
      std::vector<int> idx(k + 1);
      std::vector<double> d2(k + 1);
      nanoflann::KNNResultSet<double, int> rs(static_cast<std::size_t>(k + 1));
      rs.init(idx.data(), d2.data());
      tree_->tree.findNeighbors(rs, X_.row(i).data(), nanoflann::SearchParams());
      int w = 0;
      bool self_seen = false;
      const int found = static_cast<int>(rs.size());
      for (int j = 0; j < found && w < k; ++j) {
        if (idx[j] == static_cast<int>(i) && !self_seen) { self_seen = true; continue; }
        out.index[r * k + w] = idx[j];
        out.distance[r * k + w] = std::sqrt(d2[j]);
        ++w;
      }
      if (w < k) throw Error("nearest-neighbour search: the k-d tree found " + std::to_string(w) + " of " +
                             std::to_string(k) + " neighbours of point " + std::to_string(i));
    });
    return out;
  }

  // Brute force by blocks: squared distances from a GEMM rank candidates; the best
  // k + margin candidates are re-measured exactly (GEMM distances lose digits to
  // cancellation) and the k nearest kept. Each worker keeps its buffers across blocks (the
  // GEMM block alone is 10 MB at 5,000 points; allocated per block, its page faults cost as
  // much as the search on the VMs we run on).
  const Vector sq = X_.rowwise().squaredNorm();
  const double sq_max = sq.maxCoeff();
  const Index blocks = (q + kBlockRows - 1) / kBlockRows;
  const int margin = 8;
  const int m = static_cast<int>(std::min<Index>(k + margin, n - 1));
  std::atomic<Index> next{0};
  parallel_workers(blocks, threads_, [&](Index) {
    RowMatrix Q;
    RowMatrix G;  // row-major: each query's distances are read along a row
    std::vector<double> d2(static_cast<std::size_t>(n));
    SmallestScratch select;
    std::vector<std::pair<double, int>> exact;
    for (Index b = next++; b < blocks; b = next++) {
      const Index r0 = b * kBlockRows, count = std::min(kBlockRows, q - r0);
      Q.resize(count, X_.cols());
      for (Index r = 0; r < count; ++r) Q.row(r) = X_.row(rows[r0 + r]);
      G.resize(count, n);
      G.noalias() = Q * X_.transpose();  // count x n
      for (Index r = 0; r < count; ++r) {
        const Index i = rows[r0 + r];
        for (Index j = 0; j < n; ++j) {
          const double v = sq(j) + sq(i) - 2.0 * G(r, j);
          // NaN (Inf - Inf) would break the selection's ordering: rank it last.
          d2[j] = std::isnan(v) ? std::numeric_limits<double>::infinity() : v;
        }
        d2[i] = std::numeric_limits<double>::infinity();
        // Every point whose GEMM value could hide a true distance below the cut (cancellation
        // error grows with the squared norms) is re-measured exactly.
        const double cut = mth_smallest(d2, m, select) + 1e-13 * (sq(i) + sq_max);
        exact.clear();
        for (Index j = 0; j < n; ++j)
          if (j != i && d2[j] <= cut) exact.emplace_back(std::sqrt(exact_sq_distance(X_, i, j)), static_cast<int>(j));
        if (static_cast<int>(exact.size()) < k) {  // never read past the candidates: measure every point
          exact.clear();
          for (Index j = 0; j < n; ++j)
            if (j != i) exact.emplace_back(std::sqrt(exact_sq_distance(X_, i, j)), static_cast<int>(j));
        }
        std::sort(exact.begin(), exact.end());
        for (int j = 0; j < k; ++j) {
          out.index[(r0 + r) * k + j] = exact[j].second;
          out.distance[(r0 + r) * k + j] = exact[j].first;
        }
      }
    }
  });
  return out;
}

RadiusNeighbors KnnIndex::radius_all(const std::vector<double>& radius) const {
  const Index n = X_.rows();
  if (static_cast<Index>(radius.size()) != n) throw Error("radius_all: one radius per point required");
  RadiusNeighbors out(static_cast<std::size_t>(n));

  if (method_ == KnnMethod::kdtree) {
    parallel_for(n, threads_, [&](Index i) {
      std::vector<std::pair<int, double>> matches;
      nanoflann::SearchParams params;
      params.sorted = false;
      const double r = radius[i];
      // nanoflann's radius test is strict (<) and its squared distances carry round-off:
      // search a slightly wider ball, then keep exactly the points with distance <= r.
      const double r2 = std::isinf(r) ? r : r * r * (1.0 + 1e-12) + std::numeric_limits<double>::min();
      tree_->tree.radiusSearch(X_.row(i).data(), r2, matches, params);
      auto& row = out[i];
      row.reserve(matches.size());
      for (auto& m : matches) {
        if (m.first == static_cast<int>(i)) continue;
        const double d = std::sqrt(exact_sq_distance(X_, i, m.first));
        if (d <= r) row.emplace_back(m.first, d);
      }
    });
    return out;
  }

  const Vector sq = X_.rowwise().squaredNorm();
  const Index blocks = (n + kBlockRows - 1) / kBlockRows;
  parallel_for(blocks, threads_, [&](Index b) {
    const Index r0 = b * kBlockRows, rows = std::min(kBlockRows, n - r0);
    Matrix G = X_.middleRows(r0, rows) * X_.transpose();
    for (Index r = 0; r < rows; ++r) {
      const Index i = r0 + r;
      const double rad = radius[i];
      // Loose pre-filter on GEMM distances (absolute slack covers cancellation), exact test after.
      const double slack = 1e-9 * (sq(i) + sq.maxCoeff()) + 1e-12;
      auto& row = out[i];
      for (Index j = 0; j < n; ++j) {
        if (j == i) continue;
        const double approx = sq(i) + sq(j) - 2.0 * G(r, j);
        if (!std::isinf(rad) && approx > rad * rad * (1 + 1e-9) + slack) continue;
        const double d = std::sqrt(exact_sq_distance(X_, i, j));
        if (d <= rad) row.emplace_back(static_cast<int>(j), d);
      }
    }
  });
  return out;
}

Neighbors knn_search(const RowMatrix& X, int k, KnnMethod method, int threads) {
  KnnIndex index(X, method, threads);
  return index.knn_all(k);
}

double knn_overlap(const Neighbors& a, const RowMatrix& B, int threads) {
  if (a.n != B.rows())
    throw Error("knn_overlap: layouts of " + std::to_string(a.n) + " and " + std::to_string(B.rows()) + " rows");
  const int k = a.k;
  if (k < 1) return 1.0;
  const Neighbors b = knn_search(B, k, KnnMethod::automatic, threads);
  std::size_t kept = 0;
  std::vector<int> row(static_cast<std::size_t>(k));
  for (Index i = 0; i < a.n; ++i) {
    for (int j = 0; j < k; ++j) row[static_cast<std::size_t>(j)] = b.at(i, j);
    std::sort(row.begin(), row.end());
    for (int j = 0; j < k; ++j) kept += std::binary_search(row.begin(), row.end(), a.at(i, j));
  }
  return static_cast<double>(kept) / (static_cast<double>(a.n) * k);
}

}  // namespace mmphate
