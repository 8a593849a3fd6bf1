#include "http_request.hpp"

#include <cstring>
#include <limits>

namespace mmphate::http {
namespace {

bool is_tchar(unsigned char c) {  // RFC 9110 token characters
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s)
    if (!is_tchar(static_cast<unsigned char>(c))) return false;
  return true;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ParsedRequest reject(int status, std::string why) {
  ParsedRequest r;
  r.status = status;
  r.error = std::move(why);
  return r;
}

// "METHOD SP TARGET SP HTTP/d.d"; an empty error means it parsed.
ParsedRequest parse_request_line(std::string_view line, Request& req) {
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return reject(400, "malformed request line");
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = line.substr(sp2 + 1);
  if (!is_token(method)) return reject(400, "malformed method");
  if (target.empty()) return reject(400, "empty request target");
  for (const char c : target)  // visible ASCII only: browsers percent-encode everything else
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return reject(400, "invalid byte in request target");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return reject(400, "malformed HTTP version");
  if (version[5] != '1') return reject(505, "only HTTP/1.x is served");
  req.method = std::string(method);
  req.target = std::string(target);
  req.version = version[7] == '0' ? "HTTP/1.0" : "HTTP/1.1";  // a later 1.x is answered as 1.1
  return {};
}

// "name: value"; no folding, no whitespace before the colon, no control bytes in the value.
ParsedRequest parse_field(std::string_view line, Request& req) {
  if (line.front() == ' ' || line.front() == '\t') return reject(400, "obsolete line folding");
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return reject(400, "header line without a colon");
  const std::string_view name = line.substr(0, colon);
  if (!is_token(name)) return reject(400, "malformed header name");
  const std::string_view value = trim_ows(line.substr(colon + 1));
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return reject(400, "control byte in a header value");
  }
  if (req.headers.size() >= kMaxHeaderFields) return reject(431, "too many header fields");
  std::string key(name);
  for (char& c : key) c = lower(c);
  req.headers.emplace_back(std::move(key), std::string(value));
  return {};
}

// Decimal digits only, at least one; saturates rather than wraps, so a huge first byte stays
// "beyond the end" and a huge last byte is clamped like any other.
bool parse_digits(std::string_view s, std::uint64_t& v) {
  if (s.empty()) return false;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    v = v > (kMax - d) / 10 ? kMax : v * 10 + d;
  }
  return true;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::size_t Request::field(std::string_view name, std::string* value) const {
  std::size_t n = 0;
  for (const auto& [k, v] : headers)
    if (k == name && n++ == 0 && value) *value = v;
  return n;
}

std::size_t head_end(std::string_view data) {
  // A blank line is LF followed by LF or CR LF; the parser splits lines the same way.
  for (std::size_t i = data.find('\n'); i != std::string_view::npos; i = data.find('\n', i + 1)) {
    if (i + 1 < data.size() && data[i + 1] == '\n') return i + 2;
    if (i + 2 < data.size() && data[i + 1] == '\r' && data[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

ParsedRequest parse_request(std::string_view head) {
  if (head.size() > kMaxHeadBytes) return reject(431, "request head too large");
  ParsedRequest out;
  bool first = true;
  for (std::size_t pos = 0;;) {
    const auto nl = head.find('\n', pos);
    if (nl == std::string_view::npos) return reject(400, "incomplete request head");
    std::string_view line = head.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return reject(400, "bare CR in the request head");
    if (first) {
      ParsedRequest r = parse_request_line(line, out.request);
      if (r.status != 0) return r;
      first = false;
    } else if (line.empty()) {
      break;  // what follows the blank line is a body, which nothing here reads
    } else {
      ParsedRequest r = parse_field(line, out.request);
      if (r.status != 0) return r;
    }
  }
  // RFC 9112 3.2: exactly one Host in HTTP/1.1, never several.
  const std::size_t hosts = out.request.field("host");
  if (hosts > 1) return reject(400, "several Host headers");
  if (hosts == 0 && out.request.version == "HTTP/1.1") return reject(400, "missing Host header");
  out.ok = true;
  return out;
}

ByteRange select_range(std::string_view v, std::uint64_t size) {
  ByteRange full;  // kFull: the whole representation, as if there were no Range header
  constexpr std::string_view kUnit = "bytes=";  // the unit is case-insensitive (RFC 9110 14.1)
  if (v.size() < kUnit.size()) return full;
  for (std::size_t i = 0; i < kUnit.size(); ++i)
    if (lower(v[i]) != kUnit[i]) return full;
  const std::string_view spec = v.substr(kUnit.size());
  // Several ranges would need multipart/byteranges; the whole file is a valid answer instead.
  if (spec.find(',') != std::string_view::npos) return full;
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return full;
  ByteRange unsat;
  unsat.kind = RangeKind::kUnsatisfiable;
  std::uint64_t a = 0, b = 0;
  if (dash == 0) {  // "-N": the last N bytes
    if (!parse_digits(spec.substr(1), b)) return full;
    if (b == 0 || size == 0) return unsat;
    return {RangeKind::kPartial, size - (b < size ? b : size), size - 1};
  }
  if (!parse_digits(spec.substr(0, dash), a)) return full;
  const std::string_view rest = spec.substr(dash + 1);
  if (rest.empty()) b = std::numeric_limits<std::uint64_t>::max();  // "A-": to the end
  else if (!parse_digits(rest, b)) return full;
  // "A-B" with B < A is well-formed but selects nothing, like a start beyond the end.
  if (b < a || a >= size) return unsat;
  return {RangeKind::kPartial, a, b < size ? b : size - 1};
}

bool decode_target_path(std::string_view target, std::string& path) {
  target = target.substr(0, target.find_first_of("?#"));
  path.clear();
  for (std::size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    if (c == '%') {
      if (i + 2 >= target.size() || hex(target[i + 1]) < 0 || hex(target[i + 2]) < 0) return false;
      c = static_cast<char>(hex(target[i + 1]) * 16 + hex(target[i + 2]));
      i += 2;
    }
    if (c == '\0' || c == '\\') return false;
    path.push_back(c);
  }
  return true;
}

}  // namespace mmphate::http
