// Tests of the frame diagnostics (entropy estimators against hand-computed values, frame
// measures on a hand-built frame, invariance, JSON), the phase detector (hand-made series and
// the real engine on synthetic traces whose phases are known) and early stopping (the Keras /
// Lightning semantics, one rule per test).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "diagnostics/frame_diagnostics.hpp"
#include "diagnostics/early_stopping.hpp"
#include "mmphate/error.hpp"
#include "engine/graph/multislice.hpp"
#include "diagnostics/phase_detector.hpp"
#include "mmphate/phate.hpp"
#include "testing/synthetic_phases.hpp"
#include "mmphate/trace.hpp"

#include "test_util.hpp"

using namespace mmphate;
using mmphate::testing::error_of;

namespace {

[[maybe_unused]] ::testing::Environment* const single_threaded =
    ::testing::AddGlobalTestEnvironment(new mmphate::testing::SingleThreaded);

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kEulerGamma = 0.57721566490153286061;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

RowMatrix rows(std::initializer_list<std::initializer_list<double>> r) {
  RowMatrix M(static_cast<Index>(r.size()), static_cast<Index>(r.begin()->size()));
  Index i = 0;
  for (const auto& row : r) {
    Index j = 0;
    for (double v : row) M(i, j++) = v;
    ++i;
  }
  return M;
}

// ------------------------------------------------------------------ estimators

TEST(KnnEntropy, HandComputedOneDimension) {
  // Points 0, 1, 3; k = 1: r = 1, 1, 2; psi(3) - psi(1) = 1 + 1/2; V_1 = 2.
  const double h = knn_entropy(rows({{0}, {1}, {3}}), 1, 1e-9);
  EXPECT_NEAR(h, 1.5 + std::log(2.0) + std::log(2.0) / 3.0, 1e-12);
}

TEST(KnnEntropy, HandComputedUnitSquareEveryK) {
  const RowMatrix sq = rows({{0, 0}, {1, 0}, {0, 1}, {1, 1}});
  const double psi4 = -kEulerGamma + 1 + 0.5 + 1.0 / 3.0;
  EXPECT_NEAR(knn_entropy(sq, 1, 1e-9), psi4 + kEulerGamma + std::log(M_PI), 1e-12);
  EXPECT_NEAR(knn_entropy(sq, 2, 1e-9), 5.0 / 6.0 + std::log(M_PI), 1e-12);
  // k = 3: the diagonal, r = sqrt(2): (2 / 4) * 4 * log sqrt(2) = log 2.
  EXPECT_NEAR(knn_entropy(sq, 3, 1e-9), 1.0 / 3.0 + std::log(M_PI) + std::log(2.0), 1e-12);
  // k above n - 1 is capped.
  EXPECT_NEAR(knn_entropy(sq, 10, 1e-9), knn_entropy(sq, 3, 1e-9), 1e-15);
}

TEST(KnnEntropy, DuplicatesUseTheDistanceFloorAndStayFinite) {
  const double h = knn_entropy(rows({{2, 2}, {2, 2}}), 3, 1e-3);
  EXPECT_NEAR(h, 1.0 + std::log(M_PI) + 2.0 * std::log(1e-3), 1e-12);
  EXPECT_TRUE(std::isnan(knn_entropy(rows({{2, 2}}), 3, 1e-3)));
}

TEST(KnnEntropy, MatchesKnownDifferentialEntropies) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  RowMatrix U(4000, 2), G(4000, 2);
  for (Index i = 0; i < 4000; ++i)
    for (Index j = 0; j < 2; ++j) {
      U(i, j) = uni(rng);
      G(i, j) = normal(rng);
    }
  EXPECT_NEAR(knn_entropy(U, 3, 1e-9), 0.0, 0.05);                                // uniform on the unit square
  EXPECT_NEAR(knn_entropy(G, 3, 1e-9), std::log(2 * M_PI * std::exp(1.0)), 0.05);  // standard normal
}

TEST(HistogramEntropy, HandComputedWithClamping) {
  // Bins of width 1 on [-1, 1)^2: (0,0), (1,0), (1,1) twice; (5, 5) is clamped into (1,1).
  const RowMatrix P = rows({{-0.5, -0.5}, {0.5, -0.5}, {0.5, 0.5}, {5, 5}});
  EXPECT_NEAR(histogram_entropy(P, 2, 1.0), 1.5 * std::log(2.0), 1e-12);
  EXPECT_NEAR(histogram_entropy(rows({{0.1, 0.1}, {0.2, 0.2}}), 2, 1.0), 0.0, 1e-15);
}

