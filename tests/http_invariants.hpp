// What must hold for any bytes fed to the serve command's request parser (tools/http_request):
// shared by the seeded mutation test (test_http_fuzz.cpp) and the optional libFuzzer target
// (fuzz_http_request.cpp). Each check returns "" or what went wrong.
#pragma once
#include <cctype>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "http_request.hpp"

namespace mmphate::http::invariants {

inline bool visible_ascii(std::string_view s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  return !s.empty();
}

inline bool token(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos))
      return false;
  return true;
}

// select_range on one value for one size.
inline std::string check_range(std::string_view value, std::uint64_t size) {
  const ByteRange r = select_range(value, size);
  if (r.kind != RangeKind::kPartial) return "";
  if (!(r.first <= r.last && r.last < size)) return "partial range outside the file";
  // The range it chose, asked for explicitly, is chosen again.
  const std::string again = "bytes=" + std::to_string(r.first) + "-" + std::to_string(r.last);
  const ByteRange r2 = select_range(again, size);
  if (r2.kind != RangeKind::kPartial || r2.first != r.first || r2.last != r.last) return "range not stable";
  return "";
}

inline std::string check_range_all_sizes(std::string_view value) {
  constexpr std::uint64_t kSizes[] = {0, 1, 2, 10, 26490, std::uint64_t{1} << 40, std::numeric_limits<std::uint64_t>::max()};
  for (const std::uint64_t size : kSizes)
    if (std::string e = check_range(value, size); !e.empty()) return e + " (size " + std::to_string(size) + ")";
  return "";
}

inline std::string serialize(const Request& r) {
  std::string s = r.method + " " + r.target + " " + r.version + "\r\n";
  for (const auto& [k, v] : r.headers) s += k + ": " + v + "\r\n";
  return s + "\r\n";
}

inline std::string check_request(std::string_view input) {
  const std::size_t end = head_end(input);
  if (end != std::string_view::npos) {
    if (end > input.size() || end < 2 || input[end - 1] != '\n') return "head_end past the input or not after LF";
    if (input[end - 2] != '\n' && !(end >= 3 && input[end - 2] == '\r' && input[end - 3] == '\n'))
      return "head_end not after a blank line";
  }
  const ParsedRequest p = parse_request(input);
  if (!p.ok) {
    if (p.status != 400 && p.status != 431 && p.status != 505) return "unexpected status " + std::to_string(p.status);
    if (p.error.empty()) return "refusal without a reason";
    if (input.size() > kMaxHeadBytes && p.status != 431) return "oversized head not refused with 431";
    return "";
  }
  if (input.size() > kMaxHeadBytes) return "oversized head accepted";
  if (end == std::string_view::npos) return "accepted a head without a blank line";
  const Request& r = p.request;
  if (!token(r.method)) return "method is not a token";
  if (!visible_ascii(r.target)) return "target has invisible bytes";
  if (r.version != "HTTP/1.0" && r.version != "HTTP/1.1") return "unexpected version " + r.version;
  if (r.headers.size() > kMaxHeaderFields) return "too many fields accepted";
  for (const auto& [k, v] : r.headers) {
    if (!token(k)) return "field name is not a token";
    for (const char c : k)
      if (c >= 'A' && c <= 'Z') return "field name not lower case";
    for (const char c : v)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return "control byte in a value";
    if (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t'))
      return "value not trimmed";
  }
  const std::size_t hosts = r.field("host");
  if (hosts > 1 || (r.version == "HTTP/1.1" && hosts != 1)) return "Host rule broken";
  // What was understood, written out cleanly, is understood the same way again.
  const ParsedRequest q = parse_request(serialize(r));
  if (!q.ok || q.request.method != r.method || q.request.target != r.target || q.request.version != r.version ||
      q.request.headers != r.headers)
    return "round trip changed the request";
  for (const auto& [k, v] : r.headers)
    if (k == "range")
      if (std::string e = check_range_all_sizes(v); !e.empty()) return e;
  std::string path;
  if (decode_target_path(r.target, path)) {
    if (path.find('\0') != std::string::npos || path.find('\\') != std::string::npos) return "decoded path has NUL or \\";
    if (path.size() > r.target.size()) return "decoded path longer than the target";
  }
  return "";
}

}  // namespace mmphate::http::invariants
