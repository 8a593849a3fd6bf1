#include "mmphate/torch/fashion_mnist.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <atomic>
#include <filesystem>
#include <vector>

#include "mmphate/error.hpp"

namespace mmphate::torchlayer {
namespace {

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

void gunzip(const std::string& from, const std::string& to) {
  gzFile in = gzopen(from.c_str(), "rb");
  if (!in)
    throw Error("cannot read '" + from + "' (install the Debian package dataset-fashion-mnist)");
  // A temporary name per process and call: parallel tests (and parallel demo runs) may unpack the
  // same file at once; each writes its own copy and the atomic rename lets the last one win.
  static std::atomic<unsigned> calls{0};
  const std::string tmp = to + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(calls++);
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (!out) {
    gzclose(in);
    throw Error("cannot write '" + tmp + "'");
  }
  std::vector<char> buf(1 << 16);
  int n;
  bool ok = true;
  while ((n = gzread(in, buf.data(), static_cast<unsigned>(buf.size()))) > 0)
    ok = ok && std::fwrite(buf.data(), 1, static_cast<std::size_t>(n), out) == static_cast<std::size_t>(n);
  ok = ok && n == 0;
  gzclose(in);
  ok = (std::fclose(out) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), to.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("failed to decompress '" + from + "' into '" + to + "'");
  }
}

}  // namespace

std::string prepare_fashion_mnist(const std::string& cache_dir, const std::string& source_dir) {
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  if (ec) throw Error("cannot create '" + cache_dir + "': " + ec.message());
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"}) {
    const std::string target = cache_dir + "/" + name;
    if (!exists(target)) gunzip(source_dir + "/" + name + ".gz", target);
  }
  return cache_dir;
}

}  // namespace mmphate::torchlayer
