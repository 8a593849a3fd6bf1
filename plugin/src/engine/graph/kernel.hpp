// Affinity kernels (docs/METHOD.md section 2).
//
// Alpha-decay kernel with adaptive bandwidth:
//   K(i,j) = exp(-(d(i,j) / sigma_i)^alpha),  sigma_i = distance to the k-th nearest other point,
// entries below `thresh` dropped, then symmetrised as (K + K^T) / 2 with unit diagonal.
// Every j with K(i,j) >= thresh is kept, not only the k nearest: the search radius is
// sigma_i * (-ln thresh)^(1/alpha).
#pragma once
#include <vector>

#include "mmphate/options.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

struct KernelInfo {
  Index zero_bandwidth_points = 0;  // points whose k-th neighbour is a duplicate (sigma = 0)
  KnnMethod knn_method = KnnMethod::exact;
};

// Radius beyond which exp(-(d/sigma)^alpha) < thresh.
double alpha_decay_radius(double sigma, double alpha, double thresh);

// Appends row i of the (asymmetric, thresholded) alpha-decay kernel for one point, given its
// bandwidth and candidate neighbours (j, exact distance). Self (weight 1) is included.
void append_alpha_decay_row(int i, double sigma, double alpha, double thresh,
                            const std::vector<std::pair<int, double>>& candidates,
                            std::vector<Triplet>& out);

// Symmetric alpha-decay kernel over the rows of X.
SparseMatrix alpha_decay_kernel(const RowMatrix& X, int knn, double decay, double thresh,
                                KnnMethod method, int threads, KernelInfo* info = nullptr);

// (K + K^T) / 2.
SparseMatrix symmetrize(const SparseMatrix& K);

}  // namespace mmphate