TEST(SpectralEntropy, HandComputedBlocks) {
  EXPECT_NEAR(spectral_entropy(Matrix::Identity(4, 4), 1), std::log(4.0), 1e-12);   // no edges: 4 components
  EXPECT_NEAR(spectral_entropy(Matrix::Ones(3, 3), 1), 0.0, 1e-12);                // complete: one mode
  Matrix pairs = Matrix::Zero(4, 4);
  pairs.topLeftCorner(2, 2).setOnes();
  pairs.bottomRightCorner(2, 2).setOnes();
  EXPECT_NEAR(spectral_entropy(pairs, 3), std::log(2.0), 1e-12);
  // [[1, w], [w, 1]]: eigenvalues 1 and (1 - w) / (1 + w) = 1/3 for w = 1/2.
  Matrix two(2, 2);
  two << 1, 0.5, 0.5, 1;
  EXPECT_NEAR(spectral_entropy(two, 1), -(0.75 * std::log(0.75) + 0.25 * std::log(0.25)), 1e-12);
  EXPECT_NEAR(spectral_entropy(two, 2), -(0.9 * std::log(0.9) + 0.1 * std::log(0.1)), 1e-12);
  // A row with no weight is its own component.
  Matrix iso = Matrix::Zero(2, 2);
  iso(0, 0) = 1;
  EXPECT_NEAR(spectral_entropy(iso, 1), std::log(2.0), 1e-12);
  two(0, 1) = -0.5;
  EXPECT_TRUE(contains(error_of([&] { spectral_entropy(two, 1); }), "negative"));
}

// ------------------------------------------------------------------ frame measures

// 2 epochs x 2 steps x 3 units in 2-D; unit 2 is absent everywhere.
//   epoch 0: step 0: (0,0) (1,0); step 1: (0,1) (1,1)
//   epoch 1: step 0: (0,0) (3,0); step 1: (0,2) (3,2)
// Centroid (1, 0.75); R^2 = 1.5 + 0.6875 = 2.1875.
struct HandFrame {
  TraceShape shape;
  RowMatrix Y;
  std::vector<std::int64_t> epochs{10, 12};
  HandFrame() {
    shape.epochs = 2;
    shape.steps = 2;
    shape.units = 3;
    shape.probes = 4;
    Y = RowMatrix::Constant(12, 2, kNaN);
    const double pts[8][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}, {0, 0}, {3, 0}, {0, 2}, {3, 2}};
    for (int i = 0; i < 8; ++i) {
      const Index slice = i / 2, unit = i % 2;
      Y(slice * 3 + unit, 0) = pts[i][0];
      Y(slice * 3 + unit, 1) = pts[i][1];
    }
  }
};

TEST(FrameDiagnostics, HandComputedMeasures) {
  const HandFrame f;
  DiagnosticsOptions opt;  // knn, k capped at 1 by the two points of every group
  const FrameDiagnostics d = compute_frame_diagnostics(f.Y, f.shape, f.epochs, nullptr, nullptr, opt);
  const double R2 = 2.1875, R = std::sqrt(R2);
  EXPECT_NEAR(d.frame_radius, R, 1e-12);
  EXPECT_EQ(d.present_nodes, 8);
  // Two points at distance D: psi(2) - psi(1) + log pi + 2 log(D / R).
  auto pair_h = [&](double D) { return 1.0 + std::log(M_PI) + 2.0 * std::log(D / R); };
  EXPECT_NEAR(d.intra_step_entropy_by_step(0, 0), pair_h(1), 1e-12);
  EXPECT_NEAR(d.intra_step_entropy_by_step(1, 1), pair_h(3), 1e-12);
  EXPECT_NEAR(d.intra_step_entropy[0], pair_h(1), 1e-12);
  EXPECT_NEAR(d.intra_step_entropy[1], pair_h(3), 1e-12);
  EXPECT_NEAR(d.inter_step_entropy_by_unit(0, 0), pair_h(1), 1e-12);
  EXPECT_NEAR(d.inter_step_entropy_by_unit(1, 1), pair_h(2), 1e-12);
  EXPECT_TRUE(std::isnan(d.inter_step_entropy_by_unit(1, 2)));  // absent unit
  EXPECT_NEAR(d.inter_step_entropy[1], pair_h(2), 1e-12);         // mean skips the absent unit
  // Visualisation variance: epoch 0 each point 0.5 from (0.5, 0.5); epoch 1: 3.25 from (1.5, 1).
  EXPECT_NEAR(d.visualization_variance[0], 0.5, 1e-12);
  EXPECT_NEAR(d.visualization_variance[1], 3.25, 1e-12);
  EXPECT_NEAR(d.visualization_variance_total, 3.75, 1e-12);
  EXPECT_NEAR(d.visualization_variance_relative[1], 3.25 / R2, 1e-12);
  // Unit change into epoch 1: unit 0 moves 0 and 1, unit 1 moves 2 and sqrt(5).
  EXPECT_TRUE(std::isnan(d.unit_change_by_unit(0, 0)));
  EXPECT_NEAR(d.unit_change_by_unit(1, 0), 0.5 / R, 1e-12);
  EXPECT_NEAR(d.unit_change_by_unit(1, 1), (2 + std::sqrt(5.0)) / 2 / R, 1e-12);
  ASSERT_EQ(d.top_change_units.size(), 2u);
  EXPECT_EQ(d.top_change_units[0].unit, 1);
  EXPECT_EQ(d.top_change_units[1].unit, 0);
  ASSERT_EQ(d.top_entropy_units.size(), 2u);
  EXPECT_EQ(d.top_entropy_units[0].unit, 0);  // tie: lower index first
  // The absent unit is reported, not silently NaN.
  EXPECT_FALSE(d.warnings.empty());
  const auto q = d.quantities();
  EXPECT_NEAR(q.at("intra_step_entropy"), pair_h(3), 1e-12);
  EXPECT_EQ(q.count("spectral_intra_step_entropy"), 0u);  // no kernel: absent, not NaN
}

