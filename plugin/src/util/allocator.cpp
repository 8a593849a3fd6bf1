#include "mmphate/allocator.hpp"

#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace mmphate {

void keep_freed_memory_mapped() {
  mallopt(M_MMAP_MAX, 0);                // serve large blocks from the heap, not fresh mmaps
  mallopt(M_TRIM_THRESHOLD, 1 << 30);    // return heap memory to the OS only above 1 GiB free
  mallopt(M_TOP_PAD, 64 << 20);          // grow the heap in 64 MiB steps
}

void reexec_with_huge_pages(char** argv) {
  if (std::getenv("MMPHATE_NO_REEXEC")) return;
  const char* current = std::getenv("GLIBC_TUNABLES");
  std::string tunables = current ? current : "";
  if (tunables.find("glibc.malloc.hugetlb") != std::string::npos) return;
  tunables += tunables.empty() ? "glibc.malloc.hugetlb=1" : ":glibc.malloc.hugetlb=1";
  if (::setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0) return;
  ::setenv("MMPHATE_NO_REEXEC", "1", 1);  // never loop, whatever the exec does
  ::execv("/proc/self/exe", argv);
  // exec failed: carry on without huge pages.
}

}  // namespace mmphate
