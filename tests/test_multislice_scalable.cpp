// Unit tests of the scalable multislice kernel (kNN interslice edges + multiway edges), the
// trace preparation (NaN policies, shape checks), the community scores and the row-subset
// nearest-neighbour search. Expected values are computed here independently, by brute force.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mmphate/error.hpp"
#include "engine/graph/knn.hpp"
#include "engine/graph/multislice.hpp"
#include "mmphate/options.hpp"
#include "util/parallel.hpp"
#include "mmphate/phate.hpp"
#include "mmphate/scores.hpp"
#include "testing/synthetic.hpp"
#include "mmphate/trace.hpp"

#include "test_util.hpp"

using namespace mmphate;

namespace {

[[maybe_unused]] ::testing::Environment* const single_threaded =
    ::testing::AddGlobalTestEnvironment(new mmphate::testing::SingleThreaded);

using mmphate::testing::random_matrix;

using mmphate::testing::error_of;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TraceShape small_shape() {
  TraceShape s;
  s.epochs = 6;
  s.steps = 5;
  s.units = 8;
  s.probes = 12;
  return s;
}

// A z-scored synthetic trace of `shape` with every node present.
PreparedTrace small_trace(const TraceShape& shape, std::uint64_t seed = 7) {
  const RowMatrix raw = make_multislice_trace(shape.slices(), shape.units, shape.probes, 3, seed);
  Options o = Options::mmphate_scalable();
  return prepare_trace(raw, shape, o);
}

// Options of the scalable kernel tests: few interslice edges so the kNN selection matters.
Options scalable_options() {
  Options o = Options::mmphate_scalable();
  o.threads = 1;
  o.interslice_knn = 6;    // bandwidth rank
  o.interslice_edges = 4;  // edges kept per slice-point
  return o;
}

// The k nearest other slice-points (graph rows) of every slice-point of unit u, brute force.
std::vector<std::vector<Index>> brute_unit_knn(const RowMatrix& F, const NodeIndex& nodes, Index u, int k) {
  std::vector<Index> rows;
  for (Index s = 0; s < nodes.shape.slices(); ++s)
    if (nodes.row(s, u) >= 0) rows.push_back(nodes.row(s, u));
  std::vector<std::vector<Index>> out;
  for (Index a : rows) {
    std::vector<std::pair<double, Index>> d;
    for (Index b : rows)
      if (b != a) d.emplace_back((F.row(a) - F.row(b)).norm(), b);
    std::sort(d.begin(), d.end());
    std::vector<Index> nn;
    for (int j = 0; j < k && j < static_cast<int>(d.size()); ++j) nn.push_back(d[j].second);
    out.push_back(nn);
  }
  return out;
}

// eps = mean over units of the median over slice-points of the kappa-th nearest distance.
double brute_bandwidth(const RowMatrix& F, const NodeIndex& nodes, int kappa) {
  double total = 0;
  for (Index u = 0; u < nodes.shape.units; ++u) {
    std::vector<Index> rows;
    for (Index s = 0; s < nodes.shape.slices(); ++s) rows.push_back(nodes.row(s, u));
    std::vector<double> kth;
    for (Index a : rows) {
      std::vector<double> d;
      for (Index b : rows)
        if (b != a) d.push_back((F.row(a) - F.row(b)).norm());
      std::sort(d.begin(), d.end());
      kth.push_back(d[static_cast<std::size_t>(kappa - 1)]);
    }
    std::sort(kth.begin(), kth.end());
    const std::size_t m = kth.size();
    total += (m % 2 == 1) ? kth[m / 2] : 0.5 * (kth[m / 2 - 1] + kth[m / 2]);
  }
  return total / static_cast<double>(nodes.shape.units);
}

double entry(const SparseMatrix& K, Index i, Index j) { return K.coeff(i, j); }

}  // namespace

// ---------------------------------------------------------------- scalable kernel

