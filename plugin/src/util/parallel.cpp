#include "util/parallel.hpp"

#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

// OpenBLAS (when it provides LAPACK) has its own thread pool; declared weak so the
// library still links against a LAPACK without it.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace mmphate {
namespace {
// Per calling thread: whether set_engine_threads may resize OpenBLAS's process-wide pool.
thread_local bool blas_pool_frozen = false;
}  // namespace

BlasPoolFrozen::BlasPoolFrozen() : previous_(blas_pool_frozen) { blas_pool_frozen = true; }
BlasPoolFrozen::~BlasPoolFrozen() { blas_pool_frozen = previous_; }

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

void set_engine_threads(int threads) {
  const int t = resolve_threads(threads);
  Eigen::setNbThreads(t);
#ifdef _OPENMP
  omp_set_num_threads(t);
#endif
  if (openblas_set_num_threads && !blas_pool_frozen) openblas_set_num_threads(t);
}

void parallel_for(Index n, int threads, const std::function<void(Index)>& fn) {
  const int t = resolve_threads(threads);
  if (t <= 1 || n < 2) {
    for (Index i = 0; i < n; ++i) fn(i);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16) num_threads(t)
  for (Index i = 0; i < n; ++i) fn(i);
#else
  for (Index i = 0; i < n; ++i) fn(i);
#endif
}

}  // namespace mmphate
