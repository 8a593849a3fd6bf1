// Unit tests of the embedding stages: eigen-solvers, k-means, landmarks, the automatic t
// (von Neumann entropy knee), the diffusion potential, MDS, the agreement score and the
// engine entry points' input checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "mmphate/agreement.hpp"
#include "engine/diffusion/diffusion.hpp"
#include "mmphate/error.hpp"
#include "engine/graph/kernel.hpp"
#include "engine/diffusion/kmeans.hpp"
#include "engine/diffusion/landmarks.hpp"
#include "engine/embed/mds.hpp"
#include "data/normalize.hpp"
#include "util/parallel.hpp"
#include "mmphate/phate.hpp"
#include "engine/diffusion/potential.hpp"
#include "engine/graph/distances.hpp"
#include "engine/diffusion/spectral.hpp"
#include "mmphate/trace.hpp"
#include "engine/diffusion/von_neumann.hpp"

#include "test_util.hpp"

using namespace mmphate;

namespace {

[[maybe_unused]] ::testing::Environment* const single_threaded =
    ::testing::AddGlobalTestEnvironment(new mmphate::testing::SingleThreaded);


using mmphate::testing::random_matrix;

Matrix random_orthogonal(Index n, std::uint64_t seed) {
  const RowMatrix G = random_matrix(n, n, seed);
  Eigen::HouseholderQR<Matrix> qr{Matrix(G)};
  return qr.householderQ() * Matrix::Identity(n, n);
}

using mmphate::testing::brute_distances;

// Random row-stochastic matrix with strictly positive entries.
Matrix random_stochastic(Index n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.05, 1.0);
  Matrix M(n, n);
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j < n; ++j) M(i, j) = u(rng);
    M.row(i) /= M.row(i).sum();
  }
  return M;
}

using mmphate::testing::error_of;

// Points around three far-apart centres; label = blob index.
RowMatrix blobs(int per_blob, std::vector<int>* truth, std::uint64_t seed) {
  const double centres[3][2] = {{0, 0}, {100, 0}, {0, 100}};
  RowMatrix X(3 * per_blob, 2);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  truth->clear();
  for (int b = 0; b < 3; ++b)
    for (int i = 0; i < per_blob; ++i) {
      X(b * per_blob + i, 0) = centres[b][0] + normal(rng);
      X(b * per_blob + i, 1) = centres[b][1] + normal(rng);
      truth->push_back(b);
    }
  return X;
}

// True when labels and truth induce the same partition.
bool same_partition(const std::vector<int>& labels, const std::vector<int>& truth) {
  std::map<int, int> fwd, bwd;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    auto f = fwd.emplace(labels[i], truth[i]);
    auto b = bwd.emplace(truth[i], labels[i]);
    if (f.first->second != truth[i] || b.first->second != labels[i]) return false;
  }
  return true;
}

Options small_options() {
  Options o;
  o.threads = 1;
  return o;
}

}  // namespace

// ---------------------------------------------------------------- spectral

TEST(Spectral, SymmetricEigenvaluesMatchEigen) {
  const RowMatrix G = random_matrix(12, 12, 1);
  const Matrix A = G + G.transpose();
  const Vector w = symmetric_eigenvalues(A);
  Eigen::SelfAdjointEigenSolver<Matrix> es(A);
  ASSERT_EQ(w.size(), 12);
  for (Index i = 0; i < 12; ++i) EXPECT_NEAR(w(i), es.eigenvalues()(i), 1e-12);
  for (Index i = 1; i < 12; ++i) EXPECT_LE(w(i - 1), w(i));
}

TEST(Spectral, DenseTopEigenpairsByMagnitude) {
  for (Index n : {30, 100}) {  // Eigen path and Lanczos (Spectra) path
    const Matrix Q = random_orthogonal(n, 2 + n);
    Vector lam = Vector::LinSpaced(n, -0.5, 0.5);
    lam(0) = 10.0;
    lam(1) = -9.0;
    lam(2) = 7.0;
    const Matrix A = Q * lam.asDiagonal() * Q.transpose();
    const EigenPairs ep = top_eigenpairs_dense(0.5 * (A + A.transpose()), 3);
    ASSERT_EQ(ep.values.size(), 3);
    ASSERT_EQ(ep.vectors.cols(), 3);
    EXPECT_NEAR(ep.values(0), 10.0, 1e-9) << n;
    EXPECT_NEAR(ep.values(1), -9.0, 1e-9) << n;
    EXPECT_NEAR(ep.values(2), 7.0, 1e-9) << n;
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(std::abs(ep.vectors.col(c).dot(Q.col(c))), 1.0, 1e-9) << n << " col " << c;
      EXPECT_NEAR(ep.vectors.col(c).norm(), 1.0, 1e-12);
    }
  }
}

