#include "util/atomic_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "mmphate/error.hpp"

namespace mmphate {
namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "directory";
  if (S_ISFIFO(mode)) return "FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISBLK(mode)) return "block device";
  if (S_ISCHR(mode)) return "character device";
  return "special file";
}

// The end of a chain of symbolic links starting at `path` (the path itself when it is no
// link); the last element may not exist yet.
std::string follow_links(const std::string& path) {
  std::string cur = path;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(cur.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return cur;
    std::vector<char> buf(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
    const ssize_t n = ::readlink(cur.c_str(), buf.data(), buf.size());
    if (n < 0 || static_cast<std::size_t>(n) >= buf.size())
      throw Error("cannot write '" + path + "': cannot read the symbolic link '" + cur + "'");
    std::string target(buf.data(), static_cast<std::size_t>(n));
    if (target.empty()) throw Error("cannot write '" + path + "': the symbolic link '" + cur + "' is empty");
    if (target[0] != '/') {
      const auto slash = cur.rfind('/');
      if (slash != std::string::npos) target = cur.substr(0, slash + 1) + target;
    }
    cur = target;
  }
  throw Error("cannot write '" + path + "': too many levels of symbolic links");
}

void write_in_place(const std::string& path, const std::function<void(std::ostream&)>& fill) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot open '" + path + "' for writing");
  fill(out);
  out.flush();
  if (!out) throw Error("failed writing '" + path + "'");
}

}  // namespace

WriteTarget resolve_write_target(const std::string& path) {
  if (path.empty()) throw Error("cannot write to an empty path");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {  // follows links
    if (S_ISREG(st.st_mode)) return {follow_links(path), false};
    if (S_ISCHR(st.st_mode)) return {path, true};
    throw Error("refusing to write '" + path + "': it is a " + kind_of(st.st_mode) +
                " (allowed: a regular file, a new path, a character device such as /dev/null, or a symbolic link "
                "to one of these)");
  }
  if (errno != ENOENT) throw Error("cannot write '" + path + "': " + std::strerror(errno));
  return {follow_links(path), false};  // a new path, or a dangling link's target
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& fill) {
  const WriteTarget target = resolve_write_target(path);
  if (target.in_place) return write_in_place(target.path, fill);
  const std::string tmp = target.path + ".tmp";
  std::remove(tmp.c_str());  // a stale temporary (or a link planted there) is never written through
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write '" + path + "' (missing directory or no permission)");
    try {
      fill(out);
    } catch (...) {
      out.close();
      std::remove(tmp.c_str());
      throw;
    }
    out.flush();
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      throw Error("failed writing '" + tmp + "' (disk full?)");
    }
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error("failed writing '" + tmp + "' (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), target.path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("cannot move '" + tmp + "' to '" + target.path + "'");
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

void require_writable(const std::string& path) {
  const WriteTarget target = resolve_write_target(path);
  if (target.in_place) {
    std::ofstream out(target.path, std::ios::binary | std::ios::app);
    if (!out) throw Error("cannot write '" + path + "' (no permission)");
    return;
  }
  const std::string probe = target.path + ".tmp";
  struct stat st {};
  const bool existed = ::lstat(probe.c_str(), &st) == 0;
  {
    std::ofstream out(probe, std::ios::binary | std::ios::app);
    if (!out) throw Error("cannot write '" + path + "' (missing directory or no permission)");
  }
  if (!existed) std::remove(probe.c_str());
}

}  // namespace mmphate
