#include "engine/graph/sparse_build.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "util/parallel.hpp"

namespace mmphate {

SparseMatrix from_triplets_max(Index n, const std::vector<Triplet>& entries, int threads) {
  // Counting sort by row.
  std::vector<Index> start(static_cast<std::size_t>(n) + 1, 0);
  for (const auto& e : entries) ++start[e.row() + 1];
  for (Index r = 0; r < n; ++r) start[r + 1] += start[r];
  std::vector<std::pair<int, double>> slot(entries.size());
  {
    std::vector<Index> fill(start.begin(), start.end() - 1);
    for (const auto& e : entries) slot[fill[e.row()]++] = {static_cast<int>(e.col()), e.value()};
  }
  // Per row: sort by column, merge duplicates with max.
  std::vector<Index> kept(static_cast<std::size_t>(n), 0);
  parallel_for(n, threads, [&](Index r) {
    auto b = slot.begin() + start[r], e = slot.begin() + start[r + 1];
    std::sort(b, e, [](const auto& x, const auto& y) { return x.first < y.first; });
    auto out = b;
    for (auto it = b; it != e; ++it) {
      if (out != b && (out - 1)->first == it->first) {
        (out - 1)->second = std::max((out - 1)->second, it->second);
      } else {
        *out++ = *it;
      }
    }
    kept[r] = out - b;
  });
  SparseMatrix K(n, n);
  Index nnz = 0;
  for (Index r = 0; r < n; ++r) nnz += kept[r];
  K.resizeNonZeros(nnz);
  Index pos = 0;
  K.outerIndexPtr()[0] = 0;
  for (Index r = 0; r < n; ++r) {
    for (Index j = 0; j < kept[r]; ++j) {
      K.innerIndexPtr()[pos] = slot[start[r] + j].first;
      K.valuePtr()[pos] = slot[start[r] + j].second;
      ++pos;
    }
    K.outerIndexPtr()[r + 1] = static_cast<int>(pos);
  }
  return K;
}

namespace {

// Union of a row's entries, emitted in ascending column order without sorting: columns are
// marked in a bitmap over the points and read back word by word. A column met more than once
// keeps its largest value.
class RowUnion {
 public:
  explicit RowUnion(Index columns)
      : bits_(static_cast<std::size_t>((columns + 63) / 64), 0), value_(static_cast<std::size_t>(columns)) {}
  void add(int c, double v) {
    std::uint64_t& word = bits_[static_cast<std::size_t>(c) >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (c & 63);
    value_[c] = (word & bit) ? std::max(value_[c], v) : v;
    word |= bit;
    lo_ = std::min(lo_, c >> 6);
    hi_ = std::max(hi_, c >> 6);
  }
  // Appends the marked columns and their values, and clears the marks.
  void flush(std::vector<int>& col, std::vector<double>& val) {
    for (int w = lo_; w <= hi_; ++w) {
      std::uint64_t word = bits_[w];
      while (word) {
        const int c = (w << 6) + __builtin_ctzll(word);
        col.push_back(c);
        val.push_back(value_[c]);
        word &= word - 1;
      }
      bits_[w] = 0;
    }
    lo_ = std::numeric_limits<int>::max();
    hi_ = -1;
  }

 private:
  std::vector<std::uint64_t> bits_;
  std::vector<double> value_;
  int lo_ = std::numeric_limits<int>::max(), hi_ = -1;
};

}  // namespace

LocalRows symmetric_union(const LocalRows& directed) {
  const Index m = directed.rows();
  const std::size_t entries = directed.col.size();
  // The reverse lists b <- a by one counting-sort pass.
  std::vector<Index> in_start(static_cast<std::size_t>(m) + 1, 0);
  for (int b : directed.col) ++in_start[b + 1];
  for (Index b = 0; b < m; ++b) in_start[b + 1] += in_start[b];
  std::vector<int> in_col(entries);
  std::vector<double> in_val(entries);
  {
    std::vector<Index> fill(in_start.begin(), in_start.end() - 1);
    for (Index a = 0; a < m; ++a)
      for (Index e = directed.start[a]; e < directed.start[a + 1]; ++e) {
        const Index at = fill[directed.col[e]]++;
        in_col[at] = static_cast<int>(a);
        in_val[at] = directed.val[e];
      }
  }
  LocalRows out;
  out.start.assign(static_cast<std::size_t>(m) + 1, 0);
  out.col.reserve(2 * entries);
  out.val.reserve(2 * entries);
  RowUnion row(m);
  for (Index a = 0; a < m; ++a) {
    for (Index e = directed.start[a]; e < directed.start[a + 1]; ++e) row.add(directed.col[e], directed.val[e]);
    for (Index e = in_start[a]; e < in_start[a + 1]; ++e) row.add(in_col[e], in_val[e]);
    row.flush(out.col, out.val);
    out.start[a + 1] = static_cast<Index>(out.col.size());
  }
  return out;
}

}  // namespace mmphate