TEST(Spectral, RandomizedSparseTopEigenpairs) {
  const Index n = 150;
  const Matrix Q = random_orthogonal(n, 3);
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(-0.1, 0.1);
  Vector lam(n);
  for (Index i = 0; i < n; ++i) lam(i) = u(rng);
  lam(5) = 4.0;
  lam(17) = -3.0;
  lam(40) = 2.0;
  Matrix A = Q * lam.asDiagonal() * Q.transpose();
  A = 0.5 * (A + Matrix(A.transpose()));
  const SparseMatrix S = A.sparseView();
  const EigenPairs ep = top_eigenpairs(S, 3, 42);
  EXPECT_NEAR(ep.values(0), 4.0, 1e-9);
  EXPECT_NEAR(ep.values(1), -3.0, 1e-9);
  EXPECT_NEAR(ep.values(2), 2.0, 1e-9);
  EXPECT_NEAR(std::abs(ep.vectors.col(0).dot(Q.col(5))), 1.0, 1e-9);
  EXPECT_NEAR(std::abs(ep.vectors.col(1).dot(Q.col(17))), 1.0, 1e-9);
  EXPECT_NEAR(std::abs(ep.vectors.col(2).dot(Q.col(40))), 1.0, 1e-9);
  // same seed, same answer
  const EigenPairs again = top_eigenpairs(S, 3, 42);
  EXPECT_EQ((ep.vectors - again.vectors).cwiseAbs().maxCoeff(), 0.0);
}

// ---------------------------------------------------------------- kmeans

TEST(KMeans, RecoversWellSeparatedBlobs) {
  std::vector<int> truth;
  const RowMatrix X = blobs(30, &truth, 5);
  KMeansOptions ko;
  ko.seed = 3;
  const KMeansResult r = kmeans(X, 3, ko);
  EXPECT_EQ(r.n_clusters, 3);
  EXPECT_EQ(r.empty_dropped, 0);
  ASSERT_EQ(r.labels.size(), 90u);
  EXPECT_TRUE(same_partition(r.labels, truth));
  EXPECT_GE(r.iterations, 1);
  // also when Lloyd runs on a subsample
  ko.sample_size = 24;
  const KMeansResult s = kmeans(X, 3, ko);
  EXPECT_EQ(s.n_clusters, 3);
  EXPECT_TRUE(same_partition(s.labels, truth));
}

TEST(KMeans, DeterministicForSeed) {
  const RowMatrix X = random_matrix(200, 3, 6);
  KMeansOptions ko;
  ko.seed = 11;
  ko.sample_size = 100;
  const KMeansResult a = kmeans(X, 8, ko);
  const KMeansResult b = kmeans(X, 8, ko);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.n_clusters, b.n_clusters);
  // labels compacted: 0 .. n_clusters-1, each used
  std::set<int> used(a.labels.begin(), a.labels.end());
  EXPECT_EQ(static_cast<int>(used.size()), a.n_clusters);
  EXPECT_EQ(*used.begin(), 0);
  EXPECT_EQ(*used.rbegin(), a.n_clusters - 1);
  // the clustering is informative: within-cluster scatter well below a round-robin labelling
  auto within = [&](const std::vector<int>& lab, int k) {
    RowMatrix c = RowMatrix::Zero(k, 3);
    std::vector<int> cnt(k, 0);
    for (Index i = 0; i < 200; ++i) { c.row(lab[i]) += X.row(i); ++cnt[lab[i]]; }
    double s = 0;
    for (int j = 0; j < k; ++j) if (cnt[j]) c.row(j) /= cnt[j];
    for (Index i = 0; i < 200; ++i) s += (X.row(i) - c.row(lab[i])).squaredNorm();
    return s;
  };
  std::vector<int> rnd(200);
  for (int i = 0; i < 200; ++i) rnd[i] = i % a.n_clusters;
  EXPECT_LT(within(a.labels, a.n_clusters), 0.6 * within(rnd, a.n_clusters));
}

TEST(KMeans, EmptyClustersAreDroppedAndBadKThrows) {
  RowMatrix X(20, 2);
  for (Index i = 0; i < 10; ++i) X.row(i) << 0.0, 0.0;
  for (Index i = 10; i < 20; ++i) X.row(i) << 1.0, 1.0;
  KMeansOptions ko;
  const KMeansResult r = kmeans(X, 4, ko);  // only two distinct points
  EXPECT_EQ(r.n_clusters, 2);
  EXPECT_EQ(r.empty_dropped, 2);
  std::vector<int> truth(20);
  for (int i = 0; i < 20; ++i) truth[i] = i < 10 ? 0 : 1;
  EXPECT_TRUE(same_partition(r.labels, truth));
  EXPECT_THROW(kmeans(X, 21, ko), Error);
  EXPECT_THROW(kmeans(X, 0, ko), Error);
}

// ---------------------------------------------------------------- landmarks

TEST(Landmarks, OperatorsHandComputed) {
  Matrix Kd(5, 5);
  Kd << 1.0, 0.5, 0.2, 0.0, 0.0,
        0.5, 1.0, 0.0, 0.1, 0.0,
        0.2, 0.0, 1.0, 0.3, 0.4,
        0.0, 0.1, 0.3, 1.0, 0.6,
        0.0, 0.0, 0.4, 0.6, 1.0;
  const SparseMatrix K = Kd.sparseView();
  const std::vector<int> cluster = {0, 0, 1, 1, 2};
  const Landmarks L = landmark_operators(K, cluster, 3);
  EXPECT_EQ(L.count, 3);
  EXPECT_EQ(L.cluster, cluster);
  Matrix nl = Matrix::Zero(5, 3), ln = Matrix::Zero(3, 5);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) {
      nl(i, cluster[j]) += Kd(i, j);
      ln(cluster[i], j) += Kd(i, j);
    }
  for (int i = 0; i < 5; ++i) nl.row(i) /= nl.row(i).sum();
  for (int l = 0; l < 3; ++l) ln.row(l) /= ln.row(l).sum();
  const Matrix NL(L.node_to_landmark), LN(L.landmark_to_node);
  ASSERT_EQ(NL.rows(), 5);
  ASSERT_EQ(NL.cols(), 3);
  ASSERT_EQ(LN.rows(), 3);
  ASSERT_EQ(LN.cols(), 5);
  EXPECT_LT((NL - nl).cwiseAbs().maxCoeff(), 1e-15);
  EXPECT_LT((LN - ln).cwiseAbs().maxCoeff(), 1e-15);
  EXPECT_LT((L.op - ln * nl).cwiseAbs().maxCoeff(), 1e-15);
  // spelled out: node 0 -> landmark 0 gets (1 + 0.5) / 1.7
  EXPECT_NEAR(NL(0, 0), 1.5 / 1.7, 1e-15);
}

