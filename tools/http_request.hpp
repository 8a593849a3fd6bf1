// The request side of `mmphate serve` as pure functions over bytes (no sockets, no files), so
// that everything a client controls can be unit-tested and fuzzed on its own: the request head
// (request line and header fields), the Range header and the request target's path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mmphate::http {

constexpr std::size_t kMaxHeadBytes = 16384;  // request line + header fields + blank line
constexpr std::size_t kMaxHeaderFields = 100;

struct Request {
  std::string method, target, version;                       // version: "HTTP/1.0" or "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case, values trimmed
  // How many fields are called `name` (lower case); the first one's value goes to `value`.
  std::size_t field(std::string_view name, std::string* value = nullptr) const;
};

struct ParsedRequest {
  bool ok = false;
  Request request;    // when ok
  int status = 0;     // otherwise the status to answer: 400, 431 or 505
  std::string error;  // why, for the log and the reply's body
};

// Index one past the blank line that ends the head in `data` (CRLF CRLF, or bare LF LF), or
// std::string_view::npos while it has not arrived yet.
std::size_t head_end(std::string_view data);

// Parses a complete head (request line, fields, blank line; what head_end delimits). Strict:
// anything RFC 9112 lets a server reject is rejected, never guessed at.
ParsedRequest parse_request(std::string_view head);

// What a Range header asks of a representation of `size` bytes.
enum class RangeKind {
  kFull,           // no Range, or one this server ignores (malformed, other unit, several ranges)
  kPartial,        // 206 with bytes first..last (inclusive, always first <= last < size)
  kUnsatisfiable,  // 416 with Content-Range: bytes */size
};
struct ByteRange {
  RangeKind kind = RangeKind::kFull;
  std::uint64_t first = 0, last = 0;
};
ByteRange select_range(std::string_view range_value, std::uint64_t size);

// The path of a request target ("/a%20b?q" -> "/a b"): false for a malformed escape or a byte
// that never names a file here (NUL, backslash).
bool decode_target_path(std::string_view target, std::string& path);

}  // namespace mmphate::http
