// mmphate serve RUN_DIR [--port N] [--viewer DIR]: a tiny read-only HTTP server for the web
// viewer on a live or finished run. Loopback only (127.0.0.1); GET and HEAD of regular files
// under /run/ (the run directory) and /viewer/ (the viewer's files); everything else is
// refused. Range requests let the viewer fetch only the new bytes of a growing frames.jsonl.
// This file decides what to answer; http_request parses, http_server runs the connections.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#include "http_request.hpp"
#include "http_server.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "view_commands.hpp"

#ifndef MMPHATE_VIEWER_DIR
#define MMPHATE_VIEWER_DIR "viewer"
#endif

namespace mmphate::view {
namespace {

const char* kHelp =
    "usage: mmphate serve RUN_DIR [--port N] [--viewer DIR] [--head-timeout S] [--max-connections N]\n\n"
    "Serves the web viewer and one run directory on http://127.0.0.1:N/ (loopback only,\n"
    "read-only). Open the printed address in a browser; the viewer follows frames.jsonl as a\n"
    "running training appends to it.\n"
    "  --port N              TCP port (default 8765; 0 picks a free one)\n"
    "  --viewer DIR          the viewer's files (default: the installed share/mmphate/viewer,\n"
    "                        else the source tree's viewer/)\n"
    "  --head-timeout S      seconds a client has to send its whole request head (default 5)\n"
    "  --max-connections N   open connections at most (default 512); when all are taken the\n"
    "                        client waiting longest for its request makes way for a new one\n";

struct Roots {
  std::string run, viewer;  // canonical absolute paths
  int port = 0;
};

std::string canonical(const std::string& p) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return "";
  return buf;
}

const char* content_type(const std::string& path) {
  auto ends = [&](const char* ext) {
    const std::size_t n = std::strlen(ext);
    return path.size() >= n && path.compare(path.size() - n, n, ext) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".json")) return "application/json";
  if (ends(".jsonl") || ends(".md") || ends(".txt")) return "text/plain; charset=utf-8";
  if (ends(".png")) return "image/png";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

std::string reason_phrase(int code) {
  switch (code) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

std::string status_and_common_fields(int code) {
  return "HTTP/1.1 " + std::to_string(code) + ' ' + reason_phrase(code) +
         "\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
}

// A reply without a file: a short text body (left out for HEAD).
http::Reply small_reply(int code, const std::string& extra_headers, const std::string& body, bool head = false) {
  http::Reply r;
  r.head = status_and_common_fields(code) + "Content-Length: " + std::to_string(body.size()) +
           "\r\nContent-Type: text/plain; charset=utf-8\r\n" + extra_headers + "\r\n" + (head ? "" : body);
  return r;
}

// Maps a decoded request path to a file under one of the roots, or "" when it is not allowed.
std::string resolve(const Roots& roots, const std::string& p) {
  std::string root, rel;
  if (p.rfind("/run/", 0) == 0) { root = roots.run; rel = p.substr(5); }
  else if (p.rfind("/viewer/", 0) == 0) { root = roots.viewer; rel = p.substr(8); }
  else return "";
  std::stringstream parts(rel);
  for (std::string part; std::getline(parts, part, '/');)
    if (part == ".." || part == "." || (!part.empty() && part[0] == '.')) return "";  // no traversal, no dotfiles
  const std::string full = canonical(root + "/" + rel);
  // A symbolic link must not lead out of the root either.
  if (full.empty() || full.compare(0, root.size() + 1, root + "/") != 0) return "";
  return full;
}

http::Reply answer(const Roots& roots, std::string_view raw) {
  const http::ParsedRequest parsed = http::parse_request(raw);
  if (!parsed.ok) {
    logger()->debug("serve: refused a request ({} {})", parsed.status, parsed.error);
    return small_reply(parsed.status, "", parsed.error + "\n");
  }
  const http::Request& req = parsed.request;
  const bool head = req.method == "HEAD";
  if (req.method != "GET" && !head) return small_reply(405, "Allow: GET, HEAD\r\n", "read-only server\n");
  if (req.target[0] != '/') return small_reply(400, "", "bad request target\n");
  // Pages of other sites may not reach this server through a DNS name (rebinding).
  std::string host;
  req.field("host", &host);
  const std::string port = std::to_string(roots.port);
  if (host != "127.0.0.1:" + port && host != "localhost:" + port)
    return small_reply(403, "", "unexpected Host header\n", head);
  std::string path;
  if (!http::decode_target_path(req.target, path)) return small_reply(404, "", "not found\n", head);
  if (path == "/" || path == "/index.html")
    return small_reply(302, "Location: /viewer/index.html?run=/run/&live=1\r\n", "", head);
  const std::string file = resolve(roots, path);
  // O_NOFOLLOW: a link swapped in after resolve() is refused, not followed.
  const int fd = file.empty() ? -1 : ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    return small_reply(404, "", "not found\n", head);
  }
  // The length announced is the file's size now; a growing frames.jsonl is sent up to here.
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::string range;
  if (req.field("range", &range) != 1) range.clear();  // several Range fields: ignored
  const http::ByteRange r = http::select_range(range, size);
  if (r.kind == http::RangeKind::kUnsatisfiable) {
    ::close(fd);
    return small_reply(416, "Content-Range: bytes */" + std::to_string(size) + "\r\n", "", head);
  }
  const bool partial = r.kind == http::RangeKind::kPartial;
  const std::uint64_t first = partial ? r.first : 0, len = partial ? r.last - r.first + 1 : size;
  http::Reply reply;
  reply.head = status_and_common_fields(partial ? 206 : 200) + "Content-Length: " + std::to_string(len) +
               "\r\nContent-Type: " + content_type(file) + "\r\nAccept-Ranges: bytes\r\n" +
               "Content-Security-Policy: default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
               "base-uri 'none'; frame-ancestors 'none'\r\n";
  if (partial)
    reply.head += "Content-Range: bytes " + std::to_string(r.first) + '-' + std::to_string(r.last) + '/' +
                  std::to_string(size) + "\r\n";
  reply.head += "\r\n";
  if (head || len == 0) {
    ::close(fd);
    return reply;
  }
  reply.file_fd = fd;
  reply.offset = first;
  reply.length = len;
  return reply;
}

// Each connection may hold a socket and a file: stay well inside the descriptor limit.
std::size_t connection_cap() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 64;
  const rlim_t want = rl.rlim_max == RLIM_INFINITY ? 8192 : std::min<rlim_t>(rl.rlim_max, 8192);
  if (rl.rlim_cur < want) {
    rl.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur > 80 ? static_cast<std::size_t>((rl.rlim_cur - 32) / 2) : 16;
}

// The default --viewer: an installed binary finds the viewer it was installed with,
// <bin>/MMPHATE_VIEWER_INSTALL_REL (cmake/install.cmake); a build-tree binary uses the source
// tree's viewer/.
std::string default_viewer_dir() {
#ifdef MMPHATE_VIEWER_INSTALL_REL
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<std::size_t>(n));
    dir = dir.substr(0, dir.rfind('/') + 1) + MMPHATE_VIEWER_INSTALL_REL;
    struct stat st {};
    if (::stat((dir + "/index.html").c_str(), &st) == 0) return dir;
  }