TEST(Landmarks, BuildGivesRowStochasticOperatorsOfTheRightShape) {
  const RowMatrix X = random_matrix(120, 3, 7);
  const SparseMatrix K = alpha_decay_kernel(X, 5, 10.0, 1e-4, KnnMethod::exact, 1);
  const Landmarks L = build_landmarks(K, 15, 20, 42, 1);
  ASSERT_GE(L.count, 2);
  ASSERT_LE(L.count, 15);
  ASSERT_EQ(L.cluster.size(), 120u);
  std::set<int> used(L.cluster.begin(), L.cluster.end());
  EXPECT_EQ(static_cast<int>(used.size()), L.count);
  EXPECT_EQ(*used.rbegin(), L.count - 1);
  const Matrix NL(L.node_to_landmark), LN(L.landmark_to_node);
  EXPECT_EQ(NL.rows(), 120);
  EXPECT_EQ(NL.cols(), L.count);
  EXPECT_EQ(LN.rows(), L.count);
  EXPECT_EQ(LN.cols(), 120);
  EXPECT_EQ(L.op.rows(), L.count);
  EXPECT_EQ(L.op.cols(), L.count);
  for (Index i = 0; i < NL.rows(); ++i) EXPECT_NEAR(NL.row(i).sum(), 1.0, 1e-13);
  for (Index i = 0; i < LN.rows(); ++i) EXPECT_NEAR(LN.row(i).sum(), 1.0, 1e-13);
  for (Index i = 0; i < L.op.rows(); ++i) EXPECT_NEAR(L.op.row(i).sum(), 1.0, 1e-13);
  EXPECT_GE(NL.minCoeff(), 0.0);
  EXPECT_GE(L.op.minCoeff(), 0.0);
  // deterministic for a seed
  const Landmarks again = build_landmarks(K, 15, 20, 42, 1);
  EXPECT_EQ(again.cluster, L.cluster);
}

TEST(Landmarks, SpectralFeaturesShapeAndTrivialFirstCoordinate) {
  // Smooth kernel (wide bandwidth, small decay): fast spectral decay, accurate eigenpairs.
  const RowMatrix X = random_matrix(60, 2, 8);
  const SparseMatrix K = alpha_decay_kernel(X, 15, 2.0, 1e-4, KnnMethod::exact, 1);
  const RowMatrix F = spectral_features(K, 8, 42);
  EXPECT_EQ(F.rows(), 60);
  EXPECT_EQ(F.cols(), 8);
  // The top eigenpair of D^-1/2 K D^-1/2 is (1, D^1/2 1 / ||.||): its diffusion-map
  // coordinate D^-1/2 u * 1 is constant over the nodes.
  const double c0 = F(0, 0);
  EXPECT_GT(std::abs(c0), 0.0);
  for (Index i = 0; i < 60; ++i) EXPECT_NEAR(F(i, 0) / c0, 1.0, 1e-6) << i;
  const double sum_deg = kernel_degrees(K).sum();
  EXPECT_NEAR(std::abs(c0), 1.0 / std::sqrt(sum_deg), 1e-6 / std::sqrt(sum_deg));
  // n_svd beyond N - 1 is clipped
  const RowMatrix G = spectral_features(K, 100, 42);
  EXPECT_EQ(G.cols(), 59);
}

// ---------------------------------------------------------------- von Neumann entropy, knee

TEST(VonNeumann, SingularValuesOfKnownMatrix) {
  const Matrix Q = random_orthogonal(4, 9), R = random_orthogonal(4, 10);
  Vector s(4);
  s << 3.0, 0.5, 2.0, 0.0;
  const Matrix M = Q * s.asDiagonal() * R;
  Vector got = singular_values(M);
  std::vector<double> g(got.data(), got.data() + 4);
  std::sort(g.begin(), g.end());
  EXPECT_NEAR(g[0], 0.0, 1e-7);  // sqrt of a round-off-level eigenvalue
  EXPECT_NEAR(g[1], 0.5, 1e-12);
  EXPECT_NEAR(g[2], 2.0, 1e-12);
  EXPECT_NEAR(g[3], 3.0, 1e-12);
}

