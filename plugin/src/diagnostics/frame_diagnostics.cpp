#include "diagnostics/frame_diagnostics.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <sstream>

#include "util/config_json.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "util/parallel.hpp"

namespace mmphate {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Digamma at a positive integer: -gamma + sum_{j < n} 1/j.
double digamma_int(Index n) {
  double s = -0.57721566490153286061;
  for (Index j = 1; j < n; ++j) s += 1.0 / static_cast<double>(j);
  return s;
}

double mean_finite(const double* v, Index n) {
  double s = 0.0;
  Index c = 0;
  for (Index i = 0; i < n; ++i)
    if (std::isfinite(v[i])) {
      s += v[i];
      ++c;
    }
  return c > 0 ? s / static_cast<double>(c) : kNaN;
}

std::vector<double> row_means(const RowMatrix& M) {
  std::vector<double> out(static_cast<std::size_t>(M.rows()));
  for (Index r = 0; r < M.rows(); ++r) out[r] = mean_finite(M.row(r).data(), M.cols());
  return out;
}

Index count_nonfinite(const RowMatrix& M, Index first_row = 0) {
  Index c = 0;
  for (Index r = first_row; r < M.rows(); ++r)
    for (Index j = 0; j < M.cols(); ++j) c += std::isfinite(M(r, j)) ? 0 : 1;
  return c;
}

nlohmann::json num(double v, int digits) { return detail::number_or_null(detail::round_significant(v, digits)); }

nlohmann::json array(const std::vector<double>& v, int digits) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(num(x, digits));
  return a;
}

nlohmann::json row_array(const RowMatrix& M, Index r, int digits) {
  nlohmann::json a = nlohmann::json::array();
  if (r < 0 || r >= M.rows()) return a;
  for (Index j = 0; j < M.cols(); ++j) a.push_back(num(M(r, j), digits));
  return a;
}

nlohmann::json matrix(const RowMatrix& M, int digits) {
  nlohmann::json a = nlohmann::json::array();
  for (Index r = 0; r < M.rows(); ++r) a.push_back(row_array(M, r, digits));
  return a;
}

nlohmann::json ranked(const std::vector<RankedUnit>& v, int digits) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : v) a.push_back({{"unit", r.unit}, {"value", num(r.value, digits)}});
  return a;
}

// Finite entries of one row, best (largest) first, ties by lower index.
std::vector<RankedUnit> top_of_row(const RowMatrix& M, Index r, int count) {
  std::vector<RankedUnit> all;
  if (r < 0 || r >= M.rows()) return all;
  for (Index u = 0; u < M.cols(); ++u)
    if (std::isfinite(M(r, u))) all.push_back({u, M(r, u)});
  std::stable_sort(all.begin(), all.end(), [](const RankedUnit& a, const RankedUnit& b) { return a.value > b.value; });
  if (static_cast<int>(all.size()) > count) all.resize(static_cast<std::size_t>(count));
  return all;
}

// Dense symmetric block of K on the (ascending) graph rows `rows`.
Matrix kernel_block(const SparseMatrix& K, const std::vector<Index>& rows) {
  const Index m = static_cast<Index>(rows.size());
  Matrix B = Matrix::Zero(m, m);
  for (Index a = 0; a < m; ++a)
    for (SparseMatrix::InnerIterator it(K, rows[a]); it; ++it) {
      const auto pos = std::lower_bound(rows.begin(), rows.end(), static_cast<Index>(it.col()));
      if (pos != rows.end() && *pos == it.col()) B(a, pos - rows.begin()) = it.value();
    }
  return B;
}

// Coordinates / frame radius, rotated to the frame's principal axes when `rotate` (the
// histogram's grid is then the same whatever rotation the embedding came with).
RowMatrix normalised_coords(const RowMatrix& Y, const std::vector<char>& present, const Eigen::RowVectorXd& centre,
                            double radius, bool rotate) {
  RowMatrix Z = RowMatrix::Constant(Y.rows(), Y.cols(), kNaN);
  for (Index i = 0; i < Y.rows(); ++i)
    if (present[i]) Z.row(i) = (Y.row(i) - centre) / radius;
  if (!rotate) return Z;
  Matrix C = Matrix::Zero(Y.cols(), Y.cols());
  for (Index i = 0; i < Y.rows(); ++i)
    if (present[i]) C.noalias() += Z.row(i).transpose() * Z.row(i);
  Eigen::SelfAdjointEigenSolver<Matrix> es(C);
  const Matrix V = es.eigenvectors().rowwise().reverse();  // largest variance first
  for (Index i = 0; i < Y.rows(); ++i)
    if (present[i]) Z.row(i) = Z.row(i) * V;
  return Z;
}

