/// @file
/// Reader and writer for NumPy .npy files (format versions 1.0-3.0).
/// Supported element types: float32, float64, int32, int64, little endian, C order.
/// Anything else (Fortran order, big endian, other dtypes, truncated data) is a clear Error.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mmphate/types.hpp"

namespace mmphate {

enum class NpyType { float32, float64, int32, int64 };

struct NpyArray {
  std::vector<std::size_t> shape;
  NpyType type = NpyType::float64;
  std::vector<unsigned char> bytes;  ///< raw little-endian payload, C order

  std::size_t size() const;                 ///< number of elements
  std::vector<double> to_double() const;    ///< converts any supported type
  std::vector<std::int64_t> to_int64() const;  ///< integer types only
};

NpyArray read_npy(const std::string& path);

/// Reads a 2-D float array [rows, cols] as doubles; errors name the file and the shape found.
RowMatrix read_npy_matrix(const std::string& path);

void write_npy(const std::string& path, const double* data, const std::vector<std::size_t>& shape);
void write_npy(const std::string& path, const float* data, const std::vector<std::size_t>& shape);
void write_npy(const std::string& path, const std::int64_t* data,
               const std::vector<std::size_t>& shape);
void write_npy_matrix(const std::string& path, const RowMatrix& m);

const char* npy_type_name(NpyType t);

}  // namespace mmphate
