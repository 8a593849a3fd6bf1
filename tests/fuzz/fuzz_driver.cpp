// The CTest driver of a fuzz harness: replays the regression corpus, then runs a fixed number
// of seeded random mutations. Each input must be accepted or rejected with mmphate::Error;
// any other exception, a crash, a sanitizer report, a hang or a huge allocation is a finding:
// the input is saved and the run fails. Usage and environment: tests/fuzz/README.md.
#include <cxxabi.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "fuzz.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
// Under ASan one allocation above 256 MB (the inputs are at most 1 MiB) or a process above
// 2 GB is reported with its stack and ends the run: an unbounded allocation is a finding.
// Allocation stacks of 10 frames (not 30): the harnesses allocate much, and a report's own
// stack stays complete.
extern "C" const char* __asan_default_options() {
  return "detect_leaks=1:max_allocation_size_mb=256:hard_rss_limit_mb=2048:malloc_context_size=10";
}
extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
#endif

namespace {

using namespace mmphate::fuzz;
using Clock = std::chrono::steady_clock;

std::string g_last_input;  // the input in flight, on disk (for crashes and hangs)
std::string g_save_dir;
std::string g_target;
const char* g_phase = "starting";  // what a crash interrupted: the reader, or the harness itself

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  if (*end != '\0') {
    std::fprintf(stderr, "fuzz: %s='%s' is not a non-negative integer\n", name, v);
    std::exit(2);
  }
  return x;
}

// Copies the input in flight to the save directory; async-signal-safe enough for a dying
// process (plain read/write on file descriptors).
void save_last_input(const char* why) {
  const std::string dst = g_save_dir + "/" + g_target + "-" + why + ".bin";
  FILE* in = std::fopen(g_last_input.c_str(), "rb");
  FILE* out = std::fopen(dst.c_str(), "wb");
  if (in && out) {
    char buf[65536];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, in)) > 0;) std::fwrite(buf, 1, n, out);
  }
  if (in) std::fclose(in);
  if (out) std::fclose(out);
  std::fprintf(stderr, "fuzz: FINDING (%s) in %s: the input is saved as %s\n", why, g_target.c_str(), dst.c_str());
}

void on_sanitizer_death() {
  std::fprintf(stderr, "fuzz: the crash happened while %s\n", g_phase);
  save_last_input("crash");
}

// Ends the process when one input runs past its deadline (a hang or a runaway loop).
class Watchdog {
 public:
  explicit Watchdog(double seconds) : limit_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds))) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const auto start = started_.load();
        if (start != 0 && Clock::now().time_since_epoch().count() - start > limit_.count()) {
          save_last_input("hang");
          std::fprintf(stderr, "fuzz: one input ran longer than %.0f s (MMPHATE_FUZZ_TIMEOUT_S)\n",
                       std::chrono::duration<double>(limit_).count());
          std::_Exit(3);
        }
      }
    });
  }
  ~Watchdog() {
    stop_ = true;
    thread_.join();
  }
  void begin() { started_ = Clock::now().time_since_epoch().count(); }
  void end() { started_ = 0; }

 private:
  Clock::duration limit_;
  std::atomic<Clock::rep> started_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && d ? d.get() : name;
}

// A rejection message with the scratch path and numbers blanked: the kinds of rejection.
std::string rejection_kind(std::string m, const std::string& scratch) {
  for (std::size_t at; (at = m.find(scratch)) != std::string::npos;) m.erase(at, scratch.size());
  std::string out;
  for (char c : m) {
    const bool digit = c >= '0' && c <= '9';
    if (digit && !out.empty() && out.back() == '#') continue;
    out += digit ? '#' : c;
    if (out.size() >= 70) break;
  }
  return out;
}

// Inputs mutations start from are at most this long: big ones (40 000-deep nesting, long
// strings) are replayed and made afresh, but mutating them again costs much and finds little.
constexpr std::size_t kMaxPooled = 16384;

