// Bounded, seeded random-mutation fuzzing of mmphate's readers of untrusted files
// (tests/fuzz/README.md). A harness describes one reader as a Target; fuzz_driver.cpp runs it
// for a fixed number of inputs under CTest, libfuzzer_main.cpp hands it to libFuzzer.
#pragma once
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace mmphate::fuzz {

using Rng = std::mt19937_64;

// Thrown by a harness when the reader accepted an input but broke a promise of its API
// (e.g. an array whose byte count disagrees with its shape): always a finding.
struct Broken : std::logic_error {
  using std::logic_error::logic_error;
};

struct Target {
  const char* name;
  // Valid (or nearly valid) inputs that mutations start from.
  std::vector<std::string> (*seeds)();
  // Runs the reader on one input. Returns normally when the input was accepted, throws
  // mmphate::Error when it was cleanly rejected; anything else is a finding. `scratch` is an
  // empty-or-reused directory the harness may write its files into.
  void (*run)(const std::string& input, const std::string& scratch);
  // Words of the format that mutations insert (keys, dtypes, separators).
  std::vector<std::string> dictionary;
  // JSON documents (whole input or single lines): structure-aware mutations apply.
  bool json = false;
  // Optional generator of fresh, format-aware inputs (nullptr: none).
  std::string (*generate)(Rng& rng) = nullptr;
  // Mutated inputs of one CTest run (MMPHATE_FUZZ_ITERATIONS overrides): sized so that each
  // harness takes a few seconds under ASan on one core.
  std::uint64_t iterations = 2000;
};

// Defined once by each harness.
const Target& target();

// Helpers for harnesses.
void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);
void make_dirs(const std::string& path);
std::uint64_t uniform(Rng& rng, std::uint64_t n);  // in [0, n), n >= 1

// The object keys of every input that is JSON (whole or line by line), sorted, unique.
std::vector<std::string> json_keys(const std::vector<std::string>& inputs);

// A few mutations (1..8) of `input`; `pool` gives splice partners, `keys` the format's keys.
std::string mutate(const std::string& input, const std::vector<std::string>& pool, const std::vector<std::string>& keys,
                   const Target& t, Rng& rng, std::size_t max_len);

}  // namespace mmphate::fuzz