TEST(FrameDiagnostics, HistogramOnHandFrame) {
  const HandFrame f;
  DiagnosticsOptions opt;
  opt.estimator = EntropyEstimator::histogram;
  opt.histogram_bins = 64;  // fine enough that distinct points never share a bin here
  const FrameDiagnostics d = compute_frame_diagnostics(f.Y, f.shape, f.epochs, nullptr, nullptr, opt);
  EXPECT_NEAR(d.intra_step_entropy_by_step(0, 0), std::log(2.0), 1e-12);
  EXPECT_NEAR(d.inter_step_entropy[1], std::log(2.0), 1e-12);
  opt.histogram_bins = 1;  // one bin: no spread at all
  EXPECT_NEAR(compute_frame_diagnostics(f.Y, f.shape, f.epochs, nullptr, nullptr, opt).intra_step_entropy[1], 0.0,
              1e-15);
}

TEST(FrameDiagnostics, SpectralEntropiesOfKernelBlocks) {
  const HandFrame f;
  // Graph without the absent unit 2; identity kernel plus a unit edge inside slice 0 and a
  // unit edge between the two steps of (epoch 1, unit 1).
  NodeIndex g;
  g.shape = f.shape;
  g.row_of.assign(12, -1);
  for (Index id = 0; id < 12; ++id)
    if (id % 3 != 2) {
      g.row_of[id] = g.size();
      g.full_id.push_back(id);
    }
  std::vector<Triplet> t;
  for (Index r = 0; r < g.size(); ++r) t.emplace_back(r, r, 1.0);
  auto edge = [&](Index a, Index b) {
    t.emplace_back(a, b, 1.0);
    t.emplace_back(b, a, 1.0);
  };
  edge(g.row(0, 0), g.row(0, 1));
  edge(g.row(2, 1), g.row(3, 1));
  SparseMatrix K(g.size(), g.size());
  K.setFromTriplets(t.begin(), t.end());
  DiagnosticsOptions opt;
  opt.spectral_t = 1;
  opt.spectral_epochs = 0;  // every epoch
  const FrameDiagnostics d = compute_frame_diagnostics(f.Y, f.shape, f.epochs, &K, &g, opt);
  EXPECT_NEAR(d.spectral_intra_step_entropy_by_step(0, 0), 0.0, 1e-12);  // [[1,1],[1,1]]
  EXPECT_NEAR(d.spectral_intra_step_entropy_by_step(0, 1), std::log(2.0), 1e-12);
  EXPECT_NEAR(d.spectral_inter_step_entropy_by_unit(1, 1), 0.0, 1e-12);
  EXPECT_NEAR(d.spectral_inter_step_entropy_by_unit(1, 0), std::log(2.0), 1e-12);
  EXPECT_TRUE(std::isnan(d.spectral_inter_step_entropy_by_unit(1, 2)));
  EXPECT_NEAR(d.spectral_intra_step_entropy[0], 0.5 * std::log(2.0), 1e-12);
  // Only the newest epoch when asked.
  opt.spectral_epochs = 1;
  const FrameDiagnostics n = compute_frame_diagnostics(f.Y, f.shape, f.epochs, &K, &g, opt);
  EXPECT_TRUE(std::isnan(n.spectral_intra_step_entropy[0]));
  EXPECT_NEAR(n.spectral_inter_step_entropy[1], 0.5 * std::log(2.0), 1e-12);
  // A kernel without its node index, or of the wrong size, is an error.
  EXPECT_TRUE(contains(error_of([&] { compute_frame_diagnostics(f.Y, f.shape, f.epochs, &K, nullptr, opt); }),
                       "node index"));
  SparseMatrix small(3, 3);
  EXPECT_TRUE(contains(error_of([&] { compute_frame_diagnostics(f.Y, f.shape, f.epochs, &small, &g, opt); }),
                       "kernel is 3 x 3"));
}

TEST(FrameDiagnostics, EmbeddingEntropiesIgnoreScaleRotationAndTranslation) {
  const TraceShape s{3, 4, 6};  // epochs, steps, units
  const RowMatrix Y = mmphate::testing::random_matrix(s.nodes(), 2, 5);
  const double a = 0.7;
  Matrix Rot(2, 2);
  Rot << std::cos(a), -std::sin(a), std::sin(a), std::cos(a);
  RowMatrix Y2 = (Y * Rot.transpose()) * 37.5;
  Y2.col(0).array() += 4.0;
  const std::vector<std::int64_t> ep{0, 1, 2};
  for (auto est : {EntropyEstimator::knn, EntropyEstimator::histogram}) {
    DiagnosticsOptions opt;
    opt.estimator = est;
    const auto d1 = compute_frame_diagnostics(Y, s, ep, nullptr, nullptr, opt);
    const auto d2 = compute_frame_diagnostics(Y2, s, ep, nullptr, nullptr, opt);
    for (Index e = 0; e < 3; ++e) {
      EXPECT_NEAR(d1.intra_step_entropy[e], d2.intra_step_entropy[e], 1e-9) << to_string(est);
      EXPECT_NEAR(d1.inter_step_entropy[e], d2.inter_step_entropy[e], 1e-9) << to_string(est);
      EXPECT_NEAR(d1.visualization_variance_relative[e], d2.visualization_variance_relative[e], 1e-9);
      EXPECT_NEAR(d2.visualization_variance[e], 37.5 * 37.5 * d1.visualization_variance[e], 1e-6);
    }
  }
}

