#include "mmphate/allocator.hpp"

#include <malloc.h>

namespace mmphate {

void keep_freed_memory_mapped() {
  mallopt(M_MMAP_MAX, 0);                // serve large blocks from the heap, not fresh mmaps
  mallopt(M_TRIM_THRESHOLD, 1 << 30);    // return heap memory to the OS only above 1 GiB free
  mallopt(M_TOP_PAD, 64 << 20);          // grow the heap in 64 MiB steps
}

}  // namespace mmphate