RowMatrix gather_rows(const RowMatrix& Z, const std::vector<Index>& rows) {
  RowMatrix P(static_cast<Index>(rows.size()), Z.cols());
  for (std::size_t i = 0; i < rows.size(); ++i) P.row(static_cast<Index>(i)) = Z.row(rows[i]);
  return P;
}

}  // namespace

// ---------------------------------------------------------------- options

const char* to_string(EntropyEstimator e) { return e == EntropyEstimator::knn ? "knn" : "histogram"; }

EntropyEstimator parse_entropy_estimator(const std::string& text) {
  if (text == "knn") return EntropyEstimator::knn;
  if (text == "histogram") return EntropyEstimator::histogram;
  throw Error("invalid diagnostics option estimator = '" + text + "': allowed knn | histogram");
}

namespace detail {

const KeyTable<DiagnosticsOptions>& diagnostics_keys() {
  using O = DiagnosticsOptions;
  static const KeyTable<O>& table = *new KeyTable<O>(KeyTable<O>("diagnostics option")
      .choice("estimator", &O::estimator, {{"knn", EntropyEstimator::knn}, {"histogram", EntropyEstimator::histogram}},
              "knn | histogram")
      .value("knn_k", &O::knn_k, at_least(1), "integers >= 1")
      .value("knn_min_distance", &O::knn_min_distance, finite_above(0), "finite values > 0")
      .value("histogram_bins", &O::histogram_bins, between(1, 1024), "integers in [1, 1024]")
      .value("histogram_range", &O::histogram_range, finite_above(0), "finite values > 0")
      .value("spectral", &O::spectral)
      .value("spectral_t", &O::spectral_t, between(1, 1000), "integers in [1, 1000]")
      .value("spectral_epochs", &O::spectral_epochs, at_least(0), "integers >= 0 (0: every epoch)")
      .value("top_units", &O::top_units, at_least(0), "integers >= 0")
      .value("score_k", &O::score_k, at_least(1), "integers >= 1")
      .value("score_queries", &O::score_queries, at_least(0), "integers >= 0 (0: no scores)")
      .value("score_epochs", &O::score_epochs, at_least(0), "integers >= 0 (0: the whole window)")
      .value("all_matrices", &O::all_matrices)
      .value("digits", &O::digits, between(1, 17), "integers in [1, 17]")
      .value("seed", &O::seed)
      .value("threads", &O::threads, at_least(0), "integers >= 0 (0: all cores)"));
  return table;
}

}  // namespace detail

void DiagnosticsOptions::validate() const { detail::diagnostics_keys().validate(*this); }

void apply_diagnostics_json(DiagnosticsOptions& opt, const nlohmann::json& config, const std::string& source) {
  detail::diagnostics_keys().apply(opt, config, source);
}

nlohmann::json to_json(const DiagnosticsOptions& o) { return detail::diagnostics_keys().write(o); }

// ---------------------------------------------------------------- estimators

double knn_entropy(const RowMatrix& points, int k, double min_distance) {
  const Index n = points.rows(), d = points.cols();
  if (n < 2 || d < 1) return kNaN;
  if (k < 1) throw Error("knn entropy: k = " + std::to_string(k) + " must be >= 1");
  if (!(min_distance > 0)) throw Error("knn entropy: min_distance must be > 0");
  const Index kk = std::min<Index>(k, n - 1);
  // Raw loops over the contiguous row-major points: the groups are small (5-100 points) and
  // many (128,000 per frame), so per-call overhead matters more than asymptotics.
  const double* P = points.data();
  std::vector<double> best(static_cast<std::size_t>(kk));  // kk smallest squared distances, ascending
  double sum_log = 0.0;
  for (Index i = 0; i < n; ++i) {
    std::fill(best.begin(), best.end(), std::numeric_limits<double>::infinity());
    const double* pi = P + i * d;
    for (Index j = 0; j < n; ++j) {
      if (j == i) continue;
      const double* pj = P + j * d;
      double s2 = 0.0;
      for (Index c = 0; c < d; ++c) s2 += (pi[c] - pj[c]) * (pi[c] - pj[c]);
      if (s2 >= best[kk - 1]) continue;
      Index pos = kk - 1;
      while (pos > 0 && best[pos - 1] > s2) {
        best[pos] = best[pos - 1];
        --pos;
      }
      best[pos] = s2;
    }
    sum_log += std::log(std::max(std::sqrt(best[kk - 1]), min_distance));
  }
  const double half_d = 0.5 * static_cast<double>(d);
  const double log_unit_ball = half_d * std::log(M_PI) - std::lgamma(half_d + 1.0);
  return digamma_int(n) - digamma_int(kk) + log_unit_ball + static_cast<double>(d) * sum_log / static_cast<double>(n);
}