TEST(ScalableKernel, SymmetricUnitDiagonalPositiveEntries) {
  const TraceShape shape = small_shape();
  const PreparedTrace tr = small_trace(shape);
  const SparseMatrix K = multislice_kernel(tr.features, tr.index, scalable_options());
  ASSERT_EQ(K.rows(), shape.nodes());
  ASSERT_EQ(K.cols(), shape.nodes());
  const Matrix A(K);
  EXPECT_EQ((A - A.transpose()).cwiseAbs().maxCoeff(), 0.0);
  for (Index i = 0; i < A.rows(); ++i) EXPECT_EQ(A(i, i), 1.0) << "row " << i;
  for (Index r = 0; r < K.outerSize(); ++r)
    for (SparseMatrix::InnerIterator it(K, r); it; ++it) {
      EXPECT_GT(it.value(), 0.0) << it.row() << "," << it.col();
      EXPECT_TRUE(std::isfinite(it.value()));
    }
}

TEST(ScalableKernel, EveryNodeHasAtLeastItsInterSliceNeighbours) {
  const TraceShape shape = small_shape();
  const PreparedTrace tr = small_trace(shape);
  for (int edges : {0, 4, 40}) {
    Options o = scalable_options();
    o.interslice_edges = edges;
    o.thresh = 0.0;  // keep every kNN edge, so the count is exact
    o.time_edge_weight = 0.0;
    o.epoch_edge_weight = 0.0;
    const SparseMatrix K = multislice_kernel(tr.features, tr.index, o);
    const Index want = std::min<Index>(edges > 0 ? edges : o.interslice_knn, shape.slices() - 1);
    for (Index r = 0; r < K.outerSize(); ++r) {
      Index inter = 0;
      for (SparseMatrix::InnerIterator it(K, r); it; ++it)
        if (tr.index.unit(it.col()) == tr.index.unit(r) && tr.index.slice(it.col()) != tr.index.slice(r)) ++inter;
      EXPECT_GE(inter, want) << "edges " << edges << " row " << r;
    }
  }
  // With the default threshold, kNN edges below thresh are dropped (as in the faithful kernel),
  // so the bound above need not hold; the multiway edges are never dropped, so every node keeps
  // at least its adjacent-step and adjacent-epoch partners.
  const Options o = scalable_options();
  const SparseMatrix K = multislice_kernel(tr.features, tr.index, o);
  for (Index r = 0; r < K.outerSize(); ++r) {
    Index inter = 0;
    for (SparseMatrix::InnerIterator it(K, r); it; ++it)
      if (tr.index.unit(it.col()) == tr.index.unit(r) && tr.index.slice(it.col()) != tr.index.slice(r)) ++inter;
    const Index e = tr.index.epoch(r), t = tr.index.step(r);
    const Index partners = (t > 0) + (t + 1 < shape.steps) + (e > 0) + (e + 1 < shape.epochs);
    EXPECT_GE(inter, partners) << "row " << r;
    EXPECT_GE(inter, 2) << "row " << r;
  }
}

TEST(ScalableKernel, IntrasliceEntriesAndBandwidthMatchFaithful) {
  const TraceShape shape = small_shape();
  const PreparedTrace tr = small_trace(shape);
  Options so = scalable_options();
  Options fo = so;
  fo.multislice_mode = MultisliceMode::faithful;
  MultisliceInfo si, fi;
  const SparseMatrix S = multislice_kernel(tr.features, tr.index, so, &si);
  const SparseMatrix F = multislice_kernel(tr.features, tr.index, fo, &fi);
  EXPECT_NEAR(si.interslice_eps, fi.interslice_eps, 1e-12);
  EXPECT_NEAR(si.interslice_eps, brute_bandwidth(tr.features, tr.index, so.interslice_knn), 1e-12);
  EXPECT_EQ(si.intraslice_nnz, fi.intraslice_nnz);
  EXPECT_GT(si.intraslice_nnz, shape.nodes());  // more than the diagonal
  const Matrix Sd(S), Fd(F);
  Index compared = 0;
  for (Index i = 0; i < shape.nodes(); ++i)
    for (Index j = 0; j < shape.nodes(); ++j)
      if (tr.index.slice(i) == tr.index.slice(j)) {
        EXPECT_EQ(Sd(i, j), Fd(i, j)) << i << "," << j;
        ++compared;
      } else if (tr.index.unit(i) != tr.index.unit(j)) {
        // different slice and unit: no edge in either mode
        EXPECT_EQ(Sd(i, j), 0.0) << i << "," << j;
        EXPECT_EQ(Fd(i, j), 0.0) << i << "," << j;
      }
  EXPECT_EQ(compared, shape.slices() * shape.units * shape.units);
}

