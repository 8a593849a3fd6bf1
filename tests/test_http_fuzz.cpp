// Bounded, seeded mutation fuzzing of the serve command's request parser: 20,000 heads and
// 20,000 Range values, each derived from valid ones by a few random edits (bit flips, bytes,
// splices, cuts, NULs, huge numbers, very long lines). The parser must not crash (ASan runs
// the same harness where available), must return promptly and its answers must satisfy the
// invariants of http_invariants.hpp. Works with g++ alone; no libFuzzer needed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "http_invariants.hpp"

using namespace mmphate::http;

namespace {

const std::vector<std::string> kHeads = {
    "GET /run/frames.jsonl HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nRange: bytes=2-11\r\n\r\n",
    "HEAD /viewer/index.html?run=/run/&live=1 HTTP/1.1\r\nHost: localhost:8765\r\nRange: bytes=-500\r\n\r\n",
    "GET /run/frames/frame_000009.f32 HTTP/1.0\r\n\r\n",
    "GET /run/frames.jsonl HTTP/1.1\nHost: 127.0.0.1:1\nRange: bytes=51333-\n\n",
    "GET /run/a%20b%2e%2e/c HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
    "Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n"
    "Sec-Fetch-Dest: empty\r\nCache-Control: no-cache\r\nRange: bytes=0-99999999999999999999\r\n\r\n",
};

const std::vector<std::string> kRanges = {"bytes=2-11", "bytes=5-", "bytes=-10", "bytes=50-10", "bytes=0-1,5-9",
                                          "BYTES=0-0", "bytes=18446744073709551615-"};

const std::vector<std::string> kTokens = {
    std::string(1, '\0'), "\r", "\n", "\r\n", "\r\n\r\n", "\n\n", " ", "\t", ":", "-", ",", "=", "%", "%00", "%2e%2e/",
    "bytes=", "99999999999999999999999999", "18446744073709551615", "18446744073709551616", "-0", "\r\nRange: ",
    "\r\nHost: ", "\r\nHost: 127.0.0.1:8765", "HTTP/1.1", "HTTP/2.0", "\xff", "\x7f", " \r\n folded"};

class Mutator {
 public:
  explicit Mutator(std::uint64_t seed) : rng_(seed) {}

  std::size_t below(std::size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }

  std::string mutate(std::string s, const std::vector<std::string>& corpus) {
    const std::size_t edits = 1 + below(4);
    for (std::size_t e = 0; e < edits; ++e) {
      const std::size_t pos = below(s.size() + 1);
      switch (below(9)) {
        case 0:  // flip one bit
          if (!s.empty()) s[below(s.size())] ^= static_cast<char>(1u << below(8));
          break;
        case 1:  // any byte
          if (!s.empty()) s[below(s.size())] = static_cast<char>(below(256));
          break;
        case 2:  // a byte sequence parsers trip on
          s.insert(pos, kTokens[below(kTokens.size())]);
          break;
        case 3:  // drop a span
          s.erase(pos, below(16));
          break;
        case 4:  // cut short
          s.resize(pos);
          break;
        case 5: {  // repeat a span (duplicate fields, doubled separators)
          const std::size_t n = below(64);
          s.insert(pos, s.substr(pos, n));
          break;
        }
        case 6:  // a very long line, sometimes past the head limit
          s.insert(pos, std::string(below(2) ? below(2000) : kMaxHeadBytes - 100 + below(400), "a9 -\t"[below(5)]));
          break;
        case 7: {  // a digit run made huge
          const std::size_t d = s.find_first_of("0123456789", pos);
          if (d != std::string::npos) s.insert(d, std::string(1 + below(40), '9'));
          break;
        }
        default: {  // splice in a piece of another corpus entry
          const std::string& other = corpus[below(corpus.size())];
          const std::size_t from = below(other.size());
          s.insert(pos, other.substr(from, below(other.size() - from + 1)));
        }
      }
    }
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

}  // namespace

TEST(HttpFuzz, CorpusIsValid) {
  for (const std::string& h : kHeads) {
    EXPECT_TRUE(parse_request(h).ok) << h;
    EXPECT_EQ(invariants::check_request(h), "") << h;
  }
}

TEST(HttpFuzz, MutatedHeadsKeepInvariants) {
  Mutator m(20240601);
  const auto start = std::chrono::steady_clock::now();
  std::size_t accepted = 0, failures = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string input = m.mutate(kHeads[m.below(kHeads.size())], kHeads);
    const std::string why = invariants::check_request(input);
    accepted += parse_request(input).ok;
    if (!why.empty() && ++failures <= 10) ADD_FAILURE() << why << " for input #" << i << ": " << ::testing::PrintToString(input);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failures, 0u);
  // Both outcomes must be exercised, or the mutations are too weak or too strong.
  EXPECT_GT(accepted, 1000u);
  EXPECT_LT(accepted, 19000u);
  EXPECT_LT(s, 60.0) << "the parser is far slower than linear";
  std::printf("%zu of 20000 mutated heads accepted, %.2f s\n", accepted, s);  // the CTest TIMEOUT catches a true hang
}

TEST(HttpFuzz, MutatedRangesKeepInvariants) {
  Mutator m(7);
  std::size_t partial = 0, failures = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string value = m.mutate(kRanges[m.below(kRanges.size())], kRanges);
    const std::string why = invariants::check_range_all_sizes(value);
    partial += select_range(value, 1000).kind == RangeKind::kPartial;
    if (!why.empty() && ++failures <= 10) ADD_FAILURE() << why << " for " << ::testing::PrintToString(value);
  }
  EXPECT_EQ(failures, 0u);
  EXPECT_GT(partial, 500u);
  std::printf("%zu of 20000 mutated ranges partial on 1000 bytes\n", partial);
}
