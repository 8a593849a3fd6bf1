#include "mmphate/scores.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "mmphate/error.hpp"
#include "engine/graph/knn.hpp"
#include "util/config_json.hpp"
#include "util/parallel.hpp"

namespace mmphate {
namespace {

RowMatrix gather(const RowMatrix& X, const std::vector<Index>& rows) {
  RowMatrix Y(static_cast<Index>(rows.size()), X.cols());
  for (std::size_t i = 0; i < rows.size(); ++i) Y.row(static_cast<Index>(i)) = X.row(rows[i]);
  return Y;
}

// Sums, per k, the overlaps of the queried members of one group; returns the query count.
Index score_group(const RowMatrix& features, const RowMatrix& embedding, const std::vector<Index>& group,
                  const std::vector<Index>& queries, const std::vector<int>& ks, std::vector<double>& sums) {
  const Index m = static_cast<Index>(group.size());
  if (m < 2 || queries.empty()) return 0;
  const int kmax = static_cast<int>(std::min<Index>(*std::max_element(ks.begin(), ks.end()), m - 1));
  const RowMatrix F = gather(features, group), E = gather(embedding, group);
  KnnIndex fi(F, KnnMethod::automatic, 1), ei(E, KnnMethod::automatic, 1);
  const Neighbors nf = fi.knn_rows(queries, kmax), ne = ei.knn_rows(queries, kmax);
  std::vector<int> a, b;
  for (Index q = 0; q < static_cast<Index>(queries.size()); ++q)
    for (std::size_t ki = 0; ki < ks.size(); ++ki) {
      const int k = std::min(ks[ki], kmax);
      a.assign(nf.index.begin() + q * kmax, nf.index.begin() + q * kmax + k);
      b.assign(ne.index.begin() + q * kmax, ne.index.begin() + q * kmax + k);
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      std::vector<int> common;
      std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
      sums[ki] += static_cast<double>(common.size()) / k;
    }
  return static_cast<Index>(queries.size());
}

// Scores one family: groups[g] lists graph rows; `chosen` marks the sampled rows.
void score_family(const RowMatrix& features, const RowMatrix& embedding,
                  const std::vector<std::vector<Index>>& groups, const std::vector<char>& chosen,
                  const std::vector<int>& ks, int threads, std::vector<double>& mean, Index& queries) {
  const Index G = static_cast<Index>(groups.size());
  std::vector<std::vector<double>> sums(static_cast<std::size_t>(G), std::vector<double>(ks.size(), 0.0));
  std::vector<Index> counts(static_cast<std::size_t>(G), 0);
  parallel_for(G, threads, [&](Index g) {
    std::vector<Index> local;
    for (Index i = 0; i < static_cast<Index>(groups[g].size()); ++i)
      if (chosen[groups[g][i]]) local.push_back(i);
    counts[g] = score_group(features, embedding, groups[g], local, ks, sums[g]);
  });
  mean.assign(ks.size(), 0.0);
  queries = std::accumulate(counts.begin(), counts.end(), Index{0});
  for (Index g = 0; g < G; ++g)
    for (std::size_t k = 0; k < ks.size(); ++k) mean[k] += sums[g][k];
  if (queries > 0)
    for (auto& v : mean) v /= static_cast<double>(queries);
}

std::vector<char> sample_rows(Index n, Index max_queries, std::uint64_t seed) {
  std::vector<char> chosen(static_cast<std::size_t>(n), 1);
  if (max_queries <= 0 || max_queries >= n) return chosen;
  std::fill(chosen.begin(), chosen.end(), 0);
  std::vector<Index> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(seed);
  for (Index i = 0; i < max_queries; ++i) {
    std::uniform_int_distribution<Index> pick(i, n - 1);
    std::swap(idx[i], idx[pick(rng)]);
    chosen[idx[i]] = 1;
  }
  return chosen;
}

}  // namespace

CommunityScores community_scores(const RowMatrix& features, const NodeIndex& nodes, const RowMatrix& embedding,
                                 const ScoreOptions& opt) {
  const Index n = nodes.size();
  if (features.rows() != n || embedding.rows() != n)
    throw Error("community scores: trace has " + std::to_string(features.rows()) + " rows and embedding " +
                std::to_string(embedding.rows()) + " rows for " + std::to_string(n) + " nodes");
  if (opt.ks.empty()) throw Error("community scores: no k given");
  for (int k : opt.ks)
    if (k < 1) throw Error("community scores: k = " + std::to_string(k) + " must be >= 1");
  if (!embedding.allFinite()) throw Error("community scores: the embedding holds NaN/Inf");

  std::vector<std::vector<Index>> by_slice(static_cast<std::size_t>(nodes.shape.slices()));
  std::vector<std::vector<Index>> by_unit(static_cast<std::size_t>(nodes.shape.units));
  for (Index r = 0; r < n; ++r) {
    by_slice[nodes.slice(r)].push_back(r);
    by_unit[nodes.unit(r)].push_back(r);
  }
  CommunityScores out;
  out.ks = opt.ks;
  out.nodes = n;
  score_family(features, embedding, by_slice, sample_rows(n, opt.max_queries, opt.seed), opt.ks, opt.threads,
               out.intra_step, out.intra_queries);
  score_family(features, embedding, by_unit, sample_rows(n, opt.max_queries, opt.seed + 1), opt.ks, opt.threads,
               out.inter_step, out.inter_queries);
  return out;
}

nlohmann::json scores_to_json(const CommunityScores& scores, int significant_digits) {
  const auto score = [&](const std::vector<double>& v, std::size_t i) {
    return detail::number_or_null(
        detail::round_significant(i < v.size() ? v[i] : std::numeric_limits<double>::quiet_NaN(), significant_digits));
  };
  nlohmann::json by_k = nlohmann::json::array();
  for (std::size_t i = 0; i < scores.ks.size(); ++i)
    by_k.push_back({{"k", scores.ks[i]}, {"intra_step", score(scores.intra_step, i)},
                    {"inter_step", score(scores.inter_step, i)}});
  return {{"k", scores.ks.empty() ? 0 : scores.ks[0]},
          {"intra_step", score(scores.intra_step, 0)},
          {"inter_step", score(scores.inter_step, 0)},
          {"by_k", std::move(by_k)},
          {"intra_step_nodes_scored", scores.intra_queries},
          {"inter_step_nodes_scored", scores.inter_queries},
          {"nodes", scores.nodes},
          {"sampled", scores.sampled()}};
}

std::vector<int> most_active_class(const RowMatrix& features, const std::vector<std::int64_t>& labels) {
  if (static_cast<Index>(labels.size()) != features.cols())
    throw Error("labels: " + std::to_string(labels.size()) + " labels for " + std::to_string(features.cols()) +
                " probes (one class per probe required)");
  std::int64_t classes = 0;
  for (auto l : labels) {
    if (l < 0) throw Error("labels: class ids must be >= 0, got " + std::to_string(l));
    classes = std::max(classes, l + 1);
  }
  std::vector<int> out(static_cast<std::size_t>(features.rows()));
  std::vector<double> sum(static_cast<std::size_t>(classes));
  for (Index r = 0; r < features.rows(); ++r) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (Index p = 0; p < features.cols(); ++p) sum[labels[p]] += std::abs(features(r, p));
    out[r] = static_cast<int>(std::max_element(sum.begin(), sum.end()) - sum.begin());
  }
  return out;
}

}  // namespace mmphate