struct Stats {
  std::size_t accepted = 0, rejected = 0, findings = 0;
  std::map<std::string, std::size_t> kinds;
};

// Runs one input; returns false (and saves it) on a finding.
bool run_one(const Target& t, const std::string& input, const std::string& scratch, const std::string& label,
             Watchdog& dog, Stats& stats, bool& accepted) {
  write_file(g_last_input, input);
  accepted = false;
  std::string finding;
  g_phase = "the reader ran on the saved input";
  dog.begin();
  try {
    t.run(input, scratch);
    accepted = true;
    ++stats.accepted;
  } catch (const mmphate::Error& e) {
    ++stats.rejected;
    ++stats.kinds[rejection_kind(e.what(), scratch)];
  } catch (const Broken& e) {
    finding = std::string("accepted input breaks a promise: ") + e.what();
  } catch (const std::bad_alloc& e) {
    finding = std::string("allocation failure (std::bad_alloc: an unbounded allocation)");
  } catch (const std::exception& e) {
    finding = "not an mmphate::Error but " + demangle(typeid(e).name()) + ": " + e.what();
  } catch (...) {
    finding = "an exception of unknown type";
  }
  dog.end();
  g_phase = "the harness made the next input (a harness bug; the saved input is the one before)";
  if (finding.empty()) return true;
  ++stats.findings;
  const std::string dst = g_save_dir + "/" + g_target + "-finding-" + label + ".bin";
  write_file(dst, input);
  std::fprintf(stderr, "fuzz: FINDING in %s, %s: %s\n  input saved as %s (%zu bytes); rerun: fuzz_%s %s\n",
               t.name, label.c_str(), finding.c_str(), dst.c_str(), input.size(), t.name, dst.c_str());
  return false;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.' && std::strcmp(e->d_name, "README.md") != 0) out.push_back(dir + "/" + e->d_name);
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());  // a fixed order: the run does not depend on the file system
  return out;
}

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--corpus DIR]... [FILE...] | --write-seeds DIR\n"
               "  replays every file of each corpus DIR, then runs MMPHATE_FUZZ_ITERATIONS seeded mutations;\n"
               "  with FILE arguments, runs only those inputs (to reproduce a finding).\n"
               "environment: MMPHATE_FUZZ_ITERATIONS, MMPHATE_FUZZ_SEED, MMPHATE_FUZZ_TIMEOUT_S,\n"
               "             MMPHATE_FUZZ_MAX_LEN, MMPHATE_FUZZ_SAVE_DIR (tests/fuzz/README.md)\n",
               argv0);
}

}  // namespace

int main(int argc, char** argv) {
  const Target& t = target();
  g_target = t.name;
  std::vector<std::string> corpus_dirs, files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--corpus" && i + 1 < argc) corpus_dirs.push_back(argv[++i]);
    else if (a == "--write-seeds" && i + 1 < argc) {  // a starting corpus for libFuzzer
      const std::vector<std::string> seeds = t.seeds();
      make_dirs(argv[++i]);
      for (std::size_t k = 0; k < seeds.size(); ++k) write_file(std::string(argv[i]) + "/seed-" + std::to_string(k), seeds[k]);
      return 0;
    }
    else if (a == "-h" || a == "--help") return usage(argv[0]), 0;
    else if (a.rfind("-", 0) == 0) return usage(argv[0]), 2;
    else files.push_back(a);
  }
  const std::uint64_t iterations = env_u64("MMPHATE_FUZZ_ITERATIONS", t.iterations);
  const std::uint64_t seed = env_u64("MMPHATE_FUZZ_SEED", 1);
  const std::size_t max_len = env_u64("MMPHATE_FUZZ_MAX_LEN", 1 << 20);
  const double timeout_s = static_cast<double>(env_u64("MMPHATE_FUZZ_TIMEOUT_S", 20));
  g_save_dir = std::getenv("MMPHATE_FUZZ_SAVE_DIR") ? std::getenv("MMPHATE_FUZZ_SAVE_DIR") : ".";

