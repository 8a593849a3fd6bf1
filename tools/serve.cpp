// mmphate serve RUN_DIR [--port N] [--viewer DIR]: a tiny read-only HTTP server for the web
// viewer on a live or finished run. Loopback only (127.0.0.1); GET and HEAD of regular files
// under /run/ (the run directory) and /viewer/ (the viewer's files); everything else is
// refused. Range requests let the viewer fetch only the new bytes of a growing frames.jsonl.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "view_commands.hpp"

#ifndef MMPHATE_VIEWER_DIR
#define MMPHATE_VIEWER_DIR "viewer"
#endif

namespace mmphate::view {
namespace {

const char* kHelp =
    "usage: mmphate serve RUN_DIR [--port N] [--viewer DIR]\n\n"
    "Serves the web viewer and one run directory on http://127.0.0.1:N/ (loopback only,\n"
    "read-only). Open the printed address in a browser; the viewer follows frames.jsonl as a\n"
    "running training appends to it.\n"
    "  --port N       TCP port (default 8765; 0 picks a free one)\n"
    "  --viewer DIR   the viewer's files (default: the source tree's viewer/)\n";

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

bool send_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t k = ::send(fd, data, n, MSG_NOSIGNAL);
    if (k <= 0) {
      if (k < 0 && errno == EINTR) continue;
      return false;
    }
    data += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

void respond(int fd, int code, const char* reason, const std::string& extra_headers, const std::string& body,
             bool head = false) {
  std::ostringstream h;
  h << "HTTP/1.1 " << code << ' ' << reason << "\r\nContent-Length: " << body.size()
    << "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nCache-Control: no-store\r\n"
    << "X-Content-Type-Options: nosniff\r\n" << extra_headers << "\r\n";
  const std::string s = h.str() + (head ? "" : body);
  send_all(fd, s.data(), s.size());
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a URL path; false on malformed escapes or bytes that never name a file here.
bool decode_path(const std::string& in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size() || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0) return false;
      c = static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
      i += 2;
    }
    if (c == '\0' || c == '\\') return false;
    out.push_back(c);
  }
  return true;
}

