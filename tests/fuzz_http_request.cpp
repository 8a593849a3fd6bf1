// Optional libFuzzer target for the serve command's request parser (clang only, see
// tests/run_libfuzzer.sh): the same invariants as the seeded CTest harness, on coverage-guided
// inputs. The first byte picks what the rest is fed to: a request head or a Range value.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "http_invariants.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string why = (data[0] & 1) ? mmphate::http::invariants::check_range_all_sizes(input)
                                        : mmphate::http::invariants::check_request(input);
  if (!why.empty()) {
    std::fprintf(stderr, "invariant broken: %s\n", why.c_str());
    std::abort();
  }
  return 0;
}