TEST(ScalableKernel, InterSliceEdgesAreTheGaussianOnKnnPairs) {
  const TraceShape shape = small_shape();
  const PreparedTrace tr = small_trace(shape);
  Options o = scalable_options();
  o.time_edge_weight = 0.0;
  o.epoch_edge_weight = 0.0;
  MultisliceInfo info;
  const SparseMatrix K = multislice_kernel(tr.features, tr.index, o, &info);
  EXPECT_EQ(info.multiway_nnz, 0);
  const double eps = brute_bandwidth(tr.features, tr.index, o.interslice_knn);
  ASSERT_NEAR(info.interslice_eps, eps, 1e-12);

  // Independent kNN per unit; the expected edge set is the union of both directions, minus
  // entries below thresh.
  std::set<std::pair<Index, Index>> expected;
  for (Index u = 0; u < shape.units; ++u) {
    const auto nn = brute_unit_knn(tr.features, tr.index, u, o.interslice_edges);
    for (Index s = 0; s < shape.slices(); ++s) {
      const Index a = tr.index.row(s, u);
      for (Index b : nn[s]) {
        const double d = (tr.features.row(a) - tr.features.row(b)).norm();
        if (std::exp(-d * d / (eps * eps)) < o.thresh) continue;
        expected.insert({a, b});
        expected.insert({b, a});
      }
    }
  }
  ASSERT_FALSE(expected.empty());
  std::set<std::pair<Index, Index>> got;
  for (Index r = 0; r < K.outerSize(); ++r)
    for (SparseMatrix::InnerIterator it(K, r); it; ++it) {
      if (tr.index.slice(it.col()) == tr.index.slice(r)) continue;  // intraslice
      ASSERT_EQ(tr.index.unit(it.col()), tr.index.unit(r)) << "interslice edge across units";
      got.insert({r, it.col()});
      const double d = (tr.features.row(r) - tr.features.row(it.col())).norm();
      EXPECT_NEAR(it.value(), std::exp(-d * d / (eps * eps)), 1e-12) << r << "," << it.col();
    }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(info.interslice_nnz % 2, 0);
  EXPECT_GE(info.interslice_nnz, static_cast<Index>(expected.size()));  // duplicates counted before merging
}

