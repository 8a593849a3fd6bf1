// Process-wide allocator tuning for batch runs (CLI, benchmarks).
//
// On the virtual machines we run on, a page fault costs ~15 us, and glibc serves every block
// over 128 KiB-32 MiB with a fresh mmap that is faulted in page by page and unmapped on free.
// The engine's dense stages allocate and free blocks of 10-100 MB in loops, so faults took
// more than half of a 100k-point run (measured: 24.6 s -> 11.1 s with the heap kept). This
// keeps large blocks on the heap and freed memory mapped for reuse. It changes the whole
// process, so the library never calls it on its own: executables opt in.
#pragma once

namespace mmphate {

void keep_freed_memory_mapped();

}  // namespace mmphate
