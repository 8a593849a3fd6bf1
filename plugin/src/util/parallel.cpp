#include "util/parallel.hpp"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

// OpenBLAS (when it provides LAPACK) has its own thread pool; declared weak so the
// library still links against a LAPACK without it.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

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

namespace {
int omp_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
void set_omp_threads(int t) {
#ifdef _OPENMP
  omp_set_num_threads(t);
#else
  static_cast<void>(t);
#endif
}
bool blas_resizable() { return openblas_set_num_threads && openblas_get_num_threads && !blas_pool_frozen; }
}  // namespace

EngineThreads::EngineThreads(int threads) : omp_before_(omp_threads()) {
  const int t = resolve_threads(threads);
  set_omp_threads(t);
  if (blas_resizable() && openblas_get_num_threads() != t) {
    blas_before_ = openblas_get_num_threads();
    openblas_set_num_threads(t);
  }
}

EngineThreads::~EngineThreads() {
  set_omp_threads(omp_before_);
  if (blas_before_ > 0 && blas_resizable()) openblas_set_num_threads(blas_before_);
}

void set_engine_threads(int threads) {
  const int t = resolve_threads(threads);
  set_omp_threads(t);
  if (blas_resizable()) openblas_set_num_threads(t);
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


void parallel_workers(Index workers, int threads, const std::function<void(Index)>& fn) {
  const Index t = std::min<Index>(workers, resolve_threads(threads));
  if (t <= 1) {
    if (t == 1) fn(0);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](Index w) {
    try {
      fn(w);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
#ifdef _OPENMP
#pragma omp parallel num_threads(static_cast<int>(t))
  run(omp_get_thread_num());
#else
  for (Index w = 0; w < t; ++w) run(w);
#endif
  if (error) std::rethrow_exception(error);
}

}  // namespace mmphate