TEST(ScalableKernel, MultiwayEdgesLinkAdjacentStepsAndEpochs) {
  const TraceShape shape = small_shape();
  const PreparedTrace tr = small_trace(shape);
  Options o = scalable_options();
  o.interslice_edges = 1;  // few kNN edges: most multiway pairs come from the multiway family
  o.time_edge_weight = 1.0;
  o.epoch_edge_weight = 1.0;
  MultisliceInfo info;
  const SparseMatrix K = multislice_kernel(tr.features, tr.index, o, &info);
  const Index E = shape.epochs, T = shape.steps, U = shape.units;
  EXPECT_EQ(info.multiway_nnz, 2 * (E * (T - 1) * U + (E - 1) * T * U));
  const double eps = info.interslice_eps;
  Index pairs = 0;
  for (Index e = 0; e < E; ++e)
    for (Index t = 0; t < T; ++t)
      for (Index u = 0; u < U; ++u) {
        const Index here = tr.index.row(e * T + t, u);
        std::vector<Index> next;
        if (t + 1 < T) next.push_back(tr.index.row(e * T + t + 1, u));
        if (e + 1 < E) next.push_back(tr.index.row((e + 1) * T + t, u));
        for (Index other : next) {
          ++pairs;
          const double d = (tr.features.row(here) - tr.features.row(other)).norm();
          const double lower = std::max(std::exp(-d * d / (eps * eps)), o.thresh);
          // a kNN edge there would weigh exp(-d^2/eps^2) <= lower: the multiway weight wins
          EXPECT_NEAR(entry(K, here, other), lower, 1e-12) << here << "," << other;
          EXPECT_GT(entry(K, here, other), 0.0);
          EXPECT_EQ(entry(K, here, other), entry(K, other, here));
        }
      }
  EXPECT_EQ(pairs, E * (T - 1) * U + (E - 1) * T * U);

  // Epoch edges only: a step pair with neither kNN nor epoch link has to be absent.
  Options oe = o;
  oe.time_edge_weight = 0.0;
  oe.epoch_edge_weight = 2.5;
  MultisliceInfo ie;
  const SparseMatrix Ke = multislice_kernel(tr.features, tr.index, oe, &ie);
  EXPECT_EQ(ie.multiway_nnz, 2 * (E - 1) * T * U);
  for (Index e = 0; e + 1 < E; ++e)
    for (Index t = 0; t < T; ++t)
      for (Index u = 0; u < U; ++u) {
        const Index a = tr.index.row(e * T + t, u), b = tr.index.row((e + 1) * T + t, u);
        const double d = (tr.features.row(a) - tr.features.row(b)).norm();
        EXPECT_NEAR(entry(Ke, a, b), 2.5 * std::max(std::exp(-d * d / (eps * eps)), oe.thresh), 1e-12);
      }
}

// ---------------------------------------------------------------- faithful memory budget

TEST(FaithfulBudget, RunRefusesTraceAboveMemoryBudget) {
  const TraceShape shape = small_shape();
  const RowMatrix raw = make_multislice_trace(shape.slices(), shape.units, shape.probes, 3, 1);
  Options o = Options::mphate();
  o.memory_budget_gb = 1e-6;
  ASSERT_GT(faithful_kernel_bytes(shape.slices(), shape.units), o.memory_budget_gb * 1e9);
  const std::string msg = error_of([&] { run_multislice(raw, shape, o); });
  EXPECT_TRUE(contains(msg, "memory_budget_gb")) << msg;
  EXPECT_TRUE(contains(msg, "scalable")) << msg;
  // The same input in scalable mode is accepted by the kernel.
  Options s = o;
  s.multislice_mode = MultisliceMode::scalable;
  const PreparedTrace tr = prepare_trace(raw, shape, s);
  EXPECT_NO_THROW(multislice_kernel(tr.features, tr.index, s));
}

// ---------------------------------------------------------------- prepare_trace

TEST(PrepareTrace, ErrorPolicyNamesCountAndFirstNan) {
  const TraceShape shape = small_shape();
  RowMatrix raw = make_multislice_trace(shape.slices(), shape.units, shape.probes, 3, 2);
  // (epoch 3, step 2, unit 5, probe 7) and a second value later on.
  const Index slice = 3 * shape.steps + 2;
  raw(slice * shape.units + 5, 7) = std::numeric_limits<double>::quiet_NaN();
  raw((slice + 4) * shape.units + 1, 0) = std::numeric_limits<double>::infinity();
  Options o = Options::mmphate_scalable();
  o.nan_policy = NanPolicy::error;
  const std::string msg = error_of([&] { prepare_trace(raw, shape, o); });
  ASSERT_FALSE(msg.empty());
  EXPECT_TRUE(contains(msg, "2 NaN")) << msg;
  EXPECT_TRUE(contains(msg, "epoch 3")) << msg;
  EXPECT_TRUE(contains(msg, "step 2")) << msg;
  EXPECT_TRUE(contains(msg, "unit 5")) << msg;
  EXPECT_TRUE(contains(msg, "probe 7")) << msg;
}