// Maps a request path to a file under one of the roots, or "" when it is not allowed.
std::string resolve(const Roots& roots, const std::string& url_path) {
  std::string p;
  if (!decode_path(url_path, p)) return "";
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
  struct stat st {};
  if (::stat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  return full;
}

// "bytes=A-" or "bytes=A-B"; false when absent or not understood (then the whole file is sent).
bool parse_range(const std::string& v, long long size, long long& a, long long& b) {
  if (v.rfind("bytes=", 0) != 0) return false;
  const std::string r = v.substr(6);
  const auto dash = r.find('-');
  if (dash == std::string::npos || dash == 0 || r.find(',') != std::string::npos) return false;
  char* end = nullptr;
  a = std::strtoll(r.c_str(), &end, 10);
  if (end != r.c_str() + dash || a < 0) return false;
  b = size - 1;
  if (dash + 1 < r.size()) {
    b = std::strtoll(r.c_str() + dash + 1, &end, 10);
    if (*end != '\0' || b < a) return false;
    b = std::min(b, size - 1);
  }
  return true;
}

std::string header_value(const std::string& req, const std::string& name) {
  std::istringstream in(req);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key == name) {
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

void handle(int fd, const Roots& roots) {
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos) {
    const ssize_t k = ::recv(fd, buf, sizeof buf, 0);
    if (k <= 0) return;
    req.append(buf, static_cast<std::size_t>(k));
    if (req.size() > 16384) { respond(fd, 431, "Request Header Fields Too Large", "", "request too large\n"); return; }
  }
  std::istringstream first(req.substr(0, req.find("\r\n")));
  std::string method, target, version;
  first >> method >> target >> version;
  const bool head = method == "HEAD";
  if (method != "GET" && !head) { respond(fd, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "read-only server\n"); return; }
  if (target.empty() || target[0] != '/') { respond(fd, 400, "Bad Request", "", "bad request target\n"); return; }
  // Pages of other sites may not reach this server through a DNS name (rebinding).
  const std::string host = header_value(req, "host"), port = std::to_string(roots.port);
  if (host != "127.0.0.1:" + port && host != "localhost:" + port) {
    respond(fd, 403, "Forbidden", "", "unexpected Host header\n");
    return;
  }
  const std::string path = target.substr(0, target.find_first_of("?#"));
  if (path == "/" || path == "/index.html") {
    respond(fd, 302, "Found", "Location: /viewer/index.html?run=/run/&live=1\r\n", "", head);
    return;
  }
  const std::string file = resolve(roots, path);
  if (file.empty()) { respond(fd, 404, "Not Found", "", "not found\n", head); return; }
  std::ifstream in(file, std::ios::binary);
  struct stat st {};
  if (!in || ::stat(file.c_str(), &st) != 0) { respond(fd, 404, "Not Found", "", "not found\n", head); return; }
  const long long size = st.st_size;
  long long a = 0, b = size - 1;
  int code = 200;
  const std::string range = header_value(req, "range");
  if (!range.empty() && parse_range(range, size, a, b)) {
    if (a >= size) {
      respond(fd, 416, "Range Not Satisfiable", "Content-Range: bytes */" + std::to_string(size) + "\r\n", "", head);
      return;
    }
    code = 206;
  }
  const long long len = size > 0 ? b - a + 1 : 0;
  std::ostringstream h;
  h << "HTTP/1.1 " << code << (code == 206 ? " Partial Content" : " OK") << "\r\nContent-Length: " << len
    << "\r\nContent-Type: " << content_type(file) << "\r\nConnection: close\r\nCache-Control: no-store\r\n"
    << "Accept-Ranges: bytes\r\nX-Content-Type-Options: nosniff\r\n"
    << "Content-Security-Policy: default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'\r\n";
  if (code == 206) h << "Content-Range: bytes " << a << '-' << b << '/' << size << "\r\n";
  h << "\r\n";
  const std::string hs = h.str();
  if (!send_all(fd, hs.data(), hs.size()) || head) return;
  in.seekg(a);
  std::vector<char> chunk(1 << 16);
  long long left = len;
  while (left > 0 && in) {
    in.read(chunk.data(), static_cast<std::streamsize>(std::min<long long>(left, static_cast<long long>(chunk.size()))));
    const std::streamsize got = in.gcount();
    if (got <= 0 || !send_all(fd, chunk.data(), static_cast<std::size_t>(got))) return;
    left -= got;
  }
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"port", "viewer"}, {"quiet"});
  if (a.has("help")) { std::cout << kHelp; return 0; }
  if (a.positional.size() != 1) throw UsageError("serve needs RUN_DIR (see mmphate serve --help)");
  const double port_d = a.number("port", 8765);
  if (!(port_d >= 0 && port_d <= 65535) || port_d != static_cast<int>(port_d)) 
    throw UsageError("invalid --port " + a.get("port", "") + ": allowed integers from 0 to 65535");
  Roots roots;
  roots.run = canonical(a.positional[0]);
  struct stat st {};
  if (roots.run.empty() || ::stat(roots.run.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error("run directory '" + a.positional[0] + "' not found");
  const std::string vdir = a.get("viewer", MMPHATE_VIEWER_DIR);
  roots.viewer = canonical(vdir);
  if (roots.viewer.empty() || ::stat((roots.viewer + "/index.html").c_str(), &st) != 0)
    throw Error("viewer directory '" + vdir + "' has no index.html (pass --viewer DIR)");

  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) throw Error("cannot create a socket");
  const int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_d));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // never reachable from other machines
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(s, 32) != 0) {
    ::close(s);
    throw Error("cannot listen on 127.0.0.1:" + std::to_string(static_cast<int>(port_d)) + " (" + std::strerror(errno) + ")");
  }
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  roots.port = ntohs(addr.sin_port);
  std::cout << "http://127.0.0.1:" << roots.port << "/" << std::endl;
  if (!a.has("quiet"))
    std::cerr << "mmphate serve: run " << roots.run << ", viewer " << roots.viewer << " (read-only; Ctrl-C stops)"
              << std::endl;
  static std::atomic<int> active{0};
  for (;;) {
    const int c = ::accept(s, nullptr, nullptr);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
      ::close(s);
      throw Error(std::string("accept failed: ") + std::strerror(errno));
    }
    if (active.load() >= 64) { ::close(c); continue; }  // bounded: a flood cannot exhaust threads
    ++active;
    std::thread([c, roots] {
      handle(c, roots);
      ::shutdown(c, SHUT_RDWR);
      ::close(c);
      --active;
    }).detach();
  }
}

}  // namespace mmphate::view