TEST(FrameDiagnostics, ThreadCountDoesNotChangeResults) {
  const TraceShape s{4, 10, 7};  // epochs, steps, units
  const RowMatrix Y = mmphate::testing::random_matrix(s.nodes(), 3, 9);
  DiagnosticsOptions one, two;
  two.threads = 2;
  const std::vector<std::int64_t> ep{0, 1, 2, 3};
  const auto a = compute_frame_diagnostics(Y, s, ep, nullptr, nullptr, one);
  const auto b = compute_frame_diagnostics(Y, s, ep, nullptr, nullptr, two);
  EXPECT_EQ(a.intra_step_entropy, b.intra_step_entropy);
  EXPECT_EQ(a.inter_step_entropy, b.inter_step_entropy);
}

TEST(FrameDiagnostics, BadInputIsAClearError) {
  const HandFrame f;
  DiagnosticsOptions opt;
  RowMatrix Y = f.Y;
  Y(0, 1) = kNaN;  // half a row
  EXPECT_TRUE(contains(error_of([&] { compute_frame_diagnostics(Y, f.shape, f.epochs, nullptr, nullptr, opt); }),
                       "row 0 (epoch position 0, step 0, unit 0) mixes NaN/Inf"));
  Y = f.Y;
  Y(4, 0) = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(contains(error_of([&] { compute_frame_diagnostics(Y, f.shape, f.epochs, nullptr, nullptr, opt); }),
                       "row 4"));
  EXPECT_TRUE(contains(error_of([&] {
                         compute_frame_diagnostics(f.Y.topRows(6), f.shape, f.epochs, nullptr, nullptr, opt);
                       }),
                       "6 rows for 12 grid nodes"));
  EXPECT_TRUE(contains(error_of([&] { compute_frame_diagnostics(f.Y, f.shape, {12, 10}, nullptr, nullptr, opt); }),
                       "strictly increasing"));
  EXPECT_TRUE(contains(error_of([&] { compute_frame_diagnostics(f.Y, f.shape, {1}, nullptr, nullptr, opt); }),
                       "1 epoch labels for 2"));
}

TEST(FrameDiagnostics, DegenerateFramesGiveNullsWithReasons) {
  const HandFrame f;
  RowMatrix Y = f.Y;
  for (Index i = 0; i < Y.rows(); ++i)
    if (Y.row(i).allFinite()) Y.row(i) << 1.0, 2.0;  // every node at one point
  const auto d = compute_frame_diagnostics(Y, f.shape, f.epochs, nullptr, nullptr, DiagnosticsOptions{});
  EXPECT_TRUE(std::isnan(d.intra_step_entropy[0]));
  EXPECT_FALSE(d.warnings.empty());
  const nlohmann::json j = d.to_json();
  EXPECT_TRUE(j["per_epoch"]["intra_step_entropy"][0].is_null());
  EXPECT_EQ(j["per_epoch"]["visualization_variance"][0], 0.0);
  EXPECT_EQ(d.quantities().count("intra_step_entropy"), 0u);
  // No node at all: nothing to measure, still no NaN in JSON.
  const RowMatrix none = RowMatrix::Constant(12, 2, kNaN);
  const auto e = compute_frame_diagnostics(none, f.shape, f.epochs, nullptr, nullptr, DiagnosticsOptions{});
  EXPECT_EQ(e.present_nodes, 0);
  EXPECT_NO_THROW((void)e.to_json().dump());
}

TEST(FrameDiagnostics, JsonIsCompactAtMonitorScale) {
  const TraceShape s{64, 100, 20};  // epochs, steps, units
  const RowMatrix Y = mmphate::testing::random_matrix(s.nodes(), 2, 1);
  std::vector<std::int64_t> ep;
  for (int e = 0; e < 64; ++e) ep.push_back(2 * e);
  DiagnosticsOptions opt;
  const auto d = compute_frame_diagnostics(Y, s, ep, nullptr, nullptr, opt);
  const nlohmann::json j = d.to_json();
  const std::string text = j.dump();
  EXPECT_LT(text.size(), 100u * 1024u);
  EXPECT_EQ(j["per_epoch"]["intra_step_entropy"].size(), 64u);
  EXPECT_EQ(j["newest"]["epoch"], 126);
  EXPECT_EQ(j["newest"]["intra_step_entropy_by_step"].size(), 100u);
  EXPECT_EQ(j["newest"]["inter_step_entropy_by_unit"].size(), 20u);
  EXPECT_EQ(j["newest"]["top_change_units"].size(), 5u);
  EXPECT_FALSE(j.contains("matrices"));
  EXPECT_EQ(text.find("nan"), std::string::npos);
  opt.all_matrices = true;
  const nlohmann::json full = compute_frame_diagnostics(Y, s, ep, nullptr, nullptr, opt).to_json();
  EXPECT_EQ(full["matrices"]["intra_step_entropy_by_step"].size(), 64u);
  EXPECT_EQ(full["matrices"]["intra_step_entropy_by_step"][0].size(), 100u);
}