double histogram_entropy(const RowMatrix& points, int bins, double range) {
  const Index n = points.rows(), d = points.cols();
  if (n < 1 || d < 1) return kNaN;
  if (bins < 1 || !(range > 0)) throw Error("histogram entropy: bins must be >= 1 and range > 0");
  std::vector<std::uint64_t> codes(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    std::uint64_t code = 0;
    for (Index j = 0; j < d; ++j) {
      const double x = (points(i, j) + range) / (2.0 * range) * bins;
      const auto b = static_cast<std::uint64_t>(std::clamp(std::floor(x), 0.0, static_cast<double>(bins - 1)));
      code = code * static_cast<std::uint64_t>(bins) + b;
    }
    codes[i] = code;
  }
  std::sort(codes.begin(), codes.end());
  double h = 0.0;
  for (std::size_t a = 0; a < codes.size();) {
    std::size_t b = a;
    while (b < codes.size() && codes[b] == codes[a]) ++b;
    const double p = static_cast<double>(b - a) / static_cast<double>(n);
    h -= p * std::log(p);
    a = b;
  }
  return h;
}

double spectral_entropy(const Matrix& block, int t) {
  const Index m = block.rows();
  if (block.cols() != m) throw Error("spectral entropy: the block is not square");
  if (m == 0) return kNaN;
  if (t < 1) throw Error("spectral entropy: t must be >= 1");
  if (!block.allFinite() || block.minCoeff() < 0)
    throw Error("spectral entropy: the kernel block holds negative or non-finite weights");
  Matrix A = 0.5 * (block + block.transpose());
  Vector deg = A.rowwise().sum();
  for (Index i = 0; i < m; ++i)
    if (!(deg(i) > 0)) {  // isolated inside the block: its own component
      A(i, i) = 1.0;
      deg(i) = 1.0;
    }
  const Vector s = deg.cwiseSqrt().cwiseInverse();
  A = s.asDiagonal() * A * s.asDiagonal();
  const Vector l = Eigen::SelfAdjointEigenSolver<Matrix>(A, Eigen::EigenvaluesOnly).eigenvalues();
  const Vector w = l.cwiseAbs().array().pow(static_cast<double>(t)).matrix();
  const double total = w.sum();
  if (!(total > 0)) return 0.0;
  double h = 0.0;
  for (Index i = 0; i < m; ++i) {
    const double q = w(i) / total;
    if (q > 0) h -= q * std::log(q);
  }
  return h;
}

// ---------------------------------------------------------------- the frame

