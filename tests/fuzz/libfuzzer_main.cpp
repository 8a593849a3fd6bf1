// libFuzzer entry point over the same harnesses (optional, clang only: MMPHATE_LIBFUZZER).
// A clean mmphate::Error is an ordinary rejection; anything else aborts, which libFuzzer
// reports with the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "fuzz.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string scratch = [] {
    mmphate::logger()->set_level(spdlog::level::off);
    const auto dir = std::filesystem::temp_directory_path() / ("mmphate_libfuzzer_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return dir.string();
  }();
  try {
    mmphate::fuzz::target().run(std::string(reinterpret_cast<const char*>(data), size), scratch);
  } catch (const mmphate::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: not an mmphate::Error: %s\n", e.what());
    std::abort();
  }
  return 0;
}
