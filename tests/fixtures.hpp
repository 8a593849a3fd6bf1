// Access to the reference fixtures in tests/fixtures/ (README.md there; path fixed at configure
// time with MMPHATE_FIXTURES_DIR).
#pragma once
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mmphate/npy.hpp"
#include "mmphate/types.hpp"

namespace mmphate::testing {

inline std::string fixture_path(const std::string& rel) {
  return std::string(MMPHATE_FIXTURES_DIR) + "/" + rel;
}

inline nlohmann::json reference_json(const std::string& name) {
  std::ifstream in(fixture_path(name + "/reference.json"));
  if (!in) throw std::runtime_error("missing fixture " + fixture_path(name + "/reference.json"));
  return nlohmann::json::parse(in);
}

// Reference kernel as a sparse matrix. The fixture stores the upper triangle (col >= row) in
// coordinate form (kernel_upper_{rows,cols,vals}.npy); the reference kernel is exactly
// symmetric (checked when the fixture was made), so mirroring rebuilds it entry for entry.
inline SparseMatrix reference_kernel(const std::string& name, Index n) {
  const auto rows = read_npy(fixture_path(name + "/kernel_upper_rows.npy")).to_int64();
  const auto cols = read_npy(fixture_path(name + "/kernel_upper_cols.npy")).to_int64();
  const auto vals = read_npy(fixture_path(name + "/kernel_upper_vals.npy")).to_double();
  if (rows.size() != vals.size() || cols.size() != vals.size())
    throw std::runtime_error("fixture " + name + ": kernel_upper_* arrays differ in length");
  std::vector<Triplet> t;
  t.reserve(2 * vals.size());
  for (std::size_t i = 0; i < vals.size(); ++i) {
    if (cols[i] < rows[i]) throw std::runtime_error("fixture " + name + ": kernel entry below the diagonal");
    t.emplace_back(static_cast<int>(rows[i]), static_cast<int>(cols[i]), vals[i]);
    if (cols[i] != rows[i]) t.emplace_back(static_cast<int>(cols[i]), static_cast<int>(rows[i]), vals[i]);
  }
  SparseMatrix K(n, n);
  K.setFromTriplets(t.begin(), t.end());
  return K;
}

// Largest relative difference |a-b|/|b| over the union of both sparsity patterns
// (an entry present in only one counts as relative difference 1).
inline double max_relative_difference(const SparseMatrix& a, const SparseMatrix& b, Index* pattern_mismatch) {
  Index mismatch = 0;
  double worst = 0;
  for (Index r = 0; r < a.outerSize(); ++r) {
    SparseMatrix::InnerIterator ia(a, r), ib(b, r);
    while (ia || ib) {
      if (ia && (!ib || ia.col() < ib.col())) { ++mismatch; worst = std::max(worst, 1.0); ++ia; }
      else if (ib && (!ia || ib.col() < ia.col())) { ++mismatch; worst = std::max(worst, 1.0); ++ib; }
      else {
        worst = std::max(worst, std::abs(ia.value() - ib.value()) / std::abs(ib.value()));
        ++ia; ++ib;
      }
    }
  }
  if (pattern_mismatch) *pattern_mismatch = mismatch;
  return worst;
}

// [d0, d1, ...] input reshaped to (rows, last) doubles.
inline RowMatrix read_as_rows(const std::string& rel, std::vector<std::size_t>* shape = nullptr) {
  NpyArray a = read_npy(fixture_path(rel));
  if (shape) *shape = a.shape;
  const std::size_t last = a.shape.back();
  const std::size_t rows = a.size() / last;
  auto v = a.to_double();
  RowMatrix m(static_cast<Index>(rows), static_cast<Index>(last));
  std::copy(v.begin(), v.end(), m.data());
  return m;
}

}  // namespace mmphate::testing
