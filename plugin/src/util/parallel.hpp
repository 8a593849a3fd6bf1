// Thread control. The engine runs on `threads` OpenMP threads (Options::threads; 0 = all
// hardware threads); Eigen's GEMM and LAPACK share the same setting.
#pragma once
#include <functional>

#include "mmphate/types.hpp"

namespace mmphate {

// Resolves 0 to the hardware thread count.
int resolve_threads(int threads);

// Applies the thread count to Eigen, OpenMP and (when present) OpenBLAS.
void set_engine_threads(int threads);

// While alive, set_engine_threads on this thread leaves OpenBLAS's pool alone. OpenBLAS has
// one process-wide pool that LibTorch's CPU kernels share, and resizing it changes how torch
// splits its sums: the monitor's updater thread holds one of these so that training with the
// monitor gives bit-identical weights to training without it (tests/test_monitor_torch.cpp).
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

}  // namespace mmphate
