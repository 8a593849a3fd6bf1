// Unit tests of the graph stages: input checks and z-scoring, nearest neighbours, the
// alpha-decay kernel, the multislice kernel and the diffusion operator.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/diffusion/diffusion.hpp"
#include "mmphate/error.hpp"
#include "engine/graph/kernel.hpp"
#include "engine/graph/knn.hpp"
#include "engine/graph/multislice.hpp"
#include "engine/graph/sparse_build.hpp"
#include "data/normalize.hpp"
#include "util/parallel.hpp"

#include "test_util.hpp"

using namespace mmphate;

namespace {

[[maybe_unused]] ::testing::Environment* const single_threaded =
    ::testing::AddGlobalTestEnvironment(new mmphate::testing::SingleThreaded);


using mmphate::testing::random_matrix;

using mmphate::testing::brute_distances;

// Distance to the k-th nearest other row (k >= 1), by brute force.
double kth_other_distance(const Matrix& D, Index i, int k) {
  std::vector<double> d;
  for (Index j = 0; j < D.cols(); ++j)
    if (j != i) d.push_back(D(i, j));
  std::sort(d.begin(), d.end());
  return d[static_cast<std::size_t>(k - 1)];
}

bool is_symmetric(const SparseMatrix& K, double tol) {
  const Matrix A(K);
  return (A - A.transpose()).cwiseAbs().maxCoeff() <= tol;
}

using mmphate::testing::error_of;

}  // namespace

// ---------------------------------------------------------------- normalize

TEST(Normalize, ZscoreRowsHaveMeanZeroAndUnitPopulationStd) {
  RowMatrix X = random_matrix(20, 7, 1, 3.0);
  X.col(0).array() += 10.0;  // offsets must be removed
  const RowMatrix orig = X;
  EXPECT_EQ(zscore_rows(X), 0);
  for (Index r = 0; r < X.rows(); ++r) {
    EXPECT_NEAR(X.row(r).mean(), 0.0, 1e-12);
    EXPECT_NEAR(std::sqrt(X.row(r).squaredNorm() / 7.0), 1.0, 1e-12);  // population std
    // z-scoring is affine per row: the result correlates perfectly with the input row
    const Eigen::RowVectorXd c = orig.row(r).array() - orig.row(r).mean();
    EXPECT_NEAR(c.dot(X.row(r)) / (c.norm() * X.row(r).norm()), 1.0, 1e-12);
  }
}

TEST(Normalize, HandComputedRow) {
  RowMatrix X(1, 4);
  X << 1, 2, 3, 4;  // mean 2.5, population std sqrt(1.25)
  zscore_rows(X);
  const double sd = std::sqrt(1.25);
  EXPECT_NEAR(X(0, 0), -1.5 / sd, 1e-15);
  EXPECT_NEAR(X(0, 1), -0.5 / sd, 1e-15);
  EXPECT_NEAR(X(0, 2), 0.5 / sd, 1e-15);
  EXPECT_NEAR(X(0, 3), 1.5 / sd, 1e-15);
}

