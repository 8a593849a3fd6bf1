// The connection side of `mmphate serve`: one thread, non-blocking sockets and poll(), so a
// client that connects and sends nothing (or trickles a request) costs a slot and a deadline,
// never a thread, and cannot hold up anyone else. Every reply is "Connection: close".
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace mmphate::http {

// What to send back: `head` (status line, fields, blank line, any small body), then `length`
// bytes of `file_fd` from `offset`. The loop owns file_fd (closes it) once handed over.
struct Reply {
  std::string head;
  int file_fd = -1;
  std::uint64_t offset = 0, length = 0;
};

struct ServerLimits {
  double head_timeout_s = 5.0;    // the whole request head must arrive within this, from accept
  double stall_timeout_s = 10.0;  // a reply that makes no progress this long is dropped
  double linger_s = 2.0;          // after a reply: wait this long for the client to close first
  std::size_t max_connections = 512;
};

// Called with each complete request head (at most kMaxHeadBytes + 1 bytes: an oversized head
// is passed cut, for the parser to refuse).
using Handler = std::function<Reply(std::string_view head)>;

// Serves `listen_fd` (bound and listening) until it fails; throws mmphate::Error then.
// When max_connections are open, a new client takes the place of the one that has waited
// longest for its request (or lingered, or stalled), so idle clients cannot lock others out.
[[noreturn]] void run_server(int listen_fd, const ServerLimits& limits, const Handler& handler);

}  // namespace mmphate::http