namespace {

// The frame as the steps below read it: the embedding on the grid, which rows are present, and
// the frame's centre and RMS radius.
struct FrameGrid {
  const RowMatrix& Y;
  Index E, T, U, d;
  std::vector<char> present;
  Index n_present = 0;
  Eigen::RowVectorXd centre;
  bool scalable = false;  // a positive, finite radius: entropies and unit change are defined
  Index node(Index e, Index t, Index u) const { return (e * T + t) * U + u; }
};

void warn(FrameDiagnostics& out, const std::string& w) {
  logger()->warn("diagnostics: {}", w);
  out.warnings.push_back(w);
}

void check_frame_input(const RowMatrix& Y, const TraceShape& shape, const std::vector<std::int64_t>& epochs) {
  const Index E = shape.epochs, T = shape.steps, U = shape.units, d = Y.cols();
  if (E < 1 || T < 1 || U < 1)
    throw Error("diagnostics: shape must have epochs, steps and units >= 1, got " + std::to_string(E) + " x " +
                std::to_string(T) + " x " + std::to_string(U));
  if (Y.rows() != shape.nodes())
    throw Error("diagnostics: the embedding has " + std::to_string(Y.rows()) + " rows for " +
                std::to_string(shape.nodes()) + " grid nodes (" + std::to_string(E) + " epochs x " +
                std::to_string(T) + " steps x " + std::to_string(U) + " units)");
  if (d < 1) throw Error("diagnostics: the embedding has no columns");
  if (static_cast<Index>(epochs.size()) != E)
    throw Error("diagnostics: " + std::to_string(epochs.size()) + " epoch labels for " + std::to_string(E) +
                " window epochs");
  for (Index e = 1; e < E; ++e)
    if (epochs[e] <= epochs[e - 1])
      throw Error("diagnostics: epoch labels must be strictly increasing (oldest first), got " +
                  std::to_string(epochs[e - 1]) + " then " + std::to_string(epochs[e]));
}

// Present rows: all finite. All-NaN rows are absent; anything else non-finite is an error.
void find_present_rows(FrameGrid& f) {
  const RowMatrix& Y = f.Y;
  const Index T = f.T, U = f.U;
  std::vector<char>& present = f.present;
  Index& n_present = f.n_present;
  present.assign(static_cast<std::size_t>(Y.rows()), 0);
  for (Index i = 0; i < Y.rows(); ++i) {
    const bool finite = Y.row(i).allFinite();
    if (!finite && !Y.row(i).array().isNaN().all())
      throw Error("diagnostics: embedding row " + std::to_string(i) + " (epoch position " +
                  std::to_string(i / (T * U)) + ", step " + std::to_string((i / U) % T) + ", unit " +
                  std::to_string(i % U) + ") mixes NaN/Inf with numbers; absent nodes must be all-NaN rows");
    present[i] = finite ? 1 : 0;
    n_present += finite ? 1 : 0;
  }
}

// The frame's centre and RMS radius (what the entropies and the unit change are measured in).
void measure_frame(FrameGrid& f, FrameDiagnostics& out) {
  const RowMatrix& Y = f.Y;
  const std::vector<char>& present = f.present;
  const Index n_present = f.n_present;
  Eigen::RowVectorXd centre = Eigen::RowVectorXd::Zero(f.d);
  for (Index i = 0; i < Y.rows(); ++i)
    if (present[i]) centre += Y.row(i);
  if (n_present > 0) centre /= static_cast<double>(n_present);
  double ss = 0.0;
  for (Index i = 0; i < Y.rows(); ++i)
    if (present[i]) ss += (Y.row(i) - centre).squaredNorm();
  out.frame_radius = n_present > 0 ? std::sqrt(ss / static_cast<double>(n_present)) : 0.0;
  f.centre = centre;
  f.scalable = out.frame_radius > 0 && std::isfinite(out.frame_radius);
  if (n_present == 0) warn(out, "no present node in the frame");
  else if (!f.scalable)
    warn(out, "every present node sits at the same point: entropies and unit change are not available");
}

// Intra- and inter-step entropies of the embedding (Kozachenko-Leonenko or histogram).
void embedding_entropies(const FrameGrid& f, const DiagnosticsOptions& opt, FrameDiagnostics& out) {
  const RowMatrix& Y = f.Y;
  const Index E = f.E, T = f.T, U = f.U;
  const std::vector<char>& present = f.present;
  const bool scalable = f.scalable;
  const Eigen::RowVectorXd& centre = f.centre;
  auto node = [&](Index e, Index t, Index u) { return f.node(e, t, u); };
  out.intra_step_entropy_by_step = RowMatrix::Constant(E, T, kNaN);
  out.inter_step_entropy_by_unit = RowMatrix::Constant(E, U, kNaN);
  if (scalable) {
    const RowMatrix Z = normalised_coords(Y, present, centre, out.frame_radius,
                                          opt.estimator == EntropyEstimator::histogram);
    auto entropy = [&](const std::vector<Index>& rows) {
      const RowMatrix P = gather_rows(Z, rows);
      return opt.estimator == EntropyEstimator::knn ? knn_entropy(P, opt.knn_k, opt.knn_min_distance)
                                                   : histogram_entropy(P, opt.histogram_bins, opt.histogram_range);
    };
    // Histogram entropy of one point is 0, which says nothing about spread: require 2 points.
    parallel_for(E * T, opt.threads, [&](Index s) {
      std::vector<Index> rows;
      for (Index u = 0; u < U; ++u)
        if (present[s * U + u]) rows.push_back(s * U + u);
      if (rows.size() >= 2) out.intra_step_entropy_by_step(s / T, s % T) = entropy(rows);
    });
    parallel_for(E * U, opt.threads, [&](Index g) {
      const Index e = g / U, u = g % U;
      std::vector<Index> rows;
      for (Index t = 0; t < T; ++t)
        if (present[node(e, t, u)]) rows.push_back(node(e, t, u));
      if (rows.size() >= 2) out.inter_step_entropy_by_unit(e, u) = entropy(rows);
    });
    if (const Index miss = U >= 2 ? count_nonfinite(out.intra_step_entropy_by_step) : 0)
      warn(out, "intra-step entropy: " + std::to_string(miss) + " of " + std::to_string(E * T) +
           " slices have fewer than 2 present units");
    if (const Index miss = T >= 2 ? count_nonfinite(out.inter_step_entropy_by_unit) : 0)
      warn(out, "inter-step entropy: " + std::to_string(miss) + " of " + std::to_string(E * U) +
           " (epoch, unit) groups have fewer than 2 present steps");
  }
  out.intra_step_entropy = row_means(out.intra_step_entropy_by_step);
  out.inter_step_entropy = row_means(out.inter_step_entropy_by_unit);
}

// Spectral (von Neumann) entropies of the kernel's diffusion blocks of the same groups.
void spectral_entropies(const FrameGrid& f, const SparseMatrix* kernel, const NodeIndex* graph_nodes,
                        const TraceShape& shape, const DiagnosticsOptions& opt, FrameDiagnostics& out) {
  const Index E = f.E, T = f.T, U = f.U;
  out.spectral_intra_step_entropy_by_step = RowMatrix::Constant(E, T, kNaN);
  out.spectral_inter_step_entropy_by_unit = RowMatrix::Constant(E, U, kNaN);
  if (kernel && opt.spectral) {
    if (!graph_nodes) throw Error("diagnostics: a kernel was given without the graph's node index");
    const NodeIndex& g = *graph_nodes;
    if (g.shape.epochs != E || g.shape.steps != T || g.shape.units != U)
      throw Error("diagnostics: the graph's node index is " + std::to_string(g.shape.epochs) + " x " +
                  std::to_string(g.shape.steps) + " x " + std::to_string(g.shape.units) + ", the frame " +
                  std::to_string(E) + " x " + std::to_string(T) + " x " + std::to_string(U));
    if (static_cast<Index>(g.row_of.size()) != shape.nodes())
      throw Error("diagnostics: the graph's node index maps " + std::to_string(g.row_of.size()) +
                  " grid nodes, the frame has " + std::to_string(shape.nodes()));
    if (kernel->rows() != g.size() || kernel->cols() != g.size())
      throw Error("diagnostics: the kernel is " + std::to_string(kernel->rows()) + " x " +
                  std::to_string(kernel->cols()) + " for " + std::to_string(g.size()) + " graph rows");
    const Index first = opt.spectral_epochs == 0 ? 0 : std::max<Index>(0, E - opt.spectral_epochs);
    // Graph rows of a group, ascending (rows follow grid order).
    auto group_rows = [&](Index e, Index t_or_u, bool by_slice) {
      std::vector<Index> rows;
      if (by_slice) {
        for (Index u = 0; u < U; ++u)
          if (const Index r = g.row(e * T + t_or_u, u); r >= 0) rows.push_back(r);
      } else {
        for (Index t = 0; t < T; ++t)
          if (const Index r = g.row(e * T + t, t_or_u); r >= 0) rows.push_back(r);
      }
      std::sort(rows.begin(), rows.end());
      return rows;
    };
    const Index ne = E - first;
    // An exception must not leave an OpenMP region: keep the first message, throw after.
    std::string failure;
    std::mutex failure_mutex;
    auto block_entropy = [&](const std::vector<Index>& rows) {
      try {
        return spectral_entropy(kernel_block(*kernel, rows), opt.spectral_t);
      } catch (const std::exception& ex) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (failure.empty()) failure = ex.what();
        return kNaN;
      }
    };
    parallel_for(ne * T, opt.threads, [&](Index i) {
      const Index e = first + i / T, t = i % T;
      const auto rows = group_rows(e, t, true);
      if (rows.size() >= 2) out.spectral_intra_step_entropy_by_step(e, t) = block_entropy(rows);
    });
    parallel_for(ne * U, opt.threads, [&](Index i) {
      const Index e = first + i / U, u = i % U;
      const auto rows = group_rows(e, u, false);
      if (rows.size() >= 2) out.spectral_inter_step_entropy_by_unit(e, u) = block_entropy(rows);
    });
    if (!failure.empty()) throw Error("diagnostics: " + failure);
    if (const Index miss = U >= 2 ? count_nonfinite(out.spectral_intra_step_entropy_by_step, first) : 0)
      warn(out, "spectral intra-step entropy: " + std::to_string(miss) + " slices have fewer than 2 graph nodes");
    if (T >= 2)
      if (const Index miss = count_nonfinite(out.spectral_inter_step_entropy_by_unit, first))
        warn(out, "spectral inter-step entropy: " + std::to_string(miss) +
             " (epoch, unit) groups have fewer than 2 graph nodes");
  } else if (opt.spectral && !kernel) {
    logger()->debug("diagnostics: no kernel given, spectral entropies skipped");
  }
  out.spectral_intra_step_entropy = row_means(out.spectral_intra_step_entropy_by_step);
  out.spectral_inter_step_entropy = row_means(out.spectral_inter_step_entropy_by_unit);
}

