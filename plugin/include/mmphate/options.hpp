/// @file
/// Options: every parameter of the PHATE / multislice PHATE engine in one struct.
/// Field defaults are plain PHATE's; Options::mphate() returns the M-PHATE / MM-PHATE
/// reference defaults (docs/METHOD.md section 3). validate() throws mmphate::Error naming the
/// field, the value and the allowed range.
#pragma once
#include <cstdint>
#include <string>

namespace mmphate {

enum class MdsMethod { classic, metric };
enum class MdsSolver { smacof, sgd };
enum class KnnMethod { automatic, exact, kdtree };
enum class MultisliceMode { faithful, scalable };
enum class NanPolicy { error, drop_node, zero };

struct Options {
  /// --- graph (plain PHATE) ---
  int knn = 5;            ///< neighbours defining each point's bandwidth (k-th nearest other point)
  double decay = 40.0;    ///< alpha of the alpha-decay kernel exp(-(d/sigma)^alpha)
  double thresh = 1e-4;   ///< kernel entries below this are dropped
  int n_pca = 100;        ///< PCA to this many dims before kNN when the input is wider (0: never)
  KnnMethod knn_method = KnnMethod::automatic;

  /// --- multislice graph (M-PHATE / MM-PHATE) ---
  int intraslice_knn = 2;
  int interslice_knn = 25;  ///< kappa: the global interslice bandwidth's neighbour rank
  bool normalize = true;    ///< z-score each node's trace across probes
  /// faithful: the reference's dense interslice kernel; scalable: kNN interslice edges plus
  /// explicit multiway edges (docs/MULTISLICE.md).
  MultisliceMode multislice_mode = MultisliceMode::scalable;
  int interslice_edges = 0;        ///< scalable: nearest slice-points kept per node (0: interslice_knn)
  double time_edge_weight = 1.0;   ///< scalable: same unit, adjacent steps of an epoch (0: none)
  double epoch_edge_weight = 1.0;  ///< scalable: same unit and step, adjacent epochs (0: none)
  double memory_budget_gb = 8.0;   ///< faithful mode refuses inputs whose kernel needs more
  NanPolicy nan_policy = NanPolicy::error;  ///< NaN/Inf in a trace: error | drop-node | zero

  /// --- diffusion ---
  int n_landmark = 2000;  ///< landmarks are used when nodes > n_landmark (0: never)
  int n_svd = 100;        ///< singular vectors for the spectral clustering of landmarks
  int svd_power_iterations = 7;  ///< randomized eigensolver passes for those vectors
  int t = 0;              ///< diffusion time; 0 = automatic (von Neumann entropy knee)
  int t_max = 100;        ///< range searched by the automatic t
  double gamma = 1.0;     ///< potential: 1 = log, 0 = square root, any value in [-1, 1]

  /// --- embedding ---
  int n_components = 2;
  MdsMethod mds = MdsMethod::metric;
  MdsSolver mds_solver = MdsSolver::sgd;
  int mds_max_iter = 3000;    ///< SMACOF iteration cap
  double mds_tol = 1e-6;      ///< SMACOF relative stress improvement to stop at
  int sgd_epochs = 30;        ///< SGD-MDS passes over the pairs (Zheng et al. t_max)
  double sgd_eps = 0.01;      ///< SGD-MDS final step size factor

  /// --- execution ---
  std::uint64_t seed = 42;
  int threads = 1;  ///< 0: all hardware threads

  /// The M-PHATE / MM-PHATE reference defaults (faithful kernel, 4000 landmarks, SMACOF).
  static Options mphate();
  /// Scalable multislice defaults: kNN interslice kernel (100 edges per node) with multiway
  /// edges, 2000 landmarks, SMACOF. The dense L x L stages are O(L^3), so halving L cuts them
  /// 8x; measured choices in docs/MULTISLICE.md.
  static Options mmphate_scalable();
  /// Plain PHATE defaults (identical to a default-constructed Options).
  static Options phate() { return Options{}; }

  void validate() const;
};

/// How validate() words the allowed values of an integer option ("integers in [1, 100000]"),
/// for parsers that meet a value the field cannot even hold; "" for other names.
std::string option_allowed(const std::string& field);

const char* to_string(MdsMethod m);
const char* to_string(MdsSolver s);
const char* to_string(KnnMethod k);
MdsMethod parse_mds_method(const std::string& text);  ///< "classic" | "metric"
MdsSolver parse_mds_solver(const std::string& text);  ///< "smacof" | "sgd"
KnnMethod parse_knn_method(const std::string& text);  ///< "auto" | "exact" | "kdtree"
const char* to_string(MultisliceMode m);
const char* to_string(NanPolicy p);
MultisliceMode parse_multislice_mode(const std::string& text);  ///< "faithful" | "scalable"
NanPolicy parse_nan_policy(const std::string& text);            ///< "error" | "drop-node" | "zero"

}  // namespace mmphate