TEST(VonNeumann, EntropyHandComputed) {
  Vector s(2);
  s << 1.0, 0.5;
  const auto H = von_neumann_entropy(s, 3);
  ASSERT_EQ(H.size(), 3u);
  auto h2 = [](double p) { return -(p * std::log(p) + (1 - p) * std::log(1 - p)); };
  EXPECT_NEAR(H[0], h2(2.0 / 3.0), 1e-13);  // s^1: (1, .5)   -> (2/3, 1/3)
  EXPECT_NEAR(H[1], h2(0.8), 1e-13);        // s^2: (1, .25)  -> (.8, .2)
  EXPECT_NEAR(H[2], h2(8.0 / 9.0), 1e-13);  // s^3: (1, .125) -> (8/9, 1/9)

  Vector u = Vector::Ones(4);
  for (double h : von_neumann_entropy(u, 5)) EXPECT_NEAR(h, std::log(4.0), 1e-13);

  Vector one(3);
  one << 1.0, 0.0, 0.0;
  for (double h : von_neumann_entropy(one, 4)) EXPECT_NEAR(h, 0.0, 1e-13);

  // singular values in (0, 1]: powers concentrate the mass, entropy decreases
  Vector d(5);
  d << 1.0, 0.9, 0.7, 0.4, 0.1;
  const auto Hd = von_neumann_entropy(d, 30);
  for (std::size_t i = 1; i < Hd.size(); ++i) EXPECT_LT(Hd[i], Hd[i - 1]);
}

TEST(VonNeumann, KneeFindsBreakOfPiecewiseLinearCurve) {
  const int n = 30;
  for (int b0 = 1; b0 <= n - 2; ++b0) {
    std::vector<double> y(n);
    for (int x = 0; x < n; ++x) y[x] = x <= b0 ? 5.0 - 0.8 * x : 5.0 - 0.8 * b0 - 0.05 * (x - b0);
    EXPECT_EQ(knee_index(y), b0);
  }
  // an entropy-like decreasing curve with its break at 11 of 100
  std::vector<double> y(100);
  for (int x = 0; x < 100; ++x) y[x] = x <= 11 ? 4.0 - 0.3 * x : 4.0 - 0.3 * 11 - 0.001 * (x - 11);
  EXPECT_EQ(knee_index(y), 11);
  EXPECT_THROW(knee_index({1.0, 2.0}), Error);
}

// ---------------------------------------------------------------- potential

TEST(Potential, MatrixPowerEqualsRepeatedMultiplication) {
  const Matrix M = random_stochastic(6, 11);
  Matrix want = M;
  for (int t = 1; t <= 9; ++t) {
    const Matrix got = matrix_power(M, t);
    EXPECT_LT((got - want).cwiseAbs().maxCoeff(), 1e-14) << "t = " << t;
    for (Index i = 0; i < 6; ++i) EXPECT_NEAR(got.row(i).sum(), 1.0, 1e-13);
    want = want * M;
  }
  EXPECT_THROW(matrix_power(M, 0), Error);
}

TEST(Potential, GammaTransforms) {
  Matrix P(2, 3);
  P << 0.0, 0.25, 1.0, 0.01, 0.5, 0.09;
  Matrix g1 = P;
  potential_transform(g1, 1.0);
  Matrix g0 = P;
  potential_transform(g0, 0.0);
  Matrix gm = P;
  potential_transform(gm, -1.0);
  Matrix gh = P;
  potential_transform(gh, 0.5);
  for (Index i = 0; i < 2; ++i)
    for (Index j = 0; j < 3; ++j) {
      const double x = P(i, j);
      EXPECT_NEAR(g1(i, j), -std::log(x + 1e-7), 1e-12);
      EXPECT_NEAR(g0(i, j), 2.0 * std::sqrt(x), 1e-15);
      EXPECT_NEAR(gm(i, j), x, 1e-15);
      EXPECT_NEAR(gh(i, j), std::pow(x, 0.25) / 0.25, 1e-14);
    }
  EXPECT_NEAR(g1(0, 0), -std::log(1e-7), 1e-9);  // zero maps to 16.118...
  EXPECT_NEAR(g0(1, 2), 0.6, 1e-15);
  // round-off negatives under a fractional power give 0, not NaN
  Matrix neg(1, 2);
  neg << -1e-18, 0.04;
  potential_transform(neg, 0.0);
  EXPECT_TRUE(neg.allFinite());
  EXPECT_EQ(neg(0, 0), 0.0);
  EXPECT_NEAR(neg(0, 1), 0.4, 1e-15);
}

