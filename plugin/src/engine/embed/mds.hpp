// Multidimensional scaling of a dense distance matrix (docs/METHOD.md section 3.4).
//  * classical_mds: D squared, double-centred; coordinates are the leading principal
//    components of that matrix's rows, i.e. eigenvector * |eigenvalue| (the reference's
//    scaling, not the textbook square root).
//  * smacof: Guttman-transform iterations (de Leeuw 1977) from an initial layout; stops after
//    max_iter or when stress / sum of point norms improves by less than tol.
//  * sgd_mds: stochastic gradient descent on the stress (Zheng, Pawar & Goodman 2019) with
//    unit weights (the metric-MDS stress SMACOF minimises, not the graph-drawing d^-2
//    weighting, which distorts the global geometry PHATE keeps); step size annealed
//    exponentially from 1 to eps; every pair visited once per epoch in random order.
#pragma once
#include <cstdint>

#include "mmphate/types.hpp"

namespace mmphate {

RowMatrix classical_mds(const Matrix& D, int n_components);

struct SmacofResult {
  int iterations = 0;
  double stress = 0.0;  // raw stress of the returned layout's predecessor, as the reference reports
};

RowMatrix smacof(const Matrix& D, RowMatrix init, int max_iter, double tol, int threads,
                 SmacofResult* result = nullptr);

// Anchored SMACOF for frame-to-frame continuity (dynamic MDS): minimises
//   stress(Y) + mu * sum_i ||y_i - a_i||^2,   mu = anchor_weight * n,
// by majorization: ((n + mu) I - 11^T) Y = B(Z) Z + mu A, whose solution is
//   Y = (G + lambda (A - mean(A))) / (1 + lambda) + mean(A),
// G the plain Guttman transform, lambda = anchor_weight. Stress alone has flat valleys: a
// warm start can slide into a slightly lower-stress layout that moves every point (measured:
// 2 % lower stress, 40 % of the layout radius). The anchor term makes that slide cost what
// it moves. anchor_weight 0 is plain SMACOF; the stop test uses the anchored objective.
RowMatrix smacof_anchored(const Matrix& D, RowMatrix init, const RowMatrix& anchors, double anchor_weight,
                          int max_iter, double tol, int threads, SmacofResult* result = nullptr);

RowMatrix sgd_mds(const Matrix& D, RowMatrix init, int epochs, double eps, std::uint64_t seed);

// The factor s minimising raw_stress(D, s Y): sum D_ij d_ij / sum d_ij^2 over pairs, d the
// distances of Y (0 when Y is a single point). Used to bring a warm start to D's scale.
double stress_optimal_scale(const Matrix& D, const RowMatrix& Y);

// Raw stress sum_{i<j} (||y_i - y_j|| - D_ij)^2.
double raw_stress(const Matrix& D, const RowMatrix& Y);

}  // namespace mmphate
