#include "http_server.hpp"

#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <vector>

#include "http_request.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

namespace mmphate::http {
namespace {

using Clock = std::chrono::steady_clock;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

enum class State { kReading, kWriting, kLingering, kClosed };

struct Conn {
  int fd = -1;
  State state = State::kReading;
  std::string in;            // request bytes so far
  std::size_t scanned = 0;   // head_end found nothing before this index
  Reply out;
  std::size_t head_sent = 0;
  std::uint64_t body_sent = 0;
  Clock::time_point since;     // accepted (reading), last progress (writing), reply done (lingering)
  Clock::time_point deadline;  // closed when it passes
};

void close_conn(Conn& c) {
  if (c.out.file_fd >= 0) ::close(c.out.file_fd);
  if (c.fd >= 0) ::close(c.fd);
  c.out.file_fd = c.fd = -1;
  c.state = State::kClosed;
}

class Server {
 public:
  Server(int listen_fd, const ServerLimits& limits, const Handler& handler)
      : listen_fd_(listen_fd), limits_(limits), handler_(handler) {}
  [[noreturn]] void run();

 private:
  void read_request(Conn& c, Clock::time_point now);
  void start_reply(Conn& c, Reply reply, Clock::time_point now);
  void write_reply(Conn& c, Clock::time_point now);
  void drain(Conn& c);
  void expire(Clock::time_point now);
  std::optional<std::size_t> victim(Clock::time_point now) const;
  void accept_clients(Clock::time_point now);
  void compact();
  std::size_t open() const { return conns_.size(); }  // after compact(): no closed ones

  int listen_fd_;
  ServerLimits limits_;
  const Handler& handler_;
  std::vector<Conn> conns_;
  Clock::time_point accept_paused_until_{};
};

void Server::read_request(Conn& c, Clock::time_point now) {
  char buf[4096];
  bool eof = false;
  while (c.in.size() <= kMaxHeadBytes) {
    const ssize_t k = ::recv(c.fd, buf, sizeof buf, 0);
    if (k > 0) { c.in.append(buf, static_cast<std::size_t>(k)); continue; }
    if (k == 0) { eof = true; break; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    close_conn(c);  // reset by the client
    return;
  }
  // Scan only the new bytes (and the 2 before them): a trickling client costs linear time.
  const std::size_t from = c.scanned > 2 ? c.scanned - 2 : 0;
  std::size_t end = head_end(std::string_view(c.in).substr(from));
  if (end != std::string_view::npos) end += from;
  c.scanned = c.in.size();
  if (end == std::string_view::npos && c.in.size() <= kMaxHeadBytes) {
    if (eof) close_conn(c);  // gone before finishing its request
    return;
  }
  const std::string_view head =
      end == std::string_view::npos ? std::string_view(c.in).substr(0, kMaxHeadBytes + 1) : std::string_view(c.in).substr(0, end);
  Reply reply;
  try {
    reply = handler_(head);
  } catch (const std::exception& e) {
    logger()->error("serve: request failed: {}", e.what());
    reply = Reply{"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"};
  }
  start_reply(c, std::move(reply), now);
}

void Server::start_reply(Conn& c, Reply reply, Clock::time_point now) {
  c.out = std::move(reply);
  std::string().swap(c.in);
  c.state = State::kWriting;
  c.since = now;
  c.deadline = now + seconds(limits_.stall_timeout_s);
  write_reply(c, now);
}

void Server::write_reply(Conn& c, Clock::time_point now) {
  // A per-turn budget keeps one fast reader from starving the others.
  std::uint64_t budget = std::uint64_t{8} << 20;
  bool progress = false;
  auto would_block = [&] {
    if (progress) { c.since = now; c.deadline = now + seconds(limits_.stall_timeout_s); }
  };
  while (c.head_sent < c.out.head.size()) {
    const ssize_t k = ::send(c.fd, c.out.head.data() + c.head_sent, c.out.head.size() - c.head_sent, MSG_NOSIGNAL);
    if (k > 0) { c.head_sent += static_cast<std::size_t>(k); progress = true; continue; }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return would_block();
    close_conn(c);  // the client went away
    return;
  }
  while (c.body_sent < c.out.length) {
    if (budget == 0) return would_block();
    auto off = static_cast<off_t>(c.out.offset + c.body_sent);
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>({c.out.length - c.body_sent, budget, 1u << 20}));
    const ssize_t k = ::sendfile(c.fd, c.out.file_fd, &off, want);
    if (k > 0) { c.body_sent += static_cast<std::uint64_t>(k); budget -= static_cast<std::uint64_t>(k); progress = true; continue; }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return would_block();
    // k == 0: the file shrank after its length was announced; a cut reply is all there is.
    if (k == 0) logger()->warn("serve: a file shrank while it was being sent; reply cut short");
    else if (errno != EPIPE && errno != ECONNRESET) logger()->warn("serve: sending failed: {}", std::strerror(errno));
    close_conn(c);
    return;
  }
  if (c.out.file_fd >= 0) ::close(c.out.file_fd);
  c.out.file_fd = -1;
  // Closing with unread bytes would send a reset that can destroy the reply in flight; so end
  // our side and wait (briefly) for the client to close its own.
  ::shutdown(c.fd, SHUT_WR);
  c.state = State::kLingering;
  c.since = now;
  c.deadline = now + seconds(limits_.linger_s);
}

void Server::drain(Conn& c) {
  char buf[4096];
  for (;;) {
    const ssize_t k = ::recv(c.fd, buf, sizeof buf, 0);
    if (k > 0) continue;
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_conn(c);  // the client closed (or reset): done
    return;
  }
}

void Server::expire(Clock::time_point now) {
  for (Conn& c : conns_) {
    if (c.state == State::kClosed || now < c.deadline) continue;
    if (c.state == State::kReading && !c.in.empty()) {
      // A partial request gets a reason (then the usual linger); one never started is closed.
      logger()->debug("serve: request head not complete after {} s", limits_.head_timeout_s);
      start_reply(c, Reply{"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"}, now);
      if (c.state != State::kClosed) c.deadline = std::min(c.deadline, now + seconds(limits_.linger_s));
      continue;
    }
    if (c.state == State::kWriting) logger()->debug("serve: dropped a client that stopped reading its reply");
    close_conn(c);
  }
}

// Who makes way for a new client when every slot is taken: a lingering connection, else the
// one that has waited longest for its request, else a reply stalled for over a second.
std::optional<std::size_t> Server::victim(Clock::time_point now) const {
  std::optional<std::size_t> best;
  int best_rank = 3;
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    const Conn& c = conns_[i];
    int rank = 3;
    if (c.state == State::kLingering) rank = 0;
    else if (c.state == State::kReading) rank = 1;
    else if (c.state == State::kWriting && now - c.since > std::chrono::seconds(1)) rank = 2;
    if (rank < best_rank || (rank == best_rank && rank < 3 && c.since < conns_[*best].since)) {
      best = i;
      best_rank = rank;
    }
  }
  return best;
}

void Server::accept_clients(Clock::time_point now) {
  for (;;) {
    std::optional<std::size_t> evict;
    if (open() >= limits_.max_connections) {
      evict = victim(now);
      if (!evict) return;  // every slot is sending a reply: the listen backlog holds the rest
    }
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        logger()->warn("serve: cannot accept a connection ({}); pausing for 100 ms", std::strerror(errno));
        accept_paused_until_ = now + std::chrono::milliseconds(100);
        return;
      }
      throw Error(std::string("accept failed: ") + std::strerror(errno));
    }
    if (evict) {
      logger()->debug("serve: {} connections open; closed the longest-waiting one", open());
      close_conn(conns_[*evict]);
      conns_.erase(conns_.begin() + static_cast<std::ptrdiff_t>(*evict));
    }
    Conn c;
    c.fd = fd;
    c.since = now;
    c.deadline = now + seconds(limits_.head_timeout_s);
    conns_.push_back(std::move(c));
    // The request usually arrives with the connection: read it now, so that a later eviction
    // in this same burst finds it already being answered.
    read_request(conns_.back(), now);
    if (conns_.back().state == State::kClosed) conns_.pop_back();
  }
}

