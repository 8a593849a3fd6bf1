// Landmarks (docs/METHOD.md section 3.1): when there are more nodes than n_landmark, nodes are
// grouped by spectral clustering of the diffusion operator and diffusion runs between groups.
//  * features: diffusion-map coordinates D^-1/2 u_k * lambda_k of the n_svd eigenpairs of
//    largest magnitude of A = D^-1/2 K D^-1/2;
//  * seeded k-means into n_landmark groups (empty groups dropped);
//  * P_NL[i, l] = sum_{j in l} K(i, j), row-normalised   (node -> landmark)
//  * P_LN[l, j] = sum_{i in l} K(i, j), row-normalised   (landmark -> node)
//  * P_L = P_LN * P_NL (L x L, row-stochastic).
// P_L = diag(w)^-1 G with G = W D^-1 W^T symmetric (W the cluster-summed kernel rows, w its
// row sums): a reversible chain, so w^1/2 P_L w^-1/2 is symmetric with the eigenvalues of P_L.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/diffusion/kmeans.hpp"
#include "mmphate/log.hpp"
#include "engine/diffusion/spectral.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

struct Landmarks {
  std::vector<int> cluster;  // landmark of each node
  int count = 0;
  SparseMatrix node_to_landmark;  // P_NL, N x L
  SparseMatrix landmark_to_node;  // P_LN, L x N
  Matrix op;                      // P_L,  L x L
  Vector weight;                  // w: summed degree of each landmark's nodes

  // Eigendecomposition of the symmetric conjugate S = w^1/2 P_L w^-1/2 (LAPACK dsyevd). It
  // gives both the spectrum for the automatic t and P_L^t = w^-1/2 V diag(lambda^t) V^T w^1/2:
  // one dsyevd and one GEMM instead of a separate spectrum and log2(t) + popcount(t) GEMMs.
  EigenPairs symmetric_eigen() const;
  // Only the eigenpairs of S with eigenvalue above `lower` (symmetric_eigen_above): enough for P_L^t
  // when t is known, since the others contribute at most lower^t to any entry. S = w^-1/2 G
  // w^-1/2 with G = W D^-1 W^T is positive semi-definite, so no eigenvalue lies below -lower.
  EigenPairs dominant_eigen(double lower) const;
};

// Spectral features used for clustering (N x n_svd). start / basis_out (optional): the
// subspace iteration's start block and the eigenvectors of A it found (top_eigenpairs).
RowMatrix spectral_features(const SparseMatrix& K, int n_svd, std::uint64_t seed, int threads = 1,
                            int power_iterations = 7, const RowMatrix* start = nullptr,
                            RowMatrix* basis_out = nullptr);

// A warm start for cluster_landmarks from the previous frame's clustering (the live
// updater's full recomputes): the subspace iteration starts from the previous eigenvectors
// and k-means from the previous clusters' centres in the new features, so a full recompute
// costs a fraction of a cold one and its landmarks stay where they were where the graph did
// not change (WarmClusters.* in tests/test_incremental.cpp). Its k-means distances run in
// float (the features only seed a clustering).
struct ClusterWarmStart {
  RowMatrix basis;         // in: per node, the previous eigenvectors (NaN row: unknown); out: the new ones
  std::vector<int> prior;  // per node: its previous cluster (any id >= 0), -1 for new nodes
  double stop_share = 0.005;  // k-means stops once an iteration moves at most this share
  int max_iter = 8;           // and after at most this many Lloyd iterations
  // Subspace iterations when `basis` is given: the previous eigenvectors already span most
  // of the subspace, and every frame adds its iterations to those of the frames before.
  int power_iterations = 1;
};

// Builds P_NL, P_LN and P_L from a given node -> cluster assignment (K symmetric).
Landmarks landmark_operators(const SparseMatrix& K, std::vector<int> cluster, int count, int threads = 1);

// The landmark clustering alone: spectral features + seeded k-means into at most n_landmark
// clusters (labels compacted, none empty). Sub-stage timings (landmarks.spectral, .kmeans)
// go to `times` when given. For callers that build the operators elsewhere (a warm full
// recompute hands the clusters to embed_kernel, which builds them once).
KMeansResult cluster_landmarks(const SparseMatrix& K, int n_landmark, int n_svd, std::uint64_t seed, int threads,
                               StageTimes* times = nullptr, int power_iterations = 7,
                               ClusterWarmStart* warm = nullptr);

// cluster_landmarks + landmark_operators; appends landmarks.operators to `times` too.
Landmarks build_landmarks(const SparseMatrix& K, int n_landmark, int n_svd, std::uint64_t seed,
                          int threads, StageTimes* times = nullptr, int power_iterations = 7);

}  // namespace mmphate
