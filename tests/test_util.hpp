// Shared helpers of the unit tests: one engine thread per test process, seeded data.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>

#include "mmphate/error.hpp"
#include "util/parallel.hpp"
#include "mmphate/types.hpp"

// In the ASan + UBSan copy of a test binary (tests/sanitizers.cmake), skips a test that is
// too slow there; the plain copy always runs it. Eigen's matrix kernels built at -O1 with
// ASan run 100-150x slower than the plain -O3 build (ParityTree.EmbeddingAgreement: 1 s
// plain, 165 s under ASan), so only the tests at fixture size are skipped: the same code
// runs under ASan in the small engine tests.
#ifdef MMPHATE_SANITIZED
#define MMPHATE_SKIP_UNDER_ASAN() GTEST_SKIP() << "too slow under ASan (tests/test_util.hpp); runs in the plain build"
#else
#define MMPHATE_SKIP_UNDER_ASAN() static_cast<void>(0)
#endif

namespace mmphate::testing {

// Eigen, OpenMP and BLAS on one thread: the tests are tiny and ctest runs them in parallel.
class SingleThreaded : public ::testing::Environment {
 public:
  void SetUp() override { set_engine_threads(1); }
};

// Gaussian rows x cols matrix, seeded.
inline RowMatrix random_matrix(Index rows, Index cols, std::uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  RowMatrix X(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) X(i, j) = normal(rng);
  return X;
}

// Exact pairwise distances between the rows of X, by brute force (n x n).
inline Matrix brute_distances(const RowMatrix& X) {
  const Index n = X.rows();
  Matrix D(n, n);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < n; ++j) D(i, j) = (X.row(i) - X.row(j)).norm();
  return D;
}

// The message of the mmphate::Error that fn throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace mmphate::testing