void Server::compact() {
  conns_.erase(std::remove_if(conns_.begin(), conns_.end(), [](const Conn& c) { return c.state == State::kClosed; }),
               conns_.end());
}

void Server::run() {
  std::vector<pollfd> fds;
  for (;;) {
    Clock::time_point now = Clock::now();
    expire(now);
    compact();
    const bool listening = now >= accept_paused_until_ && (open() < limits_.max_connections || victim(now));
    fds.clear();
    if (listening) fds.push_back({listen_fd_, POLLIN, 0});
    Clock::time_point wake = now + std::chrono::seconds(1);
    if (!listening) wake = std::min(wake, now + std::chrono::milliseconds(100));  // stalls and pauses end
    for (const Conn& c : conns_) {
      fds.push_back({c.fd, static_cast<short>(c.state == State::kWriting ? POLLOUT : POLLIN), 0});
      wake = std::min(wake, c.deadline);
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1;
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, ms)));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("poll failed: ") + std::strerror(errno));
    }
    now = Clock::now();
    const std::size_t first = listening ? 1 : 0;
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      if (fds[first + i].revents == 0) continue;
      Conn& c = conns_[i];
      if (c.state == State::kReading) read_request(c, now);
      else if (c.state == State::kWriting) write_reply(c, now);
      else if (c.state == State::kLingering) drain(c);
    }
    compact();
    if (listening && (fds[0].revents & POLLIN)) accept_clients(now);
  }
}

}  // namespace

void run_server(int listen_fd, const ServerLimits& limits, const Handler& handler) {
  // sendfile() has no MSG_NOSIGNAL: a client that disconnects mid-reply must not kill us.
  std::signal(SIGPIPE, SIG_IGN);
  Server(listen_fd, limits, handler).run();
}

}  // namespace mmphate::http
