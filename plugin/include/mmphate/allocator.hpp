/// @file
/// Process-wide allocator tuning for batch runs (CLI, benchmarks).
///
/// On the virtual machines we run on, a page fault costs ~15 us, and glibc serves every block
/// over 128 KiB-32 MiB with a fresh mmap that is faulted in page by page and unmapped on free.
/// The engine's dense stages allocate and free blocks of 10-100 MB in loops, so faults took
/// more than half of a 100k-point run (measured: 24.6 s -> 11.1 s with the heap kept). This
/// keeps large blocks on the heap and freed memory mapped for reuse. It changes the whole
/// process: the CLI and benchmarks call it, and a Monitor does at start unless its config says
/// process.allocator = "default" (a live updater's per-frame buffers otherwise page-fault and
/// unmap every frame next to the training thread).
#pragma once

namespace mmphate {

void keep_freed_memory_mapped();

/// Transparent huge pages for the heap. The kernel here backs memory with 2 MiB pages only
/// where asked (madvise mode); glibc asks for every heap and mapped block when
/// GLIBC_TUNABLES has glibc.malloc.hugetlb=1, which must be set before the process starts.
/// Call first thing in main(): if the tunable is missing it is added and the program
/// re-executes itself once (set MMPHATE_NO_REEXEC=1 to prevent that). Measured: 40k-node
/// MM-PHATE 5.3 s -> 4.4 s, as each first touch of 2 MiB costs one fault instead of 512.
void reexec_with_huge_pages(char** argv);

}  // namespace mmphate
