// Thread control. The engine runs on `threads` OpenMP threads (Options::threads; 0 = all
// hardware threads); Eigen's GEMM and LAPACK share the same setting.
//
// The library changes no process-wide setting unless a caller asks: an engine call holds an
// EngineThreads for its duration, which sets OpenMP's count of the calling thread only (Eigen's
// GEMM follows it, because mmphate never pins Eigen::setNbThreads, whose value is global) and
// puts back what was there when the call returns. OpenBLAS's pool is process-wide; it is sized
// for the call and restored after, or left alone where a BlasPoolFrozen is alive.
#pragma once
#include <functional>

#include "mmphate/types.hpp"

namespace mmphate {

// Resolves 0 to the hardware thread count.
int resolve_threads(int threads);

// While alive, the calling thread's engine work runs on `threads` threads (see above); the
// previous counts are restored when it ends. Nests.
class EngineThreads {
 public:
  explicit EngineThreads(int threads);
  ~EngineThreads();
  EngineThreads(const EngineThreads&) = delete;
  EngineThreads& operator=(const EngineThreads&) = delete;

 private:
  int omp_before_ = 0;
  int blas_before_ = 0;  // 0: OpenBLAS's pool was not resized
};

// Sets the calling thread's OpenMP count and (unless frozen) OpenBLAS's pool for good: for
// programs and test drivers that want one setting for the whole process.
void set_engine_threads(int threads);

// While alive, EngineThreads and set_engine_threads on this thread leave OpenBLAS's pool alone.
// OpenBLAS has one process-wide pool that LibTorch's CPU kernels share, and resizing it changes
// how torch splits its sums: the monitor's updater thread holds one of these so that training
// with the monitor gives bit-identical weights to training without it (tests/test_monitor_torch.cpp).
class BlasPoolFrozen {
 public:
  BlasPoolFrozen();
  ~BlasPoolFrozen();
  BlasPoolFrozen(const BlasPoolFrozen&) = delete;
  BlasPoolFrozen& operator=(const BlasPoolFrozen&) = delete;

 private:
  bool previous_;
};

// Runs fn(i) for i in [0, n) on up to `threads` threads, dynamic schedule.
void parallel_for(Index n, int threads, const std::function<void(Index)>& fn);

// Runs fn(w) on up to min(workers, threads) threads at once (w: 0, 1, ...), so that a worker
// can keep scratch buffers across the items it takes instead of allocating them per item. The
// workers must share the items through a counter: fewer may run (one, when nested in another
// parallel region). The first exception a worker throws is rethrown here.
void parallel_workers(Index workers, int threads, const std::function<void(Index)>& fn);

}  // namespace mmphate