TEST(DiagnosticsOptions, JsonRoundTripAndClearErrors) {
  DiagnosticsOptions o;
  apply_diagnostics_json(o, {{"estimator", "histogram"}, {"histogram_bins", 12}, {"spectral_epochs", 4}}, "cfg.json");
  EXPECT_EQ(o.estimator, EntropyEstimator::histogram);
  EXPECT_EQ(o.histogram_bins, 12);
  DiagnosticsOptions back;
  apply_diagnostics_json(back, to_json(o), "roundtrip");
  EXPECT_EQ(to_json(back), to_json(o));

  std::string e = error_of([&] { apply_diagnostics_json(o, {{"bins", 3}}, "cfg.json"); });
  EXPECT_TRUE(contains(e, "cfg.json: unknown key 'bins'")) << e;
  EXPECT_TRUE(contains(e, "histogram_bins")) << e;
  e = error_of([&] { apply_diagnostics_json(o, {{"estimator", "kde"}}, "cfg.json"); });
  EXPECT_TRUE(contains(e, "estimator = 'kde'") && contains(e, "knn | histogram")) << e;
  e = error_of([&] { apply_diagnostics_json(o, {{"knn_k", 0}}, "cfg.json"); });
  EXPECT_TRUE(contains(e, "knn_k = 0") && contains(e, ">= 1")) << e;
  e = error_of([&] { apply_diagnostics_json(o, {{"spectral", "yes"}}, "cfg.json"); });
  EXPECT_TRUE(contains(e, "'spectral'") && contains(e, "true or false")) << e;
  EXPECT_EQ(o.histogram_bins, 12);  // a failed apply leaves the options unchanged
}

// ------------------------------------------------------------------ phase detector

std::vector<std::int64_t> iota_epochs(std::size_t n) {
  std::vector<std::int64_t> e(n);
  for (std::size_t i = 0; i < n; ++i) e[i] = static_cast<std::int64_t>(i);
  return e;
}

std::vector<PhaseChange> changes_of(const std::vector<PhaseUpdate>& ups) {
  std::vector<PhaseChange> c;
  for (const auto& u : ups)
    if (u.change) c.push_back(*u.change);
  return c;
}

TEST(PhaseDetector, RiseThenFallOnAnExactSeries) {
  std::vector<double> v;
  for (int e = 0; e <= 10; ++e) v.push_back(1.0 + 0.1 * e);
  for (int e = 11; e <= 24; ++e) v.push_back(2.0 - 0.1 * (e - 10));
  PhaseDetectorOptions o;  // window 6, patience 2
  const auto c = changes_of(label_phases(iota_epochs(v.size()), v, o));
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].from, Phase::unknown);
  EXPECT_EQ(c[0].to, Phase::information_processing);
  EXPECT_EQ(c[0].onset_epoch, 5);  // first full window
  EXPECT_EQ(c[0].epoch, 6);        // patience 2
  EXPECT_NEAR(c[0].slope, 0.1, 1e-12);
  // The windows straddling the peak (epoch 10) fit no clear slope: a stable plateau...
  EXPECT_EQ(c[1].to, Phase::stable);
  EXPECT_EQ(c[1].onset_epoch, 12);
  EXPECT_EQ(c[1].epoch, 13);
  // ... then compression once the window's slope is clearly negative (t = -4.33 at epoch 14).
  EXPECT_EQ(c[2].from, Phase::stable);
  EXPECT_EQ(c[2].to, Phase::compression);
  EXPECT_EQ(c[2].onset_epoch, 14);
  EXPECT_EQ(c[2].epoch, 15);
  EXPECT_NEAR(c[2].slope, -0.1, 1e-12);
}

TEST(PhaseDetector, NoiseAroundAConstantNeverFlips) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0.0, 0.01);
  std::vector<double> v;
  for (int e = 0; e < 200; ++e) v.push_back(2.0 + noise(rng));
  const auto ups = label_phases(iota_epochs(v.size()), v, PhaseDetectorOptions{});
  for (const auto& c : changes_of(ups)) {
    EXPECT_EQ(c.to, Phase::stable) << "epoch " << c.epoch;
  }
  EXPECT_EQ(ups.back().phase, Phase::stable);
}

TEST(PhaseDetector, MissingValuesAndOldEpochsChangeNothing) {
  PhaseDetector det;
  for (int e = 0; e < 8; ++e) det.update(e, 1.0 + e);
  EXPECT_EQ(det.phase(), Phase::information_processing);
  const PhaseUpdate nan = det.update(8, kNaN);
  EXPECT_FALSE(nan.used);
  EXPECT_FALSE(nan.change.has_value());
  EXPECT_FALSE(det.update(7, -100.0).used);  // not newer
  EXPECT_EQ(det.phase(), Phase::information_processing);
  EXPECT_EQ(det.changes().size(), 1u);
}

TEST(PhaseDetector, PatienceDelaysTheChange) {
  PhaseDetectorOptions o;
  o.window = 3;
  o.patience = 3;
  o.min_relative_delta = 0;
  const std::vector<double> v{1, 2, 3, 4, 5, 6};
  const auto ups = label_phases(iota_epochs(v.size()), v, o);
  EXPECT_EQ(ups[3].phase, Phase::unknown);
  EXPECT_EQ(ups[4].phase, Phase::information_processing);
  ASSERT_TRUE(ups[4].change.has_value());
  EXPECT_EQ(ups[4].change->onset_epoch, 2);
  EXPECT_EQ(ups[4].change->to_json()["to"], "information_processing");
}

