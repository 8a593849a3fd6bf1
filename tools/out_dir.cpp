// Output folders of render and export: OUT_DIR is created with its missing parents, like
// `mkdir -p` (a fresh `results/run7/figures` used to fail with "cannot create directory").
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "mmphate/error.hpp"
#include "view_commands.hpp"

namespace mmphate::view {
namespace {

// One level: created, or already a directory (a file or a link to one in the way is an error).
void make_one(const std::string& d) {
  if (::mkdir(d.c_str(), 0755) == 0) return;
  const int err = errno;
  struct stat st{};
  if (err == EEXIST && ::stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
  throw Error("cannot create directory '" + d + "': " +
              (err == EEXIST ? std::string("exists and is not a directory") : std::strerror(err)));
}

}  // namespace

void make_dirs(const std::string& path) {
  if (path.empty()) throw Error("cannot create directory '': empty path");
  // Each prefix that ends before a '/' (skipping the root and doubled slashes), then the whole.
  for (std::size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1))
    if (path[pos - 1] != '/') make_one(path.substr(0, pos));
  if (path.back() != '/') make_one(path);
}

}  // namespace mmphate::view
