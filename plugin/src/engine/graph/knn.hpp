// Nearest-neighbour search over the rows of a matrix (Euclidean).
// Two back ends with identical results up to ties:
//  * exact: blocked brute force (squared distances via one GEMM per block of rows, then
//    re-computed directly for the selected candidates so reported distances are exact);
//  * kdtree: nanoflann's k-d tree, exact as well, far faster on large, low-dimensional data.
// KnnMethod::automatic: brute force up to 2000 points; above, whichever back end is faster on
// a timed sample of the first search's queries.
#pragma once
#include <utility>
#include <vector>

#include "mmphate/options.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

// Row-major n x k table of neighbours, self excluded, ascending by distance.
struct Neighbors {
  Index n = 0;
  int k = 0;
  std::vector<int> index;
  std::vector<double> distance;
  int at(Index i, int j) const { return index[static_cast<std::size_t>(i) * k + j]; }
  double dist(Index i, int j) const { return distance[static_cast<std::size_t>(i) * k + j]; }
};

// (neighbour, exact distance) lists, one per query point, self excluded, unsorted.
using RadiusNeighbors = std::vector<std::vector<std::pair<int, double>>>;

KnnMethod choose_knn_method(Index n, Index dims, KnnMethod requested);

class KnnIndex {
 public:
  // X must outlive the index. Its values must be finite and below 2^400 in magnitude, so
  // squared distances cannot overflow (normalize.hpp's distance_safe_scale brings data in
  // range); otherwise the constructor throws mmphate::Error.
  KnnIndex(const RowMatrix& X, KnnMethod method, int threads);
  ~KnnIndex();
  KnnIndex(const KnnIndex&) = delete;
  KnnIndex& operator=(const KnnIndex&) = delete;

  // The back end in use (for `automatic`, decided by timing at the first search).
  KnnMethod method() const { return method_; }

  // The k nearest other points of every point. Requires k < n.
  Neighbors knn_all(int k) const;

  // The k nearest other points of the listed points only (row r of the result is rows[r]).
  Neighbors knn_rows(const std::vector<Index>& rows, int k) const;

  // Every other point within radius[i] (inclusive) of point i.
  RadiusNeighbors radius_all(const std::vector<double>& radius) const;

 private:
  struct Tree;
  void calibrate(const std::vector<Index>& rows, int k) const;
  Neighbors search(const std::vector<Index>& rows, int k, KnnMethod method) const;

  const RowMatrix& X_;
  KnnMethod requested_;
  mutable KnnMethod method_;
  mutable bool calibrated_ = false;
  int threads_;
  Tree* tree_ = nullptr;
};

// Convenience: the k nearest other rows of X.
Neighbors knn_search(const RowMatrix& X, int k, KnnMethod method = KnnMethod::automatic,
                     int threads = 1);

// Mean share of each row's a.k nearest other rows in a layout (a = knn_search of it) that are
// also among its a.k nearest in B (same rows, any dimensions): 1 when B keeps every
// neighbourhood. Taking a's table lets a caller compare several layouts with one reference.
double knn_overlap(const Neighbors& a, const RowMatrix& B, int threads = 1);

}  // namespace mmphate