TEST(PhaseDetectorOptions, JsonErrors) {
  PhaseDetectorOptions o;
  apply_phase_detector_json(o, {{"quantity", "spectral_inter_step_entropy"}, {"window", 8}}, "monitor.json");
  EXPECT_EQ(o.window, 8);
  EXPECT_EQ(o.quantity, "spectral_inter_step_entropy");
  std::string e = error_of([&] { apply_phase_detector_json(o, {{"windows", 8}}, "monitor.json"); });
  EXPECT_TRUE(contains(e, "unknown key 'windows'") && contains(e, "min_relative_delta")) << e;
  e = error_of([&] { apply_phase_detector_json(o, {{"window", 2}}, "monitor.json"); });
  EXPECT_TRUE(contains(e, "window = 2") && contains(e, "[3, 10000]")) << e;
  PhaseDetectorOptions back;
  apply_phase_detector_json(back, to_json(o), "roundtrip");
  EXPECT_EQ(to_json(back), to_json(o));
}

// ------------------------------------------------------------------ synthetic phases, real engine

struct EngineFrame {
  FrameDiagnostics diag;
  std::vector<std::int64_t> epochs;
};

// Runs the scalable engine on a synthetic trace and computes the frame's diagnostics.
EngineFrame embed_and_diagnose(const std::vector<double>& diversity, std::uint64_t seed) {
  const TraceShape s{static_cast<Index>(diversity.size()), 5, 9, 20};  // epochs, steps, units, probes
  const RowMatrix raw = make_phase_trace(s, diversity, 3, 0.3, seed);
  Options opt = Options::mmphate_scalable();
  const PreparedTrace pt = prepare_trace(raw, s, opt);
  const SparseMatrix K = multislice_kernel(pt.features, pt.index, opt);
  const EmbedResult r = embed_kernel(K, opt);
  RowMatrix grid = RowMatrix::Constant(s.nodes(), r.embedding.cols(), kNaN);
  for (Index i = 0; i < pt.index.size(); ++i) grid.row(pt.index.full_id[i]) = r.embedding.row(i);
  EngineFrame f;
  f.epochs = iota_epochs(diversity.size());
  DiagnosticsOptions dopt;
  dopt.spectral_epochs = 0;  // the whole curve, to label it
  f.diag = compute_frame_diagnostics(grid, s, f.epochs, &K, &pt.index, dopt, &pt.features);
  return f;
}

const std::vector<double>& series(const FrameDiagnostics& d, const std::string& q) {
  if (q == "intra_step_entropy") return d.intra_step_entropy;
  if (q == "inter_step_entropy") return d.inter_step_entropy;
  return d.spectral_inter_step_entropy;
}

TEST(SyntheticPhases, GeneratorsAreValidated) {
  const TraceShape s{4, 2, 3, 5};  // epochs, steps, units, probes
  EXPECT_EQ(make_phase_trace(s, constant_diversity(4, 1.0), 2, 0.1, 1).rows(), 24);
  EXPECT_TRUE(contains(error_of([&] { make_phase_trace(s, constant_diversity(3, 1.0), 2, 0.1, 1); }), "3 diversity"));
  EXPECT_TRUE(contains(error_of([&] { rise_then_collapse(10, 9, 0.1, 1.0); }), "peak_epoch"));
  const auto a = rise_then_collapse(5, 2, 0.0, 1.0);
  EXPECT_DOUBLE_EQ(a[2], 1.0);
  EXPECT_DOUBLE_EQ(a[4], 0.0);
}

TEST(SyntheticPhases, RiseThenCollapseIsLabelledProcessingThenCompression) {
  const Index peak = 11;
  const EngineFrame f = embed_and_diagnose(rise_then_collapse(24, peak, 0.1, 1.0), 5);
  for (const std::string q : {"intra_step_entropy", "spectral_inter_step_entropy"}) {
    const auto ups = label_phases(f.epochs, series(f.diag, q), PhaseDetectorOptions{});
    const auto c = changes_of(ups);
    std::string trace;
    for (const auto& ch : c) trace += std::to_string(ch.epoch) + ":" + to_string(ch.to) + " ";
    // Processing is found before the peak; compression after it, and nothing rises afterwards.
    std::int64_t processing = -1, compression = -1;
    for (const auto& ch : c) {
      if (ch.to == Phase::information_processing && processing < 0) processing = ch.epoch;
      if (ch.to == Phase::compression && compression < 0) compression = ch.epoch;
    }
    EXPECT_GE(processing, 0) << q << ": " << trace;
    EXPECT_LE(processing, peak) << q << ": " << trace;
    EXPECT_GT(compression, peak) << q << ": " << trace;
    for (const auto& ch : c) {
      if (ch.epoch > compression) EXPECT_NE(ch.to, Phase::information_processing) << q << ": " << trace;
    }
  }
  // The newest epoch's scalars feed the detector and early stopping.
  const auto q = f.diag.quantities();
  for (const char* name : {"intra_step_entropy", "inter_step_entropy", "spectral_intra_step_entropy",
                           "spectral_inter_step_entropy", "visualization_variance", "intra_step_score"})
    EXPECT_EQ(q.count(name), 1u) << name;
  ASSERT_TRUE(f.diag.scores.has_value());
  EXPECT_EQ(f.diag.score_epochs, 8);                          // newest 8 of 24 epochs
  EXPECT_EQ(f.diag.scores->nodes, 8 * 5 * 9);
  EXPECT_GT(f.diag.scores->inter_step[0], 0.2);               // chance: 10 / 39
  EXPECT_EQ(f.diag.to_json()["scores"]["epochs"], 8);
}