TEST(Potential, RowDistancesMatchBruteForce) {
  const RowMatrix X = random_matrix(25, 6, 12);
  const Matrix D = row_distances(Matrix(X));
  const Matrix want = brute_distances(X);
  EXPECT_LT((D - want).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_EQ((D - D.transpose()).cwiseAbs().maxCoeff(), 0.0);
  for (Index i = 0; i < 25; ++i) EXPECT_EQ(D(i, i), 0.0);
}

// ---------------------------------------------------------------- MDS

TEST(Mds, RawStressHandComputed) {
  Matrix D(3, 3);
  D << 0, 1, 2, 1, 0, 1, 2, 1, 0;
  RowMatrix Y(3, 2);
  Y << 0, 0, 2, 0, 2, 2;  // distances 2, 2*sqrt2, 2
  const double want = 1.0 + std::pow(2 * std::sqrt(2.0) - 2, 2) + 1.0;
  EXPECT_NEAR(raw_stress(D, Y), want, 1e-14);
}

namespace {

// Grid of g x g points centred at 0, spacing 1: isotropic scatter, sum of x^2 = g * sum_a a^2.
RowMatrix centred_grid(int g, double* lambda) {
  RowMatrix X(g * g, 2);
  const double h = (g - 1) / 2.0;
  double s = 0;
  for (int a = 0; a < g; ++a) s += (a - h) * (a - h);
  for (int a = 0; a < g; ++a)
    for (int b = 0; b < g; ++b) X.row(a * g + b) << a - h, b - h;
  *lambda = g * s;
  return X;
}

// classical_mds of points in 2-D with isotropic scatter: every pairwise distance is scaled by
// the same factor 2 sqrt(lambda) (eigenvalue of the double-centred squared distances: -2 lambda;
// coordinates = unit eigenvector * 2 lambda = true coordinates * 2 sqrt(lambda)).
void expect_isotropic_grid_recovered(int g) {
  double lambda = 0;
  const RowMatrix X = centred_grid(g, &lambda);
  const Matrix D = brute_distances(X);
  const RowMatrix Y = classical_mds(D, 2);
  ASSERT_EQ(Y.rows(), g * g);
  ASSERT_EQ(Y.cols(), 2);
  const Matrix DY = brute_distances(Y);
  const double scale = 2.0 * std::sqrt(lambda);
  EXPECT_LT((DY - scale * D).cwiseAbs().maxCoeff(), 1e-8 * scale * D.maxCoeff()) << g << " x " << g;
}

}  // namespace

TEST(Mds, ClassicalRecoversIsotropicGridUpToScale) {
  // 7 x 7 = 49 points (dense eigen-solver path): lambda = 7 * 28 = 196, scale 28.
  double lambda = 0;
  centred_grid(7, &lambda);
  EXPECT_DOUBLE_EQ(lambda, 196.0);
  expect_isotropic_grid_recovered(7);
}

TEST(Mds, ClassicalRecoversIsotropicGridLanczosPath) {
  expect_isotropic_grid_recovered(9);  // 81 points
}

TEST(Mds, ClassicalGivesScaledPrincipalComponents) {
  // Points that truly lie in a 2-D plane of R^5, with unequal spreads along two axes;
  // 40 points use the dense eigen-solver, 100 the Lanczos one.
  for (Index n : {40, 100}) {
  SCOPED_TRACE(n);
  RowMatrix Z = random_matrix(n, 2, 13 + n);
  Z.col(0) *= 3.0;
  const Matrix Q = random_orthogonal(5, 14);
  const RowMatrix X = Z * Q.leftCols(2).transpose();
  const Matrix D = brute_distances(X);
  const RowMatrix Y = classical_mds(D, 2);
  // reference scaling: column c = PCA score c * 2 sqrt(lambda_c), lambda_c the eigenvalues of
  // the centred scatter matrix (the eigenvalue of the double-centred squared distances is
  // -2 lambda_c and its unit eigenvector is score_c / sqrt(lambda_c)).
  RowMatrix Zc = Z.rowwise() - Z.colwise().mean();
  Eigen::SelfAdjointEigenSolver<Matrix> es(Matrix(Zc.transpose() * Zc));
  for (int c = 0; c < 2; ++c) {
    const Index k = 1 - c;  // descending
    const double lambda = es.eigenvalues()(k);
    const Vector score = Zc * es.eigenvectors().col(k);
    const Vector want = score * 2.0 * std::sqrt(lambda);
    const double sign = Y.col(c).dot(want) >= 0 ? 1.0 : -1.0;
    EXPECT_LT((Y.col(c) * sign - want).norm(), 1e-8 * want.norm()) << "component " << c;
  }
  // undoing the per-axis scale recovers the true distances
  RowMatrix U = Y;
  U.col(0) /= 2.0 * std::sqrt(es.eigenvalues()(1));
  U.col(1) /= 2.0 * std::sqrt(es.eigenvalues()(0));
  EXPECT_LT((brute_distances(U) - D).cwiseAbs().maxCoeff(), 1e-8 * D.maxCoeff());
  // deterministic sign: the largest-magnitude entry of each column is positive
  for (int c = 0; c < 2; ++c) {
    Index imax;
    Y.col(c).cwiseAbs().maxCoeff(&imax);
    EXPECT_GT(Y(imax, c), 0.0);
  }
  EXPECT_THROW(classical_mds(D.topLeftCorner(2, 2), 2), Error);
  }
}

TEST(Mds, SmacofNeverIncreasesStress) {
  const RowMatrix X = random_matrix(30, 2, 15, 2.0);
  const Matrix D = brute_distances(X);
  const RowMatrix init = random_matrix(30, 2, 16);
  const double s0 = raw_stress(D, init);
  double prev = s0;
  for (int iters : {1, 2, 3, 5, 10, 30, 100}) {
    const RowMatrix Y = smacof(D, init, iters, 0.0, 1);
    const double s = raw_stress(D, Y);
    EXPECT_LE(s, prev * (1 + 1e-12)) << "after " << iters << " iterations";
    prev = s;
  }
  EXPECT_LT(prev, 0.5 * s0);
  // the reported stress is that of the predecessor layout: after one iteration, the init's
  SmacofResult r;
  smacof(D, init, 1, 0.0, 1, &r);
  EXPECT_EQ(r.iterations, 1);
  EXPECT_NEAR(r.stress, s0, 1e-10 * s0);
}

TEST(Mds, SmacofFromClassicalInitReachesNearZeroStressOnPlanarData) {
  const RowMatrix X = random_matrix(30, 2, 17, 2.0);
  const Matrix D = brute_distances(X);
  SmacofResult r;
  const RowMatrix Y = smacof(D, classical_mds(D, 2), 3000, 1e-12, 1, &r);
  EXPECT_LT(raw_stress(D, Y), 1e-8 * D.squaredNorm());
  EXPECT_GE(r.iterations, 1);
  EXPECT_LE(r.iterations, 3000);
  EXPECT_TRUE(Y.allFinite());
}

// Anchored SMACOF (the live updater's warm starts): weight 0 is plain SMACOF bit for bit; an
// exact layout used as anchors is a fixed point; the anchored objective never increases; the
// heavier the anchor, the less the layout moves away from it; bad anchors are errors.
TEST(Mds, AnchoredSmacofTradesStressForStayingPut) {
  const RowMatrix X = random_matrix(40, 2, 31, 2.0);
  const Matrix D = brute_distances(X);
  const RowMatrix start = random_matrix(40, 2, 32, 2.0);
  EXPECT_EQ((smacof_anchored(D, start, start, 0.0, 50, 0.0, 1) - smacof(D, start, 50, 0.0, 1)).cwiseAbs().maxCoeff(),
            0.0);

  RowMatrix exact = X.rowwise() - X.colwise().mean();
  exact.rowwise() += Eigen::RowVector2d(3.0, -1.0);  // anchors need not be centred
  const RowMatrix fixed = smacof_anchored(D, exact, exact, 0.3, 20, 0.0, 1);
  EXPECT_LT((fixed - exact).cwiseAbs().maxCoeff(), 1e-10);

  const double w = 0.5;
  auto objective = [&](const RowMatrix& Y) {
    return raw_stress(D, Y) + w * static_cast<double>(Y.rows()) * (Y - start).squaredNorm();
  };
  double prev = objective(start);
  for (int iters : {1, 2, 3, 5, 10, 40}) {
    const double o = objective(smacof_anchored(D, start, start, w, iters, 0.0, 1));
    EXPECT_LE(o, prev * (1 + 1e-12)) << "after " << iters << " iterations";
    prev = o;
  }

  double moved_before = std::numeric_limits<double>::infinity();
  double stress_before = 0.0;
  for (double weight : {0.0, 0.05, 0.2, 1.0, 5.0}) {
    const RowMatrix Y = smacof_anchored(D, start, start, weight, 300, 1e-9, 1);
    const double moved = (Y - start).norm();
    const double stress = raw_stress(D, Y);
    EXPECT_LT(moved, moved_before) << "weight " << weight;
    EXPECT_GE(stress, stress_before * (1 - 1e-9)) << "weight " << weight;
    moved_before = moved;
    stress_before = stress;
  }
  EXPECT_LT(moved_before, 0.2 * start.norm());  // weight 5: close to the anchors

  EXPECT_THROW(smacof_anchored(D, start, RowMatrix(39, 2), 0.2, 10, 0.0, 1), Error);
  EXPECT_THROW(smacof_anchored(D, start, start, -1.0, 10, 0.0, 1), Error);
  EXPECT_THROW(smacof_anchored(D, start, start, std::nan(""), 10, 0.0, 1), Error);
}

TEST(Mds, SgdReducesStressFromRandomInitAndIsDeterministic) {
  const RowMatrix X = random_matrix(40, 2, 18, 2.0);
  const Matrix D = brute_distances(X);
  const RowMatrix init = random_matrix(40, 2, 19, 2.0);
  const double s0 = raw_stress(D, init);
  const RowMatrix Y = sgd_mds(D, init, 30, 0.01, 7);
  const double s1 = raw_stress(D, Y);
  EXPECT_LT(s1, 0.1 * s0);
  EXPECT_TRUE(Y.allFinite());
  const RowMatrix Y2 = sgd_mds(D, init, 30, 0.01, 7);
  EXPECT_EQ((Y - Y2).cwiseAbs().maxCoeff(), 0.0);
  const RowMatrix Y3 = sgd_mds(D, init, 30, 0.01, 8);
  EXPECT_GT((Y - Y3).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_THROW(sgd_mds(D, RowMatrix(39, 2), 30, 0.01, 7), Error);
  EXPECT_THROW(smacof(D, RowMatrix(39, 2), 30, 0.0, 1), Error);
}

// ---------------------------------------------------------------- agreement

TEST(Agreement, InvariantToSimilarityTransforms) {
  const RowMatrix Y = random_matrix(100, 2, 20);
  const double th = 0.7;
  Matrix R(2, 2);
  R << std::cos(th), -std::sin(th), std::sin(th), std::cos(th);
  RowMatrix B = 3.5 * (Y * R);
  B.col(0).array() += 10.0;
  B.col(1) *= -1.0;  // reflection too
  EXPECT_DOUBLE_EQ(knn_agreement(Y, B, 10), 1.0);
  EXPECT_DOUBLE_EQ(knn_agreement(Y, Y, 5), 1.0);
}

TEST(Agreement, LowForRandomPermutation) {
  const RowMatrix Y = random_matrix(200, 2, 21);
  std::vector<int> perm(200);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(22);
  std::shuffle(perm.begin(), perm.end(), rng);
  RowMatrix B(200, 2);
  for (Index i = 0; i < 200; ++i) B.row(i) = Y.row(perm[i]);
  const double a = knn_agreement(Y, B, 10);
  EXPECT_LT(a, 0.2);  // chance level is 10 / 199
  EXPECT_GE(a, 0.0);
  EXPECT_THROW(knn_agreement(Y, B.topRows(100), 10), Error);
}

TEST(Agreement, HandComputedPartialOverlap) {
  // 1-D, k = 1: b moves point 2 to 10 and point 3 to 2.5.
  RowMatrix a(4, 1), b(4, 1);
  a << 0, 1, 2.5, 10;
  b << 0, 1, 10, 2.5;
  // NN in a: 0->1, 1->0, 2->1, 3->2.  NN in b: 0->1, 1->0, 2->3, 3->1.  Two of four agree.
  EXPECT_DOUBLE_EQ(knn_agreement(a, b, 1), 0.5);
}

// ---------------------------------------------------------------- engine entry points

TEST(Engine, RunPhateRejectsNan) {
  RowMatrix X = random_matrix(20, 3, 23);
  X(4, 1) = std::numeric_limits<double>::quiet_NaN();
  const std::string msg = error_of([&] { run_phate(X, small_options()); });
  EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
}

TEST(Engine, RunPhateRejectsKnnNotBelowN) {
  const RowMatrix X = random_matrix(5, 3, 24);
  Options o = small_options();
  o.knn = 5;
  const std::string msg = error_of([&] { run_phate(X, o); });
  EXPECT_NE(msg.find("knn"), std::string::npos) << msg;
  o.knn = 7;
  EXPECT_THROW(run_phate(X, o), Error);
}

TEST(Engine, RunPhateValidatesOptions) {
  const RowMatrix X = random_matrix(30, 3, 25);
  Options o = small_options();
  o.gamma = 2;
  const std::string msg = error_of([&] { run_phate(X, o); });
  EXPECT_NE(msg.find("gamma"), std::string::npos) << msg;
}

TEST(Engine, RunMultisliceRejectsIntrasliceKnnNotBelowUnits) {
  const RowMatrix F = random_matrix(12, 4, 26);  // 3 slices x 4 units
  Options o = Options::mphate();
  o.threads = 1;
  o.intraslice_knn = 4;
  const std::string msg = error_of([&] { run_multislice(F, 3, 4, o); });
  EXPECT_NE(msg.find("intraslice_knn"), std::string::npos) << msg;
  o.intraslice_knn = 2;
  EXPECT_THROW(run_multislice(F, 4, 4, o), Error);  // 16 != 12 rows
  RowMatrix G = F;
  G(0, 0) = std::numeric_limits<double>::infinity();
  EXPECT_THROW(run_multislice(G, 3, 4, o), Error);
}

TEST(Engine, RunMultisliceWithConstantUnitIsFinite) {
  const Index slices = 5, units = 6, probes = 5;
  RowMatrix F = random_matrix(slices * units, probes, 27);
  for (Index s = 0; s < slices; ++s) F.row(s * units + 1).setConstant(2.5);  // dead unit
  Options o = Options::mphate();
  o.threads = 1;
  const EmbedResult r = run_multislice(F, slices, units, o);
  ASSERT_EQ(r.embedding.rows(), slices * units);
  ASSERT_EQ(r.embedding.cols(), 2);
  EXPECT_TRUE(r.embedding.allFinite());
  EXPECT_EQ(r.constant_nodes, slices);
  EXPECT_TRUE(std::isfinite(r.interslice_eps));
  EXPECT_GT(r.interslice_eps, 0.0);
  EXPECT_GE(r.t, 1);
  EXPECT_TRUE(r.t_automatic);
  EXPECT_EQ(r.entropy.size(), 100u);
}

// Huge finite values (|x| ~ 1e200: squared norms overflow). run_phate embeds them exactly as
// the same data scaled into range by a power of two (before: a crash in the kNN search).
TEST(Engine, RunPhateOnHugeValuesEqualsTheRescaledData) {
  const RowMatrix X = random_matrix(200, 10, 41, 1e200);
  const Options o = small_options();
  const EmbedResult a = run_phate(X, o);
  ASSERT_TRUE(a.embedding.allFinite());
  EXPECT_GT((a.embedding.rowwise() - a.embedding.colwise().mean()).norm(), 1e-3);
  const double s = distance_safe_scale(X);
  ASSERT_LT(s, 1.0);
  const EmbedResult b = run_phate(X * s, o);
  EXPECT_EQ(a.t, b.t);
  EXPECT_EQ((a.embedding - b.embedding).cwiseAbs().maxCoeff(), 0.0);
}

// A trace of huge values through run_multislice. normalize on: the rows are z-scored like the
// unit-scale trace (before: every node became a zero vector while constant_nodes said 0);
// normalize off: embedded as the trace scaled into range.
TEST(Engine, RunMultisliceOnHugeValuesNormalizedOrNot) {
  const Index slices = 5, units = 6, probes = 8;
  const RowMatrix unit = random_matrix(slices * units, probes, 42);
  const RowMatrix F = unit * 1e200;
  Options o = Options::mphate();
  o.threads = 1;
  const EmbedResult on = run_multislice(F, slices, units, o);
  EXPECT_EQ(on.constant_nodes, 0);
  ASSERT_TRUE(on.embedding.allFinite());
  EXPECT_GT((on.embedding.rowwise() - on.embedding.colwise().mean()).norm(), 1e-3);
  const TraceShape shape = slice_trace_shape(F, slices, units);
  EXPECT_LT((prepare_trace(F, shape, o).features - prepare_trace(unit, shape, o).features).cwiseAbs().maxCoeff(),
            1e-12);

  for (Options m : {Options::mphate(), Options::mmphate_scalable()}) {
    m.threads = 1;
    m.normalize = false;
    m.interslice_edges = 0;
    m.interslice_knn = 5;
    const EmbedResult off = run_multislice(F, slices, units, m);
    ASSERT_TRUE(off.embedding.allFinite());
    const EmbedResult ref = run_multislice(RowMatrix(F * distance_safe_scale(F)), slices, units, m);
    EXPECT_EQ(off.t, ref.t);
    EXPECT_EQ((off.embedding - ref.embedding).cwiseAbs().maxCoeff(), 0.0);
  }
}

TEST(Engine, RunPhateSmallDataIsFiniteDeterministicAndKeepsClusters) {
  // two Gaussian clusters 6 sigma apart
  RowMatrix X = random_matrix(60, 3, 28);
  X.topRows(30).col(0).array() += 6.0;
  Options o = small_options();
  const EmbedResult a = run_phate(X, o);
  ASSERT_EQ(a.embedding.rows(), 60);
  ASSERT_EQ(a.embedding.cols(), 2);
  EXPECT_TRUE(a.embedding.allFinite());
  EXPECT_FALSE(a.landmarks_used);
  EXPECT_TRUE(a.t_automatic);
  EXPECT_GE(a.t, 1);
  EXPECT_LE(a.t, 98);
  EXPECT_EQ(a.n_nodes, 60);
  const EmbedResult b = run_phate(X, o);
  EXPECT_EQ((a.embedding - b.embedding).cwiseAbs().maxCoeff(), 0.0);
  // 5 nearest embedding neighbours mostly from the same cluster
  const Matrix DY = brute_distances(a.embedding);
  int same = 0;
  for (Index i = 0; i < 60; ++i) {
    std::vector<std::pair<double, Index>> d;
    for (Index j = 0; j < 60; ++j)
      if (j != i) d.emplace_back(DY(i, j), j);
    std::partial_sort(d.begin(), d.begin() + 5, d.end());
    for (int k = 0; k < 5; ++k) same += (d[k].second < 30) == (i < 30);
  }
  EXPECT_GT(same, static_cast<int>(0.9 * 300));
}

TEST(Engine, RunPhateWithLandmarksAndFixedT) {
  const RowMatrix X = random_matrix(150, 3, 29);
  Options o = small_options();
  o.n_landmark = 30;
  o.n_svd = 20;
  o.t = 5;
  o.gamma = 0;
  o.mds_solver = MdsSolver::smacof;
  o.mds_max_iter = 200;
  const EmbedResult r = run_phate(X, o);
  EXPECT_TRUE(r.landmarks_used);
  EXPECT_GE(r.n_landmarks, 2);
  EXPECT_LE(r.n_landmarks, 30);
  EXPECT_EQ(r.t, 5);
  EXPECT_FALSE(r.t_automatic);
  ASSERT_EQ(r.embedding.rows(), 150);
  EXPECT_TRUE(r.embedding.allFinite());
}

TEST(Engine, EmbedKernelNeedsEnoughNodes) {
  SparseMatrix K(3, 3);
  K.setIdentity();
  const std::string msg = error_of([&] { embed_kernel(K, small_options()); });
  EXPECT_NE(msg.find("nodes"), std::string::npos) << msg;
}

TEST(Engine, PcaProjectsOntoLeadingDirections) {
  RowMatrix Z = random_matrix(50, 2, 30);
  Z.col(0) *= 5.0;
  const Matrix Q = random_orthogonal(6, 31);
  RowMatrix X = Z * Q.leftCols(2).transpose();
  X.rowwise() += Eigen::RowVectorXd::Constant(6, 3.0);
  const RowMatrix P = pca(X, 2);
  ASSERT_EQ(P.cols(), 2);
  // an orthogonal projection onto the data's plane keeps all pairwise distances
  EXPECT_LT((brute_distances(P) - brute_distances(X)).cwiseAbs().maxCoeff(), 1e-9);
  // centred
  EXPECT_LT(P.colwise().mean().cwiseAbs().maxCoeff(), 1e-10);
}

// ---------------------------------------------------------------- thread settings

extern "C" int openblas_get_num_threads() __attribute__((weak));

// An engine call sets its thread count for its own duration only: the calling thread's OpenMP
// count (which Eigen's GEMM follows) and OpenBLAS's pool are back to what they were when it
// returns, and Eigen's global count is never pinned. (embed_kernel used to leave them at
// opt.threads, so a program's own Eigen and BLAS work changed speed after an embedding.)
TEST(EngineThreads, EngineCallsRestoreTheCallersSettings) {
#ifndef _OPENMP
  GTEST_SKIP() << "built without OpenMP";
#else
  const int omp_before = omp_get_max_threads();
  const int blas_before = openblas_get_num_threads ? openblas_get_num_threads() : 0;
  omp_set_num_threads(3);
  const RowMatrix X = mmphate::testing::random_matrix(300, 5, 4);
  Options opt;
  opt.threads = 2;
  opt.n_landmark = 0;
  opt.t = 5;
  const EmbedResult r = run_phate(X, opt);
  EXPECT_EQ(r.embedding.rows(), 300);
  EXPECT_EQ(omp_get_max_threads(), 3);
  EXPECT_EQ(Eigen::nbThreads(), 3);  // follows OpenMP: not pinned by the library
  if (openblas_get_num_threads) EXPECT_EQ(openblas_get_num_threads(), blas_before);
  {
    const EngineThreads inner(2);
    EXPECT_EQ(omp_get_max_threads(), 2);
    EXPECT_EQ(Eigen::nbThreads(), 2);
    if (openblas_get_num_threads && std::thread::hardware_concurrency() >= 2)
      EXPECT_EQ(openblas_get_num_threads(), 2);
  }
  EXPECT_EQ(omp_get_max_threads(), 3);
  if (openblas_get_num_threads) EXPECT_EQ(openblas_get_num_threads(), blas_before);
  omp_set_num_threads(omp_before);
#endif
}