// Visualisation variance: mean squared distance of an epoch's nodes to their centroid.
void visualization_variance(const FrameGrid& f, FrameDiagnostics& out) {
  const RowMatrix& Y = f.Y;
  const Index E = f.E, T = f.T, U = f.U, d = f.d;
  const std::vector<char>& present = f.present;
  const bool scalable = f.scalable;
  out.visualization_variance.assign(static_cast<std::size_t>(E), kNaN);
  out.visualization_variance_relative.assign(static_cast<std::size_t>(E), kNaN);
  for (Index e = 0; e < E; ++e) {
    Eigen::RowVectorXd c = Eigen::RowVectorXd::Zero(d);
    Index n = 0;
    for (Index i = e * T * U; i < (e + 1) * T * U; ++i)
      if (present[i]) {
        c += Y.row(i);
        ++n;
      }
    if (n == 0) continue;
    c /= static_cast<double>(n);
    double v = 0.0;
    for (Index i = e * T * U; i < (e + 1) * T * U; ++i)
      if (present[i]) v += (Y.row(i) - c).squaredNorm();
    v /= static_cast<double>(n);
    out.visualization_variance[e] = v;
    out.visualization_variance_total += v;
    if (scalable) out.visualization_variance_relative[e] = v / (out.frame_radius * out.frame_radius);
  }
}