TEST(SyntheticPhases, ConstantDiversityHasNoPhaseChange) {
  const EngineFrame f = embed_and_diagnose(constant_diversity(24, 0.6), 5);
  for (const std::string q : {"intra_step_entropy", "spectral_inter_step_entropy"}) {
    const auto c = changes_of(label_phases(f.epochs, series(f.diag, q), PhaseDetectorOptions{}));
    for (const auto& ch : c) {
      EXPECT_EQ(ch.to, Phase::stable) << q << " epoch " << ch.epoch;
    }
  }
}

// ------------------------------------------------------------------ early stopping

EarlyStoppingOptions es(const std::string& mode = "min") {
  EarlyStoppingOptions o;
  o.enabled = true;
  o.monitor = "val_loss";
  o.mode = mode == "min" ? StopMode::min : StopMode::max;
  return o;
}

// Feeds values at epochs 0, 1, ...; returns the epoch of the stop or -1.
std::int64_t run(EarlyStopping& s, const std::vector<double>& values) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (s.check(static_cast<std::int64_t>(i), {{"val_loss", values[i]}}).stop) return static_cast<std::int64_t>(i);
  return -1;
}

TEST(EarlyStopping, PatienceCountsChecksWithoutImprovement) {
  auto o = es();
  o.patience = 3;
  EarlyStopping s(o);
  EXPECT_EQ(run(s, {1.0, 0.9, 0.95, 0.96, 0.97, 0.5}), 4);
  EXPECT_TRUE(s.should_stop());
  EXPECT_EQ(s.best_epoch(), 1);
  EXPECT_DOUBLE_EQ(s.best(), 0.9);
  EXPECT_EQ(s.stop_decision().wait, 3);
  EXPECT_TRUE(contains(s.stop_decision().reason, "did not improve")) << s.stop_decision().reason;
  // Once stopped, the decision stays.
  EXPECT_TRUE(s.check(9, {{"val_loss", 0.1}}).stop);
  EXPECT_EQ(s.check(9, {{"val_loss", 0.1}}).epoch, 4);
}

// The monitor checks an epoch's metrics at epoch end and again with its frame: each epoch
// must count once (patience 3 used to stop after one epoch without improvement).
TEST(EarlyStopping, EachEpochCountsOnce) {
  auto o = es();
  o.patience = 3;
  EarlyStopping s(o);
  const std::vector<double> values = {1.0, 0.9, 0.95, 0.96, 0.97};
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto e = static_cast<std::int64_t>(i);
    const StopDecision first = s.check(e, {{"val_loss", values[i]}});
    const StopDecision again = s.check(e, {{"val_loss", values[i]}, {"entropy", 1.0}});
    if (!first.stop) EXPECT_FALSE(again.checked) << "epoch " << e;  // (once stopped, the stop decision stays)
    EXPECT_EQ(again.wait, first.wait) << "epoch " << e;
    EXPECT_EQ(first.stop, e == 4) << "epoch " << e;
  }
  // An older epoch arriving late (a coalesced frame) does not count either.
  EarlyStopping t(o);
  t.check(5, {{"val_loss", 1.0}});
  EXPECT_FALSE(t.check(3, {{"val_loss", 2.0}}).checked);
  EXPECT_EQ(t.wait(), 0);
}

TEST(EarlyStopping, PatienceZeroStopsOnFirstNonImprovement) {
  auto o = es();
  o.patience = 0;
  EarlyStopping s(o);
  EXPECT_EQ(run(s, {1.0, 0.9, 0.9}), 2);
}

TEST(EarlyStopping, MinDeltaDecidesWhatCountsAsImprovement) {
  auto o = es();
  o.patience = 2;
  o.min_delta = 0.1;
  EarlyStopping s(o);
  EXPECT_EQ(run(s, {1.0, 0.95, 0.92, 0.5}), 2);  // 0.95 and 0.92 are not better than 1.0 - 0.1
  EXPECT_DOUBLE_EQ(s.best(), 1.0);
  auto o2 = o;
  EarlyStopping t(o2);
  EXPECT_EQ(run(t, {1.0, 0.85, 0.8, 0.7, 0.65, 0.64}), 5);  // 0.85 improves; 0.8 not; 0.7 does; 0.65, 0.64 not
}

TEST(EarlyStopping, MaxModeFollowsIncreasingQuantities) {
  auto o = es("max");
  o.patience = 2;
  EarlyStopping s(o);
  EXPECT_EQ(run(s, {0.5, 0.6, 0.55, 0.58, 0.7}), 3);
  EXPECT_DOUBLE_EQ(s.best(), 0.6);
}

TEST(EarlyStopping, BaselineMustBeBeatenToResetTheWait) {
  auto o = es();
  o.patience = 2;
  o.baseline = 0.5;
  EarlyStopping s(o);
  // Improving but above the baseline: the wait keeps growing (Keras), and the first
  // non-improvement stops.
  EXPECT_EQ(run(s, {0.8, 0.7, 0.6, 0.65}), 3);
  EXPECT_TRUE(contains(s.stop_decision().reason, "baseline")) << s.stop_decision().reason;
  EarlyStopping t(o);
  EXPECT_EQ(run(t, {0.8, 0.4, 0.45, 0.46, 0.47}), 3);  // 0.4 beats the baseline: the wait restarts
}

