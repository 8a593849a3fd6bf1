// The serve command's request parsing (tools/http_request): Range forms a browser sends, the
// request head's syntax and limits, and target paths.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "http_request.hpp"

using namespace mmphate::http;

namespace {

constexpr std::uint64_t kSize = 100;

void expect_partial(const char* value, std::uint64_t first, std::uint64_t last, std::uint64_t size = kSize) {
  const ByteRange r = select_range(value, size);
  EXPECT_EQ(r.kind, RangeKind::kPartial) << value;
  EXPECT_EQ(r.first, first) << value;
  EXPECT_EQ(r.last, last) << value;
}

void expect_kind(const char* value, RangeKind kind, std::uint64_t size = kSize) {
  EXPECT_EQ(select_range(value, size).kind, kind) << value << " on " << size << " bytes";
}

std::string head(const std::string& request_line, const std::string& fields = "Host: 127.0.0.1:8765\r\n") {
  return request_line + "\r\n" + fields + "\r\n";
}

}  // namespace

TEST(HttpRange, FirstToLast) {
  expect_partial("bytes=2-11", 2, 11);
  expect_partial("bytes=0-0", 0, 0);
  expect_partial("bytes=99-99", 99, 99);
  expect_partial("bytes=0-99", 0, 99);
}

TEST(HttpRange, OpenEndedAndSuffix) {
  expect_partial("bytes=5-", 5, 99);
  expect_partial("bytes=99-", 99, 99);
  expect_partial("bytes=-10", 90, 99);
  expect_partial("bytes=-100", 0, 99);
  expect_partial("bytes=-1000", 0, 99);  // longer than the file: all of it (RFC 9110 14.1.3)
}

TEST(HttpRange, LastBeforeFirstIsUnsatisfiable) {
  // The old parser turned this into 200 with Content-Length: -39.
  expect_kind("bytes=50-10", RangeKind::kUnsatisfiable);
  expect_kind("bytes=1-0", RangeKind::kUnsatisfiable);
}

TEST(HttpRange, StartAtOrBeyondTheEndIsUnsatisfiable) {
  expect_kind("bytes=100-", RangeKind::kUnsatisfiable);
  expect_kind("bytes=100-200", RangeKind::kUnsatisfiable);
  expect_kind("bytes=1000-", RangeKind::kUnsatisfiable);
  expect_kind("bytes=-0", RangeKind::kUnsatisfiable);  // an empty suffix selects nothing
  expect_kind("bytes=0-", RangeKind::kUnsatisfiable, 0);
  expect_kind("bytes=-5", RangeKind::kUnsatisfiable, 0);
}

TEST(HttpRange, EndBeyondTheFileIsClamped) {
  expect_partial("bytes=10-1000", 10, 99);
  expect_partial("bytes=0-100", 0, 99);
}

TEST(HttpRange, HugeNumbersSaturateInsteadOfWrapping) {
  expect_partial("bytes=0-99999999999999999999999999", 0, 99);
  expect_partial("bytes=0-18446744073709551616", 0, 99);
  expect_kind("bytes=99999999999999999999999999-", RangeKind::kUnsatisfiable);
  expect_kind("bytes=18446744073709551615-18446744073709551615", RangeKind::kUnsatisfiable);
  expect_kind("bytes=99999999999999999999999999-5", RangeKind::kUnsatisfiable);
  expect_partial("bytes=-99999999999999999999999999", 0, 99);
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  expect_partial("bytes=18446744073709551613-", max - 2, max - 1, max);
  expect_partial("bytes=-18446744073709551615", 0, max - 1, max);
}

TEST(HttpRange, UnitIsCaseInsensitive) {
  expect_partial("BYTES=2-11", 2, 11);
  expect_partial("Bytes=-3", 97, 99);
}

TEST(HttpRange, MalformedIsIgnored) {
  for (const char* v : {"", "bytes", "bytes=", "bytes=-", "bytes=abc", "bytes=1-2-3", "bytes= 1-2", "bytes=1 -2",
                        "bytes=--5", "bytes=1a-2", "bytes=+1-2", "bytes=0x10-20", "bytes=1-2 ", "items=0-1",
                        "bytes 0-1", "bytes:0-1", "bytes=-+5", "bytes=\x00" "1-2", "=0-1"})
    expect_kind(v, RangeKind::kFull);
}

TEST(HttpRange, SeveralRangesServeTheWholeFile) {
  expect_kind("bytes=0-1,5-9", RangeKind::kFull);
  expect_kind("bytes=0-1, 5-9", RangeKind::kFull);
  expect_kind("bytes=50-10,0-1", RangeKind::kFull);
  expect_kind("bytes=0-1,", RangeKind::kFull);
}

TEST(HttpRequest, ParsesRequestLineAndFields) {
  const ParsedRequest p = parse_request(
      "GET /run/frames.jsonl?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nRange:  bytes=5- \t\r\nX-Empty:\r\n\r\n");
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.target, "/run/frames.jsonl?x=1");
  EXPECT_EQ(p.request.version, "HTTP/1.1");
  std::string v;
  EXPECT_EQ(p.request.field("range", &v), 1u);
  EXPECT_EQ(v, "bytes=5-");
  EXPECT_EQ(p.request.field("host", &v), 1u);
  EXPECT_EQ(v, "127.0.0.1:8765");
  EXPECT_EQ(p.request.field("x-empty", &v), 1u);
  EXPECT_EQ(v, "");
  EXPECT_EQ(p.request.field("nope"), 0u);
}