TEST(PrepareTrace, ZeroPolicyReplacesNanBeforeZscore) {
  const TraceShape shape = small_shape();
  RowMatrix raw = make_multislice_trace(shape.slices(), shape.units, shape.probes, 3, 3);
  const Index bad = 17;
  raw(bad, 4) = std::numeric_limits<double>::quiet_NaN();
  raw(bad, 9) = -std::numeric_limits<double>::infinity();
  Options o = Options::mmphate_scalable();
  o.nan_policy = NanPolicy::zero;
  const PreparedTrace tr = prepare_trace(raw, shape, o);
  EXPECT_EQ(tr.nonfinite_values, 2);
  EXPECT_EQ(tr.dropped_nodes, 0);
  ASSERT_EQ(tr.features.rows(), shape.nodes());
  EXPECT_TRUE(tr.features.allFinite());
  const auto row = tr.features.row(bad);
  EXPECT_NEAR(row.mean(), 0.0, 1e-12);
  EXPECT_NEAR(std::sqrt((row.array() - row.mean()).square().mean()), 1.0, 1e-12);
  // Independently: replace by 0, then z-score with the population std.
  Eigen::RowVectorXd x = raw.row(bad);
  x(4) = 0.0;
  x(9) = 0.0;
  const double mu = x.mean();
  const double sd = std::sqrt((x.array() - mu).square().mean());
  for (Index p = 0; p < shape.probes; ++p) EXPECT_NEAR(row(p), (x(p) - mu) / sd, 1e-12) << "probe " << p;
}

TEST(PrepareTrace, DropNodeRemovesExactlyTheBadNodes) {
  const TraceShape shape = small_shape();
  RowMatrix raw = make_multislice_trace(shape.slices(), shape.units, shape.probes, 3, 4);
  const std::vector<Index> bad_nodes{0, 37, 38, 121, shape.nodes() - 1};
  for (Index b : bad_nodes) raw(b, b % shape.probes) = std::numeric_limits<double>::quiet_NaN();
  raw(37, 0) = std::numeric_limits<double>::infinity();  // a second bad value in one node
  Options o = Options::mmphate_scalable();
  o.threads = 1;
  o.nan_policy = NanPolicy::drop_node;
  const PreparedTrace tr = prepare_trace(raw, shape, o);
  const Index left = shape.nodes() - static_cast<Index>(bad_nodes.size());
  EXPECT_EQ(tr.index.size(), left);
  EXPECT_EQ(tr.features.rows(), left);
  EXPECT_EQ(tr.dropped_nodes, static_cast<Index>(bad_nodes.size()));
  EXPECT_EQ(tr.nonfinite_values, static_cast<Index>(bad_nodes.size()) + 1);
  EXPECT_TRUE(tr.features.allFinite());
  ASSERT_EQ(static_cast<Index>(tr.index.row_of.size()), shape.nodes());
  for (Index b : bad_nodes) EXPECT_EQ(tr.index.row_of[b], -1) << "node " << b;
  for (Index i = 1; i < tr.index.size(); ++i) EXPECT_LT(tr.index.full_id[i - 1], tr.index.full_id[i]);
  for (Index i = 0; i < tr.index.size(); ++i) EXPECT_EQ(tr.index.row_of[tr.index.full_id[i]], i);
  // The kept rows are the z-scored raw rows.
  const Index r = tr.index.row_of[39];
  ASSERT_GE(r, 0);
  Eigen::RowVectorXd x = raw.row(39);
  const double mu = x.mean(), sd = std::sqrt((x.array() - mu).square().mean());
  for (Index p = 0; p < shape.probes; ++p) EXPECT_NEAR(tr.features(r, p), (x(p) - mu) / sd, 1e-12);

  const EmbedResult res = run_multislice(raw, shape, o);
  EXPECT_EQ(res.embedding.rows(), left);
  EXPECT_EQ(res.embedding.cols(), 2);
  EXPECT_TRUE(res.embedding.allFinite());
  EXPECT_EQ(res.dropped_nodes, static_cast<Index>(bad_nodes.size()));
  EXPECT_EQ(res.nodes.full_id, tr.index.full_id);
}