TEST(EarlyStopping, StoppingThresholdStopsAtOnce) {
  auto o = es();
  o.stopping_threshold = 0.1;
  EarlyStopping s(o);
  EXPECT_EQ(run(s, {0.5, 0.3, 0.05}), 2);
  EXPECT_TRUE(contains(s.stop_decision().reason, "stopping threshold reached")) << s.stop_decision().reason;
}

TEST(EarlyStopping, DivergenceThresholdStopsAtOnce) {
  auto o = es();
  o.divergence_threshold = 5.0;
  EarlyStopping s(o);
  EXPECT_EQ(run(s, {1.0, 6.0}), 1);
  EXPECT_TRUE(contains(s.stop_decision().reason, "divergence")) << s.stop_decision().reason;
  auto m = es("max");
  m.divergence_threshold = 0.2;
  EarlyStopping t(m);
  EXPECT_EQ(run(t, {0.5, 0.3, 0.1}), 2);
}

TEST(EarlyStopping, NonFiniteValuesStopOnlyWithCheckFinite) {
  EarlyStopping s(es());
  EXPECT_EQ(run(s, {1.0, kNaN}), 1);
  EXPECT_TRUE(contains(s.stop_decision().reason, "not finite"));
  auto o = es();
  o.check_finite = false;
  o.patience = 2;
  EarlyStopping t(o);
  EXPECT_EQ(run(t, {1.0, kNaN, std::numeric_limits<double>::infinity()}), 2);  // counted as no improvement
  EXPECT_TRUE(contains(t.stop_decision().reason, "did not improve"));
}

TEST(EarlyStopping, StartFromEpochIgnoresEarlierChecks) {
  auto o = es();
  o.patience = 1;
  o.start_from_epoch = 3;
  EarlyStopping s(o);
  const auto d = s.check(0, {{"val_loss", kNaN}});
  EXPECT_FALSE(d.checked);
  EXPECT_EQ(d.reason, "before start_from_epoch");
  EXPECT_EQ(run(s, {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}), 4);  // best starts at epoch 3
  EXPECT_EQ(s.best_epoch(), 3);
}

TEST(EarlyStopping, MissingQuantityIsNoCheckNeverAStop) {
  auto o = es();
  o.patience = 0;
  EarlyStopping s(o);
  s.check(0, {{"val_loss", 1.0}});
  for (int e = 1; e < 100; ++e) {
    const auto d = s.check(e, {{"intra_step_entropy", 2.0}});  // a frame without the monitor
    EXPECT_FALSE(d.checked);
    EXPECT_FALSE(d.stop);
    EXPECT_EQ(d.reason, "missing");
  }
  EXPECT_FALSE(s.should_stop());
  EXPECT_EQ(s.wait(), 0);
  EXPECT_TRUE(s.check(100, {{"val_loss", 1.5}}).stop);
}

TEST(EarlyStopping, DisabledNeverStops) {
  EarlyStopping s{EarlyStoppingOptions{}};
  EXPECT_EQ(run(s, {1.0, kNaN, 2.0, 3.0, 4.0, 5.0}), -1);
}

TEST(EarlyStoppingOptions, JsonParsingAndErrors) {
  EarlyStoppingOptions o;
  apply_early_stopping_json(o,
                            {{"enabled", true},
                             {"monitor", "intra_step_entropy"},
                             {"mode", "max"},
                             {"patience", 5},
                             {"baseline", nullptr},
                             {"stopping_threshold", 3.5}},
                            "run.json");
  EXPECT_TRUE(o.enabled);
  EXPECT_EQ(o.mode, StopMode::max);
  EXPECT_TRUE(std::isnan(o.baseline));
  EXPECT_DOUBLE_EQ(o.stopping_threshold, 3.5);
  EarlyStoppingOptions back;
  apply_early_stopping_json(back, to_json(o), "roundtrip");
  EXPECT_EQ(to_json(back), to_json(o));
  std::string e = error_of([&] { apply_early_stopping_json(o, {{"mode", "auto"}}, "run.json"); });
  EXPECT_TRUE(contains(e, "'mode'") && contains(e, "min | max")) << e;
  e = error_of([&] { apply_early_stopping_json(o, {{"restore_best_weights", true}}, "run.json"); });
  EXPECT_TRUE(contains(e, "unknown key 'restore_best_weights'") && contains(e, "divergence_threshold")) << e;
  e = error_of([&] { apply_early_stopping_json(o, {{"min_delta", -1}}, "run.json"); });
  EXPECT_TRUE(contains(e, "min_delta = -1") && contains(e, ">= 0")) << e;
  e = error_of([&] { apply_early_stopping_json(o, {{"patience", "3"}}, "run.json"); });
  EXPECT_TRUE(contains(e, "'patience'") && contains(e, "integer")) << e;
  const auto d = EarlyStopping(o).check(0, {{"intra_step_entropy", 4.0}});
  EXPECT_TRUE(d.stop);
  EXPECT_EQ(d.to_json()["monitor"], "intra_step_entropy");
  EXPECT_TRUE(d.to_json()["best"].is_null() || d.to_json()["best"].is_number());
}

}  // namespace