#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_set_death_callback(on_sanitizer_death);
#else
  // Without ASan a 4 GB address-space limit turns an unbounded allocation into bad_alloc.
  const rlimit lim{rlim_t(4) << 30, rlim_t(4) << 30};
  setrlimit(RLIMIT_AS, &lim);
#endif
  mmphate::logger()->set_level(spdlog::level::off);  // skipped frame lines would warn thousands of times

  char tmpl[] = "/tmp/mmphate_fuzz_XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("fuzz: mkdtemp");
    return 2;
  }
  const std::string root = tmpl, scratch = root + "/s";
  make_dirs(scratch);
  g_last_input = root + "/last-input";
  std::fprintf(stderr, "fuzz_%s: seed %llu, scratch %s (after a hard crash the input is %s)\n", t.name,
               static_cast<unsigned long long>(seed), root.c_str(), g_last_input.c_str());

  Stats stats;
  Watchdog dog(timeout_s);
  const auto t0 = Clock::now();
  std::vector<std::string> pool = t.seeds();
  bool accepted = false;
  std::size_t replayed = 0;
  for (std::size_t i = 0; i < pool.size(); ++i) run_one(t, pool[i], scratch, "seed-" + std::to_string(i), dog, stats, accepted);
  for (const auto& dir : corpus_dirs)
    for (const auto& path : files_in(dir)) {
      const std::string input = read_file(path);
      const std::string name = path.substr(path.rfind('/') + 1);
      run_one(t, input, scratch, "corpus-" + name, dog, stats, accepted);
      if (input.size() <= kMaxPooled) pool.push_back(input);
      ++replayed;
    }
  for (const auto& path : files) {
    run_one(t, read_file(path), scratch, "file", dog, stats, accepted);
    ++replayed;
  }

  if (files.empty()) {
    const std::vector<std::string> keys = json_keys(pool);
    const std::size_t base = pool.size();
    for (std::uint64_t i = 0; i < iterations; ++i) {
      // Every iteration has its own generator: a finding names (seed, iteration) and the run
      // never depends on timing.
      Rng rng(seed * 0x9E3779B97F4A7C15ull + i);
      const std::string input = mutate(pool[uniform(rng, pool.size())], pool, keys, t, rng, max_len);
      if (!run_one(t, input, scratch, "seed" + std::to_string(seed) + "-iter" + std::to_string(i), dog, stats, accepted))
        if (stats.findings >= 20) break;
      // Accepted inputs join the pool (bounded), so mutations also build on mutations.
      if (accepted && input.size() <= kMaxPooled) {
        if (pool.size() < base + 256) pool.push_back(input);
        else pool[base + uniform(rng, 256)] = input;
      }
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::fprintf(stderr, "fuzz_%s: %zu inputs (%zu seeds, %zu replayed, %llu mutated) in %.1f s: %zu accepted, %zu rejected, %zu findings\n",
               t.name, stats.accepted + stats.rejected + stats.findings, t.seeds().size(), replayed,
               static_cast<unsigned long long>(files.empty() ? iterations : 0), secs, stats.accepted, stats.rejected,
               stats.findings);
  std::vector<std::pair<std::size_t, std::string>> kinds;
  for (const auto& [k, n] : stats.kinds) kinds.emplace_back(n, k);
  std::sort(kinds.rbegin(), kinds.rend());
  std::fprintf(stderr, "  %zu kinds of rejection; the most frequent:\n", kinds.size());
  for (std::size_t i = 0; i < kinds.size() && i < 12; ++i) std::fprintf(stderr, "  %6zu  %s\n", kinds[i].first, kinds[i].second.c_str());
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return stats.findings == 0 ? 0 : 1;
}
