/// @file
/// Sequential Fashion-MNIST from Debian's dataset-fashion-mnist package, for the training demo
/// and the capture benchmarks: the package ships gzipped IDX files and LibTorch's MNIST reader
/// wants them plain, so they are decompressed once into a cache folder.
#pragma once
#include <string>

namespace mmphate::torchlayer {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Decompresses the four IDX files from `source_dir` into `cache_dir` (created if needed;
/// files already there are kept) and returns cache_dir. Throws mmphate::Error naming the
/// missing file and the package to install.
std::string prepare_fashion_mnist(const std::string& cache_dir, const std::string& source_dir = kFashionMnistDir);

}  // namespace mmphate::torchlayer