#endif
  return MMPHATE_VIEWER_DIR;
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"port", "viewer", "head-timeout", "max-connections"}, {"quiet"});
  if (a.has("help")) { std::cout << kHelp; return 0; }
  if (a.positional.size() != 1) throw UsageError("serve needs RUN_DIR (see mmphate serve --help)");
  const double port_d = a.number("port", 8765);
  if (!(port_d >= 0 && port_d <= 65535) || port_d != static_cast<int>(port_d))
    throw UsageError("invalid --port " + a.get("port", "") + ": allowed integers from 0 to 65535");
  http::ServerLimits limits;
  limits.head_timeout_s = a.number("head-timeout", limits.head_timeout_s);
  if (!(limits.head_timeout_s > 0 && limits.head_timeout_s <= 3600))
    throw UsageError("invalid --head-timeout " + a.get("head-timeout", "") + ": allowed seconds in (0, 3600]");
  const std::size_t cap = connection_cap();
  const double max_conn = a.number("max-connections", static_cast<double>(std::min(limits.max_connections, cap)));
  if (!(max_conn >= 1 && max_conn <= static_cast<double>(cap)) || max_conn != static_cast<double>(static_cast<std::size_t>(max_conn)))
    throw UsageError("invalid --max-connections " + a.get("max-connections", "") + ": allowed integers from 1 to " +
                     std::to_string(cap) + " (the open-file limit)");
  limits.max_connections = static_cast<std::size_t>(max_conn);
  Roots roots;
  roots.run = canonical(a.positional[0]);
  struct stat st {};
  if (roots.run.empty() || ::stat(roots.run.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error("run directory '" + a.positional[0] + "' not found");
  const std::string vdir = a.get("viewer", default_viewer_dir());
  roots.viewer = canonical(vdir);
  if (roots.viewer.empty() || ::stat((roots.viewer + "/index.html").c_str(), &st) != 0)
    throw Error("viewer directory '" + vdir + "' has no index.html (pass --viewer DIR)");

  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) throw Error("cannot create a socket");
  const int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_d));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // never reachable from other machines
  // A deep backlog: a burst of clients waits in the kernel instead of being refused.
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(s, SOMAXCONN) != 0) {
    const std::string why = std::strerror(errno);
    ::close(s);
    throw Error("cannot listen on 127.0.0.1:" + std::to_string(static_cast<int>(port_d)) + " (" + why + ")");
  }
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  roots.port = ntohs(addr.sin_port);
  std::cout << "http://127.0.0.1:" << roots.port << "/" << std::endl;
  if (!a.has("quiet"))
    std::cerr << "mmphate serve: run " << roots.run << ", viewer " << roots.viewer << " (read-only; Ctrl-C stops)"
              << std::endl;
  http::run_server(s, limits, [&roots](std::string_view head) { return answer(roots, head); });
}

}  // namespace mmphate::view