// Unit change: mean displacement of a unit's slice-points from the previous window epoch, and
// the newest epoch's top units by change and by entropy.
void unit_change(const FrameGrid& f, const DiagnosticsOptions& opt, FrameDiagnostics& out) {
  const RowMatrix& Y = f.Y;
  const Index E = f.E, T = f.T, U = f.U;
  const std::vector<char>& present = f.present;
  const bool scalable = f.scalable;
  auto node = [&](Index e, Index t, Index u) { return f.node(e, t, u); };
  out.unit_change_by_unit = RowMatrix::Constant(E, U, kNaN);
  if (scalable)
    for (Index e = 1; e < E; ++e)
      for (Index u = 0; u < U; ++u) {
        double s = 0.0;
        Index n = 0;
        for (Index t = 0; t < T; ++t) {
          const Index a = node(e, t, u), b = node(e - 1, t, u);
          if (present[a] && present[b]) {
            s += (Y.row(a) - Y.row(b)).norm();
            ++n;
          }
        }
        if (n > 0) out.unit_change_by_unit(e, u) = s / static_cast<double>(n) / out.frame_radius;
      }
  out.unit_change = row_means(out.unit_change_by_unit);
  out.top_change_units = top_of_row(out.unit_change_by_unit, E - 1, opt.top_units);
  out.top_entropy_units = top_of_row(out.inter_step_entropy_by_unit, E - 1, opt.top_units);
}