TEST(Normalize, ConstantRowsBecomeZerosNotNan) {
  RowMatrix X(4, 5);
  X.row(0).setConstant(3.0);
  X.row(1) << 1, 2, 3, 4, 5;
  X.row(2).setZero();
  // a float32-stored constant with rounding noise after centring is still constant
  X.row(3).setConstant(static_cast<double>(0.1f) * 1e6);
  EXPECT_EQ(zscore_rows(X), 3);
  EXPECT_TRUE(X.allFinite());
  EXPECT_EQ(X.row(0).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_EQ(X.row(2).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_EQ(X.row(3).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_NEAR(X.row(1).mean(), 0.0, 1e-12);
}

// Rows too large to square (|x| ~ 1e200) are standardised like the same row at unit scale,
// not flattened to zeros without being counted as constant (sd was Inf before).
TEST(Normalize, HugeRowsAreStandardisedNotFlattened) {
  const RowMatrix base = random_matrix(6, 9, 12);
  RowMatrix huge = base * 1e200;
  RowMatrix unit = base;
  EXPECT_EQ(zscore_rows(huge), 0);
  EXPECT_EQ(zscore_rows(unit), 0);
  EXPECT_TRUE(huge.allFinite());
  EXPECT_LT((huge - unit).cwiseAbs().maxCoeff(), 1e-12);
  RowMatrix flat = RowMatrix::Constant(2, 5, 3e250);
  EXPECT_EQ(zscore_rows(flat), 2);
  EXPECT_EQ(flat.cwiseAbs().maxCoeff(), 0.0);
}

TEST(Normalize, RequireFiniteReportsCountAndFirstPosition) {
  RowMatrix X = RowMatrix::Ones(3, 4);
  EXPECT_NO_THROW(require_finite(X, "input"));
  X(1, 2) = std::numeric_limits<double>::quiet_NaN();
  X(2, 0) = std::numeric_limits<double>::infinity();
  const std::string msg = error_of([&] { require_finite(X, "my data"); });
  EXPECT_NE(msg.find("my data"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2 NaN"), std::string::npos) << msg;
  EXPECT_NE(msg.find("row 1, column 2"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- knn

TEST(Knn, ExactMatchesBruteForceAndKdtree) {
  const RowMatrix X = random_matrix(300, 3, 2);
  const int k = 7;
  const Matrix D = brute_distances(X);
  const Neighbors ex = knn_search(X, k, KnnMethod::exact, 1);
  const Neighbors kd = knn_search(X, k, KnnMethod::kdtree, 1);
  ASSERT_EQ(ex.n, 300);
  ASSERT_EQ(ex.k, k);
  ASSERT_EQ(kd.k, k);
  for (Index i = 0; i < X.rows(); ++i) {
    // brute-force ground truth
    std::vector<std::pair<double, int>> all;
    for (Index j = 0; j < X.rows(); ++j)
      if (j != i) all.emplace_back(D(i, j), static_cast<int>(j));
    std::sort(all.begin(), all.end());
    for (int j = 0; j < k; ++j) {
      EXPECT_EQ(ex.at(i, j), all[j].second) << "exact, point " << i << " rank " << j;
      EXPECT_EQ(kd.at(i, j), all[j].second) << "kdtree, point " << i << " rank " << j;
      EXPECT_NEAR(ex.dist(i, j), all[j].first, 1e-12);
      EXPECT_NEAR(kd.dist(i, j), all[j].first, 1e-12);
      EXPECT_NE(ex.at(i, j), i);
      if (j > 0) {
        EXPECT_LE(ex.dist(i, j - 1), ex.dist(i, j));
      }
    }
  }
}

TEST(Knn, ExactOnLargeInputsMatchesTruthWhateverTheRowOrder) {
  // Above 1,024 points the brute force selects its cut from a strided sample of each row's
  // distances. Rows drift with their index (so a row's nearest rows are its index neighbours,
  // as slice-points of a unit are) and every 8th row, the sampled ones, sits far away: the
  // sample then misjudges the cut in both directions and the search must still be exact.
  const Index n = 3000;
  RowMatrix X = random_matrix(n, 12, 5, 0.05);
  for (Index i = 0; i < n; ++i) {
    X(i, 0) += 0.01 * static_cast<double>(i);
    if (i % 8 == 0) X(i, 1) += 50.0;
  }
  const int k = 40;
  const Matrix D = brute_distances(X);
  const Neighbors ex = knn_search(X, k, KnnMethod::exact, 2);
  for (Index i = 0; i < n; ++i) {
    std::vector<std::pair<double, int>> all;
    for (Index j = 0; j < n; ++j)
      if (j != i) all.emplace_back(D(i, j), static_cast<int>(j));
    std::partial_sort(all.begin(), all.begin() + k, all.end());
    for (int j = 0; j < k; ++j) {
      ASSERT_EQ(ex.at(i, j), all[j].second) << "point " << i << " rank " << j;
      ASSERT_NEAR(ex.dist(i, j), all[j].first, 1e-12);
    }
  }
}

TEST(Knn, ExactIsAccurateForFarAwayClusters) {
  // Large common offset: GEMM-based squared distances lose digits, exact re-measurement must not.
  RowMatrix X = random_matrix(50, 4, 3, 1e-3);
  X.array() += 1e4;
  const Neighbors ex = knn_search(X, 3, KnnMethod::exact, 1);
  const Matrix D = brute_distances(X);
  for (Index i = 0; i < X.rows(); ++i) EXPECT_NEAR(ex.dist(i, 2), kth_other_distance(D, i, 3), 1e-12);
}

namespace {

// radius_all against brute force; `on_point`: each radius is exactly the 5th-nearest distance
// (boundary point must be included), otherwise midway between the 5th and 6th.
void check_radius_search(KnnMethod m, bool on_point) {
  const RowMatrix X = random_matrix(120, 2, 4);
  const Matrix D = brute_distances(X);
  std::vector<double> radius(120);
  for (Index i = 0; i < 120; ++i)
    radius[i] = on_point ? kth_other_distance(D, i, 5)
                         : 0.5 * (kth_other_distance(D, i, 5) + kth_other_distance(D, i, 6));
  KnnIndex index(X, m, 1);
  EXPECT_EQ(index.method(), m);
  const RadiusNeighbors r = index.radius_all(radius);
  ASSERT_EQ(r.size(), 120u);
  for (Index i = 0; i < 120; ++i) {
    std::set<int> got;
    for (auto& [j, d] : r[i]) {
      got.insert(j);
      EXPECT_NEAR(d, D(i, j), 1e-12);
    }
    std::set<int> want;
    for (Index j = 0; j < 120; ++j)
      if (j != i && D(i, j) <= radius[i]) want.insert(static_cast<int>(j));
    EXPECT_EQ(want.size(), 5u);
    EXPECT_EQ(got, want) << "method " << to_string(m) << " point " << i;
  }
}

}  // namespace

TEST(Knn, RadiusSearchMatchesBruteForce) {
  check_radius_search(KnnMethod::exact, false);
  check_radius_search(KnnMethod::kdtree, false);
}

TEST(Knn, RadiusSearchExactIsInclusive) { check_radius_search(KnnMethod::exact, true); }

TEST(Knn, RadiusSearchKdtreeIsInclusive) {
  check_radius_search(KnnMethod::kdtree, true);
}

TEST(Knn, RejectsKNotBelowN) {
  const RowMatrix X = random_matrix(5, 2, 5);
  EXPECT_THROW(knn_search(X, 5, KnnMethod::exact), Error);
  EXPECT_THROW(knn_search(X, 0, KnnMethod::exact), Error);
  EXPECT_THROW(knn_search(X, 6, KnnMethod::kdtree), Error);
  EXPECT_NO_THROW(knn_search(X, 4, KnnMethod::exact));
  EXPECT_THROW(knn_search(random_matrix(1, 2, 6), 1, KnnMethod::exact), Error);
}

// Huge finite values: squared norms overflow to Inf and the GEMM distances to NaN. The index
// refuses them with a message naming the magnitude and the allowed range (before, the brute
// force search found no candidate and read past its list); NaN input is refused too.
TEST(Knn, RefusesValuesWhoseSquaredDistancesOverflow) {
  const RowMatrix X = random_matrix(40, 5, 3, 1e200);
  for (KnnMethod m : {KnnMethod::exact, KnnMethod::kdtree}) {
    const std::string err = mmphate::testing::error_of([&] { knn_search(X, 3, m, 1); });
    EXPECT_NE(err.find("overflow squared distances"), std::string::npos) << err;
    EXPECT_NE(err.find("2^400"), std::string::npos) << err;
  }
  RowMatrix bad = random_matrix(10, 3, 4);
  bad(2, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(mmphate::testing::error_of([&] { knn_search(bad, 3, KnnMethod::exact, 1); }).find("NaN"),
            std::string::npos);
  // The same points scaled into range by distance_safe_scale (a power of two) search fine.
  const double s = distance_safe_scale(X);
  int e = 0;
  EXPECT_EQ(std::frexp(s, &e), 0.5);  // a power of two
  const Neighbors nb = knn_search(X * s, 3, KnnMethod::exact, 1);
  const Neighbors ref = knn_search(random_matrix(40, 5, 3, 1.0), 3, KnnMethod::exact, 1);
  EXPECT_EQ(nb.index, ref.index);
  EXPECT_EQ(distance_safe_scale(random_matrix(5, 3, 1)), 1.0);
}

TEST(Knn, ChooseMethodHonoursRequestAndSize) {
  EXPECT_EQ(choose_knn_method(100000, 3, KnnMethod::exact), KnnMethod::exact);
  EXPECT_EQ(choose_knn_method(10, 3, KnnMethod::kdtree), KnnMethod::kdtree);
  EXPECT_EQ(choose_knn_method(100, 3, KnnMethod::automatic), KnnMethod::exact);
  EXPECT_EQ(choose_knn_method(100000, 3, KnnMethod::automatic), KnnMethod::kdtree);
  EXPECT_EQ(choose_knn_method(100000, 100, KnnMethod::automatic), KnnMethod::kdtree);
}

// ---------------------------------------------------------------- kernel

TEST(Kernel, HandWorkedFourPointExample) {
  // 1-D points 0, 1, 3, 6; knn = 1 so sigma = (1, 1, 2, 3); alpha = 2; thresh = 1e-4.
  RowMatrix X(4, 1);
  X << 0, 1, 3, 6;
  const SparseMatrix K = alpha_decay_kernel(X, 1, 2.0, 1e-4, KnnMethod::exact, 1);
  const Matrix A(K);
  auto a = [](double d, double s) {  // asymmetric entry, thresholded
    const double w = std::exp(-(d / s) * (d / s));
    return w >= 1e-4 ? w : 0.0;
  };
  const double sigma[4] = {1, 1, 2, 3};
  const double x[4] = {0, 1, 3, 6};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const double want = i == j ? 1.0 : 0.5 * (a(std::abs(x[i] - x[j]), sigma[i]) + a(std::abs(x[i] - x[j]), sigma[j]));
      EXPECT_NEAR(A(i, j), want, 1e-15) << "(" << i << "," << j << ")";
    }
  // Spelled out: K(0,1) = e^-1; K(0,2) = (e^-9 + e^-2.25)/2 (e^-9 = 1.23e-4 survives the
  // threshold); K(0,3) = e^-4 / 2 (e^-36 from point 0 is dropped); K(1,3) = (e^-25 -> 0 + e^-25/9)/2.
  EXPECT_NEAR(A(0, 1), std::exp(-1.0), 1e-15);
  EXPECT_NEAR(A(0, 2), 0.5 * (std::exp(-9.0) + std::exp(-2.25)), 1e-15);
  EXPECT_NEAR(A(0, 3), 0.5 * std::exp(-4.0), 1e-15);
  EXPECT_NEAR(A(1, 3), 0.5 * std::exp(-25.0 / 9.0), 1e-15);
  EXPECT_EQ(K.coeff(2, 2), 1.0);
}

TEST(Kernel, AppendRowFormulaAndThreshold) {
  std::vector<Triplet> out;
  // sigma 2, alpha 3: w(j) = exp(-(d/2)^3)
  append_alpha_decay_row(0, 2.0, 3.0, 0.01, {{1, 1.0}, {2, 2.0}, {3, 4.0}, {0, 0.0}}, out);
  // self (1), d=1 -> e^-0.125, d=2 -> e^-1, d=4 -> e^-8 = 3.4e-4 < 0.01 dropped; j == i skipped
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].row(), 0);
  EXPECT_EQ(out[0].col(), 0);
  EXPECT_EQ(out[0].value(), 1.0);
  EXPECT_EQ(out[1].col(), 1);
  EXPECT_NEAR(out[1].value(), std::exp(-0.125), 1e-15);
  EXPECT_EQ(out[2].col(), 2);
  EXPECT_NEAR(out[2].value(), std::exp(-1.0), 1e-15);
  // the radius is where the weight reaches thresh
  const double r = alpha_decay_radius(2.0, 3.0, 0.01);
  EXPECT_NEAR(std::exp(-std::pow(r / 2.0, 3.0)), 0.01, 1e-12);
  EXPECT_TRUE(std::isinf(alpha_decay_radius(2.0, 3.0, 0.0)));
}

TEST(Kernel, MatchesBruteForceDefinitionOnRandomData) {
  const RowMatrix X = random_matrix(60, 3, 7);
  const int knn = 5;
  const double alpha = 10.0, thresh = 1e-4;
  const Matrix D = brute_distances(X);
  Matrix want = Matrix::Zero(60, 60);
  std::vector<double> sigma(60);
  for (Index i = 0; i < 60; ++i) sigma[i] = kth_other_distance(D, i, knn);
  for (Index i = 0; i < 60; ++i)
    for (Index j = 0; j < 60; ++j) {
      const double w = std::exp(-std::pow(D(i, j) / sigma[i], alpha));
      want(i, j) = i == j ? 1.0 : (w >= thresh ? w : 0.0);
    }
  want = 0.5 * (want + Matrix(want.transpose()));
  for (KnnMethod m : {KnnMethod::exact, KnnMethod::kdtree}) {
    KernelInfo info;
    const SparseMatrix K = alpha_decay_kernel(X, knn, alpha, thresh, m, 1, &info);
    EXPECT_EQ(info.knn_method, m);
    EXPECT_EQ(info.zero_bandwidth_points, 0);
    const Matrix A(K);
    EXPECT_LT((A - want).cwiseAbs().maxCoeff(), 1e-14) << to_string(m);
    // nonzero pattern equals the brute-force one
    Index nnz_want = (want.array() != 0.0).count();
    EXPECT_EQ(K.nonZeros(), nnz_want) << to_string(m);
  }
}

TEST(Kernel, SymmetricUnitDiagonalAndEntriesAboveHalfThreshold) {
  const RowMatrix X = random_matrix(80, 4, 8);
  const double thresh = 1e-3;
  const SparseMatrix K = alpha_decay_kernel(X, 4, 5.0, thresh, KnnMethod::automatic, 1);
  EXPECT_TRUE(is_symmetric(K, 0.0));
  for (Index i = 0; i < 80; ++i) EXPECT_EQ(K.coeff(i, i), 1.0);
  for (Index r = 0; r < K.outerSize(); ++r)
    for (SparseMatrix::InnerIterator it(K, r); it; ++it) {
      // thresholding precedes symmetrisation, so one-sided edges keep half their weight
      EXPECT_GE(it.value(), thresh / 2) << it.row() << "," << it.col();
      EXPECT_LE(it.value(), 1.0);
    }
  // each point is connected to at least its knn nearest: weight e^-1 at the bandwidth
  for (Index i = 0; i < 80; ++i) {
    Index deg = 0;
    for (SparseMatrix::InnerIterator it(K, i); it; ++it) ++deg;
    EXPECT_GE(deg, 5);
  }
}

TEST(Kernel, RejectsKnnNotBelowN) {
  const RowMatrix X = random_matrix(4, 2, 9);
  const std::string msg = error_of([&] { alpha_decay_kernel(X, 4, 40.0, 1e-4, KnnMethod::exact, 1); });
  EXPECT_NE(msg.find("knn"), std::string::npos) << msg;
}

TEST(Kernel, SymmetrizeAveragesWithTranspose) {
  std::vector<Triplet> t = {{0, 1, 0.4}, {1, 0, 0.2}, {0, 2, 0.6}, {2, 2, 1.0}};
  SparseMatrix K(3, 3);
  K.setFromTriplets(t.begin(), t.end());
  const Matrix S(symmetrize(K));
  EXPECT_DOUBLE_EQ(S(0, 1), 0.3);
  EXPECT_DOUBLE_EQ(S(1, 0), 0.3);
  EXPECT_DOUBLE_EQ(S(0, 2), 0.3);
  EXPECT_DOUBLE_EQ(S(2, 0), 0.3);
  EXPECT_DOUBLE_EQ(S(2, 2), 1.0);
  EXPECT_DOUBLE_EQ(S(1, 2), 0.0);
}

// ---------------------------------------------------------------- multislice

TEST(Multislice, InterSliceBandwidthHandComputed) {
  // one unit, three slices, 1-D features 0, 1, 3.
  RowMatrix F(3, 1);
  F << 0, 1, 3;
  // kappa = 1: nearest other distances 1, 1, 2 -> median 1
  EXPECT_NEAR(interslice_bandwidth(F, 3, 1, 1), 1.0, 1e-12);
  // kappa = 2: 3, 2, 3 -> median 3
  EXPECT_NEAR(interslice_bandwidth(F, 3, 1, 2), 3.0, 1e-12);
  // kappa beyond slices - 1 is clipped to slices - 1
  EXPECT_NEAR(interslice_bandwidth(F, 3, 1, 25), 3.0, 1e-12);

  // two units (rows: slice * units + unit), four slices: even count -> mean of middle values
  RowMatrix G(8, 1);
  // unit 0 over slices: 0, 1, 3, 6 ; unit 1 over slices: 0, 2, 4, 6
  G << 0, 0, 1, 2, 3, 4, 6, 6;
  // unit 0, kappa 1: 1, 1, 2, 3 -> median 1.5 ; unit 1: 2, 2, 2, 2 -> 2 ; mean 1.75
  EXPECT_NEAR(interslice_bandwidth(G, 4, 2, 1), 1.75, 1e-12);
}

TEST(Multislice, KernelMatchesDefinition) {
  const Index slices = 3, units = 6, probes = 4;
  RowMatrix F = random_matrix(slices * units, probes, 11);
  zscore_rows(F);
  Options opt = Options::mphate();
  opt.threads = 1;
  opt.intraslice_knn = 2;
  opt.interslice_knn = 1;
  MultisliceInfo info;
  const SparseMatrix K = multislice_kernel(F, slices, units, opt, &info);
  ASSERT_EQ(K.rows(), slices * units);
  const Matrix A(K);
  const double eps = interslice_bandwidth(F, slices, units, opt.interslice_knn);
  EXPECT_DOUBLE_EQ(info.interslice_eps, eps);

  for (Index s = 0; s < slices; ++s) {
    // intraslice block == thresholded plain alpha-decay kernel over that slice's units
    const RowMatrix Xs = F.middleRows(s * units, units);
    const Matrix Ks(alpha_decay_kernel(Xs, opt.intraslice_knn, opt.decay, opt.thresh, KnnMethod::exact, 1));
    for (Index i = 0; i < units; ++i)
      for (Index j = 0; j < units; ++j) {
        const double want = Ks(i, j) >= opt.thresh ? Ks(i, j) : 0.0;
        EXPECT_NEAR(A(s * units + i, s * units + j), want, 1e-14);
      }
  }
  for (Index a = 0; a < slices * units; ++a)
    for (Index b = 0; b < slices * units; ++b) {
      const Index sa = a / units, ua = a % units, sb = b / units, ub = b % units;
      if (sa == sb) continue;
      if (ua != ub) {
        EXPECT_EQ(A(a, b), 0.0) << "edge between different units of different slices";
      } else {
        const double d2 = (F.row(a) - F.row(b)).squaredNorm();
        const double w = std::exp(-d2 / (eps * eps));
        EXPECT_NEAR(A(a, b), w >= opt.thresh ? w : 0.0, 1e-14);
      }
    }
}

TEST(Multislice, SymmetricUnitDiagonalEntriesAboveThreshold) {
  const Index slices = 5, units = 8, probes = 6;
  RowMatrix F = random_matrix(slices * units, probes, 12);
  zscore_rows(F);
  Options opt = Options::mphate();
  opt.threads = 1;
  const SparseMatrix K = multislice_kernel(F, slices, units, opt);
  EXPECT_TRUE(is_symmetric(K, 1e-15));
  for (Index i = 0; i < K.rows(); ++i) EXPECT_EQ(K.coeff(i, i), 1.0);
  for (Index r = 0; r < K.outerSize(); ++r)
    for (SparseMatrix::InnerIterator it(K, r); it; ++it) {
      EXPECT_GE(it.value(), opt.thresh);
      EXPECT_LE(it.value(), 1.0);
    }
}

TEST(Multislice, ConstantUnitGivesFiniteKernel) {
  const Index slices = 4, units = 5, probes = 6;
  RowMatrix F = random_matrix(slices * units, probes, 13);
  for (Index s = 0; s < slices; ++s) F.row(s * units + 2).setConstant(0.7);
  EXPECT_EQ(zscore_rows(F), slices);
  Options opt = Options::mphate();
  opt.threads = 1;
  const SparseMatrix K = multislice_kernel(F, slices, units, opt);
  const Matrix A(K);
  EXPECT_TRUE(A.allFinite());
  // the constant unit is the same (zero) point in every slice: interslice weight 1
  EXPECT_EQ(A(0 * units + 2, 1 * units + 2), 1.0);
  EXPECT_NO_THROW(diffusion_operator(K));
}

TEST(Multislice, RejectsBadShapesAndIntrasliceKnn) {
  RowMatrix F = random_matrix(12, 3, 14);
  Options opt = Options::mphate();
  opt.threads = 1;
  EXPECT_THROW(multislice_kernel(F, 5, 3, opt), Error);  // 15 != 12 nodes
  opt.intraslice_knn = 4;                                 // 4 units per slice
  const std::string msg = error_of([&] { multislice_kernel(F, 3, 4, opt); });
  EXPECT_NE(msg.find("intraslice_knn"), std::string::npos) << msg;
  EXPECT_THROW(multislice_kernel(RowMatrix(12, 0), 3, 4, Options::mphate()), Error);
}

TEST(Multislice, FaithfulKernelBytesGrowsQuadraticallyInSlices) {
  const double a = faithful_kernel_bytes(10, 100), b = faithful_kernel_bytes(20, 100);
  EXPECT_GT(a, 0.0);
  EXPECT_NEAR(b / a, 4.0, 1e-12);
  // Nearly linear in units (the per-slice-pair block is shared).
  const double units_ratio = faithful_kernel_bytes(10, 200) / a;
  EXPECT_GT(units_ratio, 1.9);
  EXPECT_LE(units_ratio, 2.0);
}

// ---------------------------------------------------------------- diffusion

TEST(Diffusion, OperatorRowsSumToOneAndSymmetricFormMatches) {
  const RowMatrix X = random_matrix(50, 3, 15);
  const SparseMatrix K = alpha_decay_kernel(X, 5, 10.0, 1e-4, KnnMethod::exact, 1);
  const SparseMatrix P = diffusion_operator(K);
  const Matrix Pd(P), Kd(K);
  for (Index i = 0; i < 50; ++i) EXPECT_NEAR(Pd.row(i).sum(), 1.0, 1e-14);
  EXPECT_GE(Pd.minCoeff(), 0.0);
  const Vector d = kernel_degrees(K);
  for (Index i = 0; i < 50; ++i) EXPECT_NEAR(d(i), Kd.row(i).sum(), 1e-13);
  const Matrix A(symmetric_diffusion(K));
  EXPECT_LT((A - A.transpose()).cwiseAbs().maxCoeff(), 1e-15);
  for (Index i = 0; i < 50; ++i)
    for (Index j = 0; j < 50; ++j) EXPECT_NEAR(A(i, j), Kd(i, j) / std::sqrt(d(i) * d(j)), 1e-15);
  // A and P are similar: same spectrum
  Eigen::SelfAdjointEigenSolver<Matrix> es(A);
  Eigen::EigenSolver<Matrix> ep(Pd);
  std::vector<double> ea(es.eigenvalues().data(), es.eigenvalues().data() + 50), eb;
  for (Index i = 0; i < 50; ++i) eb.push_back(ep.eigenvalues()(i).real());
  std::sort(eb.begin(), eb.end());
  for (Index i = 0; i < 50; ++i) EXPECT_NEAR(ea[i], eb[i], 1e-9);
  EXPECT_NEAR(ea.back(), 1.0, 1e-12);
}

TEST(Diffusion, HandComputedThreeNodes) {
  Matrix Kd(3, 3);
  Kd << 1, 0.5, 0, 0.5, 1, 0.25, 0, 0.25, 1;
  const SparseMatrix K = Kd.sparseView();
  const Matrix P(diffusion_operator(K));
  EXPECT_NEAR(P(0, 0), 1 / 1.5, 1e-15);
  EXPECT_NEAR(P(0, 1), 0.5 / 1.5, 1e-15);
  EXPECT_NEAR(P(1, 2), 0.25 / 1.75, 1e-15);
  EXPECT_NEAR(P(2, 1), 0.25 / 1.25, 1e-15);
  EXPECT_EQ(P(0, 2), 0.0);
  const Matrix A(symmetric_diffusion(K));
  EXPECT_NEAR(A(1, 2), 0.25 / std::sqrt(1.75 * 1.25), 1e-15);
}

TEST(Diffusion, IsolatedNodeThrowsAndNormalizeRowsKeepsZeroRows) {
  std::vector<Triplet> t = {{0, 0, 1.0}, {0, 1, 1.0}, {1, 0, 1.0}, {1, 1, 3.0}};
  SparseMatrix K(3, 3);  // row 2 empty
  K.setFromTriplets(t.begin(), t.end());
  const std::string msg = error_of([&] { diffusion_operator(K); });
  EXPECT_NE(msg.find("row 2"), std::string::npos) << msg;
  EXPECT_THROW(kernel_degrees(K), Error);
  EXPECT_THROW(symmetric_diffusion(K), Error);
  SparseMatrix M = K;
  normalize_rows(M);
  EXPECT_DOUBLE_EQ(M.coeff(0, 0), 0.5);
  EXPECT_DOUBLE_EQ(M.coeff(1, 0), 0.25);
  EXPECT_DOUBLE_EQ(M.coeff(1, 1), 0.75);
  EXPECT_EQ(Matrix(M).row(2).cwiseAbs().sum(), 0.0);
}

// The interslice union of one unit: a pair found from either side appears in both rows once,
// with the larger weight, columns ascending.
TEST(SparseBuild, SymmetricUnionKeepsMaxAndSortsColumns) {
  LocalRows d;
  d.start = {0, 2, 3, 3};  // 3 points: 0 -> {2, 1}, 1 -> {0}, 2 -> {}
  d.col = {2, 1, 0};
  d.val = {0.5, 0.25, 0.75};
  const LocalRows u = symmetric_union(d);
  ASSERT_EQ(u.rows(), 3);
  const std::vector<Index> start = {0, 2, 3, 4};
  EXPECT_EQ(u.start, start);
  EXPECT_EQ(u.col, (std::vector<int>{1, 2, 0, 0}));
  EXPECT_EQ(u.val, (std::vector<double>{0.75, 0.5, 0.75, 0.5}));
}

// Eigen 3.4's SparseMatrix copies on assignment from a temporary; ours must move (the 1.28 M-node
// kernel is 4.8 GB): the storage changes hands instead of being duplicated.
TEST(SparseBuild, SparseMatrixMovesInsteadOfCopying) {
  SparseMatrix a(3, 3);
  a.insert(0, 1) = 2.0;
  a.makeCompressed();
  const double* storage = a.valuePtr();
  SparseMatrix b;
  b = std::move(a);
  EXPECT_EQ(b.valuePtr(), storage);
  EXPECT_EQ(b.coeff(0, 1), 2.0);
  SparseMatrix c(std::move(b));
  EXPECT_EQ(c.valuePtr(), storage);
  auto make = [] {
    SparseMatrix k(2, 2);
    k.insert(1, 0) = 3.0;
    return k;
  };
  SparseMatrix d;
  d = make();
  EXPECT_EQ(d.coeff(1, 0), 3.0);
}

TEST(KnnOverlap, OneForSimilarLayoutsLowForShuffledOnes) {
  const RowMatrix X = random_matrix(400, 2, 11);
  // A rotation and scaling keeps every neighbourhood.
  Matrix R(2, 2);
  R << 0.6, -0.8, 0.8, 0.6;
  const RowMatrix turned = 3.0 * X * R;
  const Neighbors own = knn_search(X, 10);
  EXPECT_DOUBLE_EQ(knn_overlap(own, turned), 1.0);
  // Rows shuffled: neighbourhoods are those of random points (about k / n of them kept).
  RowMatrix shuffled = X;
  std::mt19937 rng(3);
  std::vector<Index> order(400);
  for (Index i = 0; i < 400; ++i) order[static_cast<std::size_t>(i)] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (Index i = 0; i < 400; ++i) shuffled.row(i) = X.row(order[static_cast<std::size_t>(i)]);
  EXPECT_LT(knn_overlap(own, shuffled), 0.1);
  // A small jitter keeps most of them.
  const RowMatrix jittered = X + 0.002 * random_matrix(400, 2, 12);
  const double kept = knn_overlap(own, jittered);
  EXPECT_GT(kept, 0.8);
  EXPECT_LT(kept, 1.0);
  EXPECT_FALSE(mmphate::testing::error_of([&] { knn_overlap(own, X.topRows(10)); }).empty());
}