TEST(PrepareTrace, RejectsOneProbeWithNormalizeAndWrongSize) {
  TraceShape one = small_shape();
  one.probes = 1;
  Options o = Options::mmphate_scalable();
  const RowMatrix raw1 = random_matrix(one.nodes(), 1, 5);
  const std::string m1 = error_of([&] { prepare_trace(raw1, one, o); });
  EXPECT_TRUE(contains(m1, "1 probe")) << m1;
  Options nn = o;
  nn.normalize = false;
  EXPECT_NO_THROW(prepare_trace(raw1, one, nn));

  const TraceShape shape = small_shape();
  const RowMatrix wrong = random_matrix(shape.nodes() - 1, shape.probes, 6);
  const std::string m2 = error_of([&] { prepare_trace(wrong, shape, o); });
  EXPECT_TRUE(contains(m2, "[6, 5, 8, 12]")) << m2;
  const RowMatrix wrong_cols = random_matrix(shape.nodes(), shape.probes + 1, 6);
  const std::string m3 = error_of([&] { prepare_trace(wrong_cols, shape, o); });
  EXPECT_TRUE(contains(m3, "[6, 5, 8, 12]")) << m3;
}

// ---------------------------------------------------------------- most_active_class

TEST(MostActiveClass, HandComputed) {
  RowMatrix F(3, 3);
  F << 3, 1, -1,   // class 0: 3, class 1: 2
      1, 2, -2,    // class 0: 1, class 1: 4
      -5, 2, 2.5;  // class 0: 5, class 1: 4.5
  const std::vector<std::int64_t> labels{0, 1, 1};
  EXPECT_EQ(most_active_class(F, labels), (std::vector<int>{0, 1, 0}));
  // Class ids need not be contiguous: class 2 wins on |-4| + |1|.
  const std::vector<std::int64_t> sparse_labels{0, 2, 2};
  RowMatrix G(1, 3);
  G << 4.5, -4, 1;
  EXPECT_EQ(most_active_class(G, sparse_labels), (std::vector<int>{2}));
  EXPECT_THROW(most_active_class(F, std::vector<std::int64_t>{0, 1}), Error);
  EXPECT_THROW(most_active_class(F, std::vector<std::int64_t>{0, 1, 1, 0}), Error);
  EXPECT_THROW(most_active_class(F, std::vector<std::int64_t>{0, -1, 1}), Error);
}

// ---------------------------------------------------------------- community scores

namespace {

// Brute-force neighbourhood preservation over every node (no sampling, no ties expected).
std::vector<double> brute_scores(const RowMatrix& F, const RowMatrix& E, const NodeIndex& nodes,
                                 const std::vector<int>& ks, bool intra) {
  std::vector<double> sum(ks.size(), 0.0);
  const Index n = nodes.size();
  auto nearest = [&](const RowMatrix& X, Index i, const std::vector<Index>& group, int k) {
    std::vector<std::pair<double, Index>> d;
    for (Index j : group)
      if (j != i) d.emplace_back((X.row(i) - X.row(j)).squaredNorm(), j);
    std::sort(d.begin(), d.end());
    std::set<Index> out;
    for (int q = 0; q < k; ++q) out.insert(d[q].second);
    return out;
  };
  for (Index i = 0; i < n; ++i) {
    std::vector<Index> group;
    for (Index j = 0; j < n; ++j)
      if (intra ? nodes.slice(j) == nodes.slice(i) : nodes.unit(j) == nodes.unit(i)) group.push_back(j);
    for (std::size_t ki = 0; ki < ks.size(); ++ki) {
      const int k = std::min<int>(ks[ki], static_cast<int>(group.size()) - 1);
      const auto a = nearest(F, i, group, k), b = nearest(E, i, group, k);
      int common = 0;
      for (Index x : a) common += b.count(x) ? 1 : 0;
      sum[ki] += static_cast<double>(common) / k;
    }
  }
  for (auto& v : sum) v /= static_cast<double>(n);
  return sum;
}

struct ScoreCase {
  TraceShape shape;
  NodeIndex nodes;
  RowMatrix features;  // 2 probes: trace space == embedding space
};

ScoreCase score_case(Index epochs, Index steps, Index units, std::uint64_t seed) {
  ScoreCase c;
  c.shape.epochs = epochs;
  c.shape.steps = steps;
  c.shape.units = units;
  c.shape.probes = 2;
  c.nodes = NodeIndex::all(c.shape);
  c.features = random_matrix(c.shape.nodes(), 2, seed);
  return c;
}

RowMatrix permuted_rows(const RowMatrix& X, std::uint64_t seed) {
  std::vector<Index> perm(static_cast<std::size_t>(X.rows()));
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  RowMatrix Y(X.rows(), X.cols());
  for (Index i = 0; i < X.rows(); ++i) Y.row(i) = X.row(perm[i]);
  return Y;
}

}  // namespace