// Sampled community scores on the graph rows of the newest score_epochs epochs.
void sampled_scores(const FrameGrid& f, const NodeIndex* graph_nodes, const RowMatrix* features,
                    const DiagnosticsOptions& opt, FrameDiagnostics& out) {
  const RowMatrix& Y = f.Y;
  const Index E = f.E, T = f.T, U = f.U, d = f.d;
  const std::vector<char>& present = f.present;
  if (features && graph_nodes && opt.score_queries > 0) {
    const NodeIndex& g = *graph_nodes;
    if (features->rows() != g.size())
      throw Error("diagnostics: the features have " + std::to_string(features->rows()) + " rows for " +
                  std::to_string(g.size()) + " graph rows");
    if (g.shape.epochs != E || g.shape.steps != T || g.shape.units != U)
      throw Error("diagnostics: the graph's node index does not match the frame's shape");
    // The newest score_epochs epochs as a sub-graph: inter-step groups of the whole window
    // (a unit's E*T slice-points, 40-d) would dominate the cost through their kNN indices.
    const Index first = opt.score_epochs == 0 ? 0 : std::max<Index>(0, E - opt.score_epochs);
    const Index first_id = first * T * U;
    NodeIndex sub;
    sub.shape = g.shape;
    sub.shape.epochs = E - first;
    sub.row_of.assign(static_cast<std::size_t>(sub.shape.nodes()), -1);
    std::vector<Index> rows;
    for (Index r = 0; r < g.size(); ++r) {
      const Index id = g.full_id[r];
      if (id < 0 || id >= Y.rows() || !present[id])
        throw Error("diagnostics: graph row " + std::to_string(r) + " (grid node " + std::to_string(id) +
                    ") has no coordinates in the frame");
      if (id < first_id) continue;
      sub.row_of[id - first_id] = static_cast<Index>(rows.size());
      sub.full_id.push_back(id - first_id);
      rows.push_back(r);
    }
    RowMatrix emb(static_cast<Index>(rows.size()), d), feat(static_cast<Index>(rows.size()), features->cols());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      emb.row(static_cast<Index>(i)) = Y.row(g.full_id[rows[i]]);
      feat.row(static_cast<Index>(i)) = features->row(rows[i]);
    }
    ScoreOptions so;
    so.ks = {opt.score_k};
    so.max_queries = opt.score_queries;
    so.seed = opt.seed;
    so.threads = opt.threads;
    if (sub.size() >= 2) out.scores = community_scores(feat, sub, emb, so);
    out.score_epochs = E - first;
  }
}

}  // namespace

FrameDiagnostics compute_frame_diagnostics(const RowMatrix& Y, const TraceShape& shape,
                                           const std::vector<std::int64_t>& epochs, const SparseMatrix* kernel,
                                           const NodeIndex* graph_nodes, const DiagnosticsOptions& opt,
                                           const RowMatrix* features) {
  const auto start = std::chrono::steady_clock::now();
  opt.validate();
  check_frame_input(Y, shape, epochs);
  FrameGrid f{Y, shape.epochs, shape.steps, shape.units, Y.cols(), {}, 0, {}, false};
  find_present_rows(f);

  FrameDiagnostics out;
  out.epochs = epochs;
  out.steps = f.T;
  out.units = f.U;
  out.present_nodes = f.n_present;
  out.estimator = opt.estimator;
  out.all_matrices = opt.all_matrices;
  out.digits = opt.digits;
  measure_frame(f, out);

  std::optional<ScopedStage> stage(std::in_place, out.times, "entropy");
  embedding_entropies(f, opt, out);
  stage.emplace(out.times, "spectral");
  spectral_entropies(f, kernel, graph_nodes, shape, opt, out);
  stage.emplace(out.times, "variance");
  visualization_variance(f, out);
  unit_change(f, opt, out);
  stage.emplace(out.times, "scores");
  sampled_scores(f, graph_nodes, features, opt, out);
  stage.reset();

  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  logger()->debug("diagnostics: {} epochs x {} steps x {} units in {:.3f} s", f.E, f.T, f.U, out.seconds);
  return out;
}

const std::vector<std::string>& FrameDiagnostics::per_epoch_names() {
  static const std::vector<std::string> names = {
      "intra_step_entropy",          "inter_step_entropy",     "spectral_intra_step_entropy",
      "spectral_inter_step_entropy", "visualization_variance", "visualization_variance_relative",
      "unit_change"};
  return names;
}