TEST(HttpRequest, BareLineFeedsAndHttp10) {
  EXPECT_TRUE(parse_request("GET / HTTP/1.1\nHost: h\n\n").ok);
  const ParsedRequest p = parse_request("HEAD / HTTP/1.0\r\n\r\n");  // no Host needed in 1.0
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.request.version, "HTTP/1.0");
  EXPECT_EQ(parse_request("GET / HTTP/1.9\r\nHost: h\r\n\r\n").request.version, "HTTP/1.1");
}

TEST(HttpRequest, RefusesMalformedHeads) {
  struct Case { std::string head; int status; };
  const Case cases[] = {
      {"", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\n", 400},  // no blank line
      {head("GET  / HTTP/1.1"), 400},
      {head("GET / HTTP/1.1 "), 400},
      {head("GET /"), 400},
      {head("GET / HTTP/1.1 extra"), 400},
      {head(" GET / HTTP/1.1"), 400},
      {head("G(T / HTTP/1.1"), 400},
      {head("GET / http/1.1"), 400},
      {head("GET / HTTP/1.10"), 400},
      {head("GET / HTTP/2.0"), 505},
      {head("GET / HTTP/0.9"), 505},
      {head(std::string("GET /a\0b HTTP/1.1", 17)), 400},
      {head("GET /a\x7f HTTP/1.1"), 400},
      {head("GET /\xc3\xa9 HTTP/1.1"), 400},
      {head("GET / HTTP/1.1", "Host: h\r\nBad Name: x\r\n"), 400},
      {head("GET / HTTP/1.1", "Host: h\r\nName : x\r\n"), 400},
      {head("GET / HTTP/1.1", "Host: h\r\n: x\r\n"), 400},
      {head("GET / HTTP/1.1", "Host: h\r\nNoColon\r\n"), 400},
      {head("GET / HTTP/1.1", "Host: h\r\nX: a\r\n folded\r\n"), 400},
      {head("GET / HTTP/1.1", "Host: h\r\nX: a\rb\r\n"), 400},
      {head("GET / HTTP/1.1", std::string("Host: h\r\nX: a\0b\r\n", 18)), 400},
      {head("GET / HTTP/1.1", "Host: h\r\nX: a\x01" "b\r\n"), 400},
      {head("GET / HTTP/1.1", ""), 400},                     // HTTP/1.1 needs a Host
      {head("GET / HTTP/1.1", "Host: a\r\nHost: a\r\n"), 400},  // and only one
      {"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    const ParsedRequest p = parse_request(c.head);
    EXPECT_FALSE(p.ok) << c.head;
    EXPECT_EQ(p.status, c.status) << c.head;
    EXPECT_FALSE(p.error.empty());
  }
}

TEST(HttpRequest, LimitsGive431) {
  std::string many;
  for (std::size_t i = 0; i < kMaxHeaderFields; ++i) many += "X: y\r\n";
  EXPECT_TRUE(parse_request(head("GET / HTTP/1.1", "Host: h\r\n" + many.substr(6))).ok);  // exactly the limit
  EXPECT_EQ(parse_request(head("GET / HTTP/1.1", "Host: h\r\n" + many)).status, 431);
  const std::string big = head("GET / HTTP/1.1", "Host: h\r\nX: " + std::string(kMaxHeadBytes, 'a') + "\r\n");
  EXPECT_EQ(parse_request(big).status, 431);
  std::string fits = head("GET / HTTP/1.1", "Host: h\r\nX: \r\n");
  fits.insert(fits.size() - 4, kMaxHeadBytes - fits.size(), 'a');
  ASSERT_EQ(fits.size(), kMaxHeadBytes);
  EXPECT_TRUE(parse_request(fits).ok);
}

TEST(HttpRequest, HeadEnd) {
  EXPECT_EQ(head_end("GET / HTTP/1.1\r\nHost: h\r\n\r\nbody"), 27u);
  EXPECT_EQ(head_end("GET / HTTP/1.1\nHost: h\n\n"), 24u);
  EXPECT_EQ(head_end("GET / HTTP/1.1\r\nHost: h\r\n\r"), std::string_view::npos);
  EXPECT_EQ(head_end("GET / HTTP/1.1\r\nHost: h\r\n"), std::string_view::npos);
  EXPECT_EQ(head_end(""), std::string_view::npos);
  EXPECT_EQ(head_end("\n\n"), 2u);
}

TEST(HttpRequest, DecodesTargetPaths) {
  std::string p;
  EXPECT_TRUE(decode_target_path("/run/a%20b.txt?x=%zz#f", p));
  EXPECT_EQ(p, "/run/a b.txt");
  EXPECT_TRUE(decode_target_path("/run/%2e%2e/x", p));
  EXPECT_EQ(p, "/run/../x");  // decoded here; the server then refuses the ".." segment
  EXPECT_FALSE(decode_target_path("/run/%zz", p));
  EXPECT_FALSE(decode_target_path("/run/%2", p));
  EXPECT_FALSE(decode_target_path("/run/%", p));
  EXPECT_FALSE(decode_target_path("/run/%00", p));
  EXPECT_FALSE(decode_target_path("/run/%5c..", p));
  EXPECT_TRUE(decode_target_path("/run/%41", p));
  EXPECT_EQ(p, "/run/A");
}