TEST(CommunityScores, IdenticalEmbeddingScoresOne) {
  const ScoreCase c = score_case(4, 5, 8, 11);
  ScoreOptions so;
  so.ks = {1, 3, 10, 40};
  so.max_queries = 0;
  const CommunityScores s = community_scores(c.features, c.nodes, c.features, so);
  ASSERT_EQ(s.intra_step.size(), 4u);
  ASSERT_EQ(s.inter_step.size(), 4u);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(s.intra_step[k], 1.0) << "k " << so.ks[k];
    EXPECT_EQ(s.inter_step[k], 1.0) << "k " << so.ks[k];
  }
  EXPECT_EQ(s.nodes, c.shape.nodes());
  EXPECT_EQ(s.intra_queries, c.shape.nodes());
  EXPECT_EQ(s.inter_queries, c.shape.nodes());
  EXPECT_FALSE(s.sampled());
}

TEST(CommunityScores, RotatedScaledEmbeddingScoresOne) {
  const ScoreCase c = score_case(4, 5, 8, 12);
  const double a = 0.7;
  Eigen::Matrix2d R;
  R << std::cos(a), -std::sin(a), std::sin(a), std::cos(a);
  RowMatrix E = 3.5 * (c.features * R.transpose());
  E.col(0).array() += 100.0;  // and shifted
  ScoreOptions so;
  so.ks = {3, 10};
  so.max_queries = 0;
  const CommunityScores s = community_scores(c.features, c.nodes, E, so);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(s.intra_step[k], 1.0);
    EXPECT_EQ(s.inter_step[k], 1.0);
  }
}

TEST(CommunityScores, PermutedEmbeddingNearChanceAndMatchesBruteForce) {
  const ScoreCase c = score_case(4, 5, 8, 13);
  const RowMatrix E = permuted_rows(c.features, 99);
  ScoreOptions so;
  so.ks = {3, 10};
  so.max_queries = 0;
  const CommunityScores s = community_scores(c.features, c.nodes, E, so);
  // chance: intra k=3 in groups of 8: 3/7; inter k=3 in groups of 20: 3/19
  EXPECT_LT(s.intra_step[0], 0.7);
  EXPECT_LT(s.inter_step[0], 0.5);
  EXPECT_LT(s.intra_step[0], 1.0);
  EXPECT_LT(s.inter_step[1], 1.0);
  // k = 10 is capped at the group size - 1 = 7 for the intra family: every neighbour is shared.
  EXPECT_EQ(s.intra_step[1], 1.0);
  const std::vector<double> intra = brute_scores(c.features, E, c.nodes, so.ks, true);
  const std::vector<double> inter = brute_scores(c.features, E, c.nodes, so.ks, false);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_NEAR(s.intra_step[k], intra[k], 1e-12) << "k " << so.ks[k];
    EXPECT_NEAR(s.inter_step[k], inter[k], 1e-12) << "k " << so.ks[k];
  }
}