const std::vector<double>* FrameDiagnostics::per_epoch(const std::string& name) const {
  if (name == "intra_step_entropy") return &intra_step_entropy;
  if (name == "inter_step_entropy") return &inter_step_entropy;
  if (name == "spectral_intra_step_entropy") return &spectral_intra_step_entropy;
  if (name == "spectral_inter_step_entropy") return &spectral_inter_step_entropy;
  if (name == "visualization_variance") return &visualization_variance;
  if (name == "visualization_variance_relative") return &visualization_variance_relative;
  if (name == "unit_change") return &unit_change;
  return nullptr;
}

nlohmann::json FrameDiagnostics::to_json() const {
  const int p = digits;
  const Index last = static_cast<Index>(epochs.size()) - 1;
  nlohmann::json j;
  j["estimator"] = to_string(estimator);
  j["epochs"] = epochs;
  j["present_nodes"] = present_nodes;
  j["frame_radius"] = num(frame_radius, p);
  j["per_epoch"] = nlohmann::json::object();
  for (const auto& name : per_epoch_names()) j["per_epoch"][name] = array(*per_epoch(name), p);
  j["visualization_variance_total"] = num(visualization_variance_total, p);
  nlohmann::json newest;
  newest["epoch"] = last >= 0 ? nlohmann::json(epochs[last]) : nlohmann::json(nullptr);
  newest["intra_step_entropy_by_step"] = row_array(intra_step_entropy_by_step, last, p);
  newest["spectral_intra_step_entropy_by_step"] = row_array(spectral_intra_step_entropy_by_step, last, p);
  newest["inter_step_entropy_by_unit"] = row_array(inter_step_entropy_by_unit, last, p);
  newest["spectral_inter_step_entropy_by_unit"] = row_array(spectral_inter_step_entropy_by_unit, last, p);
  newest["unit_change_by_unit"] = row_array(unit_change_by_unit, last, p);
  newest["top_change_units"] = ranked(top_change_units, p);
  newest["top_entropy_units"] = ranked(top_entropy_units, p);
  j["newest"] = std::move(newest);
  if (all_matrices)
    j["matrices"] = {{"intra_step_entropy_by_step", matrix(intra_step_entropy_by_step, p)},
                     {"spectral_intra_step_entropy_by_step", matrix(spectral_intra_step_entropy_by_step, p)},
                     {"inter_step_entropy_by_unit", matrix(inter_step_entropy_by_unit, p)},
                     {"spectral_inter_step_entropy_by_unit", matrix(spectral_inter_step_entropy_by_unit, p)},
                     {"unit_change_by_unit", matrix(unit_change_by_unit, p)}};
  if (scores) {
    j["scores"] = scores_to_json(*scores, p);
    j["scores"]["epochs"] = score_epochs;
  }
  j["quantities"] = nlohmann::json::object();
  for (const auto& [name, value] : quantities()) j["quantities"][name] = num(value, p);
  j["warnings"] = warnings;
  j["seconds"] = num(seconds, 3);
  j["timings_s"] = nlohmann::json::object();
  for (const auto& [name, s] : times) j["timings_s"][name] = num(s, 3);
  return j;
}

// The per-epoch curves' newest values, then the scalars of the whole frame.
const std::vector<std::string>& frame_quantity_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n = FrameDiagnostics::per_epoch_names();
    for (const char* scalar : {"visualization_variance_total", "intra_step_score", "inter_step_score"}) n.push_back(scalar);
    return n;
  }();
  return names;
}

std::map<std::string, double> FrameDiagnostics::quantities() const {
  std::map<std::string, double> q;
  if (epochs.empty()) return q;
  const std::size_t last = epochs.size() - 1;
  for (const auto& name : per_epoch_names()) {
    const std::vector<double>& v = *per_epoch(name);
    if (last < v.size() && std::isfinite(v[last])) q[name] = v[last];
  }
  if (std::isfinite(visualization_variance_total)) q["visualization_variance_total"] = visualization_variance_total;
  if (scores && !scores->intra_step.empty() && std::isfinite(scores->intra_step[0]))
    q["intra_step_score"] = scores->intra_step[0];
  if (scores && !scores->inter_step.empty() && std::isfinite(scores->inter_step[0]))
    q["inter_step_score"] = scores->inter_step[0];
  return q;
}

}  // namespace mmphate