TEST(CommunityScores, SamplingReportsQueriesAndEstimatesFullScore) {
  const ScoreCase c = score_case(5, 8, 10, 14);  // 400 nodes
  // A partly scrambled embedding: half the rows permuted, so the score is neither 0 nor 1.
  RowMatrix E = c.features;
  const RowMatrix P = permuted_rows(c.features, 5);
  for (Index i = 0; i < E.rows(); i += 2) E.row(i) = P.row(i);
  ScoreOptions full;
  full.ks = {3, 10};
  full.max_queries = 0;
  const CommunityScores f = community_scores(c.features, c.nodes, E, full);
  const std::vector<double> intra = brute_scores(c.features, E, c.nodes, full.ks, true);
  const std::vector<double> inter = brute_scores(c.features, E, c.nodes, full.ks, false);
  for (std::size_t k = 0; k < 2; ++k) {
    ASSERT_NEAR(f.intra_step[k], intra[k], 1e-12);
    ASSERT_NEAR(f.inter_step[k], inter[k], 1e-12);
  }
  ScoreOptions sub = full;
  sub.max_queries = 150;
  sub.seed = 3;
  const CommunityScores s = community_scores(c.features, c.nodes, E, sub);
  EXPECT_EQ(s.intra_queries, 150);
  EXPECT_EQ(s.inter_queries, 150);
  EXPECT_EQ(s.nodes, 400);
  EXPECT_TRUE(s.sampled());
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_NEAR(s.intra_step[k], intra[k], 0.1) << "k " << sub.ks[k];
    EXPECT_NEAR(s.inter_step[k], inter[k], 0.1) << "k " << sub.ks[k];
  }
  // Same seed, same sample.
  const CommunityScores s2 = community_scores(c.features, c.nodes, E, sub);
  EXPECT_EQ(s.intra_step, s2.intra_step);
  EXPECT_EQ(s.inter_step, s2.inter_step);
  // The identical embedding still scores exactly 1 when sampled.
  const CommunityScores one = community_scores(c.features, c.nodes, c.features, sub);
  EXPECT_EQ(one.intra_step[0], 1.0);
  EXPECT_EQ(one.inter_step[1], 1.0);
}

TEST(CommunityScores, MismatchedRowsThrow) {
  const ScoreCase c = score_case(2, 3, 5, 15);
  const RowMatrix short_e = random_matrix(c.shape.nodes() - 1, 2, 1);
  EXPECT_THROW(community_scores(c.features, c.nodes, short_e), Error);
  const RowMatrix short_f = random_matrix(c.shape.nodes() + 1, 2, 1);
  EXPECT_THROW(community_scores(short_f, c.nodes, c.features), Error);
  ScoreOptions bad;
  bad.ks = {0};
  EXPECT_THROW(community_scores(c.features, c.nodes, c.features, bad), Error);
}

// ---------------------------------------------------------------- knn_rows

TEST(KnnRows, MatchesKnnAllForListedRows) {
  const RowMatrix X = random_matrix(300, 3, 21);
  const std::vector<Index> rows{299, 0, 17, 5, 150, 17};
  const int k = 7;
  for (KnnMethod m : {KnnMethod::exact, KnnMethod::kdtree}) {
    KnnIndex index(X, m, 1);
    ASSERT_EQ(index.method(), m);
    const Neighbors all = index.knn_all(k);
    const Neighbors sub = index.knn_rows(rows, k);
    ASSERT_EQ(sub.n, static_cast<Index>(rows.size())) << to_string(m);
    ASSERT_EQ(sub.k, k);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      // brute force, independent of both
      std::vector<std::pair<double, int>> d;
      for (Index j = 0; j < X.rows(); ++j)
        if (j != rows[r]) d.emplace_back((X.row(rows[r]) - X.row(j)).norm(), static_cast<int>(j));
      std::sort(d.begin(), d.end());
      for (int j = 0; j < k; ++j) {
        EXPECT_EQ(sub.at(static_cast<Index>(r), j), all.at(rows[r], j)) << to_string(m) << " row " << rows[r];
        EXPECT_EQ(sub.at(static_cast<Index>(r), j), d[j].second) << to_string(m) << " row " << rows[r];
        EXPECT_NEAR(sub.dist(static_cast<Index>(r), j), d[j].first, 1e-12);
      }
    }
    // Empty list: empty result.
    const Neighbors none = index.knn_rows({}, k);
    EXPECT_EQ(none.n, 0);
  }
}
