// Options: every parameter of the PHATE / multislice PHATE engine in one struct.
// Field defaults are plain PHATE's; Options::mphate() returns the M-PHATE / MM-PHATE
// reference defaults (METHOD.md section 3). validate() throws mmphate::Error naming the
// field, the value and the allowed range.
#pragma once
#include <cstdint>
#include <string>

namespace mmphate {

enum class MdsMethod { classic, metric };
enum class MdsSolver { smacof, sgd };
enum class KnnMethod { automatic, exact, kdtree };

struct Options {
  // --- graph (plain PHATE) ---
  int knn = 5;            // neighbours defining each point's bandwidth (k-th nearest other point)
  double decay = 40.0;    // alpha of the alpha-decay kernel exp(-(d/sigma)^alpha)
  double thresh = 1e-4;   // kernel entries below this are dropped
  int n_pca = 100;        // PCA to this many dims before kNN when the input is wider (0: never)
  KnnMethod knn_method = KnnMethod::automatic;

  // --- multislice graph (M-PHATE / MM-PHATE) ---
  int intraslice_knn = 2;
  int interslice_knn = 25;  // kappa: the global interslice bandwidth's neighbour rank
  bool normalize = true;    // z-score each node's trace across probes

  // --- diffusion ---
  int n_landmark = 2000;  // landmarks are used when nodes > n_landmark (0: never)
  int n_svd = 100;        // singular vectors for the spectral clustering of landmarks
  int t = 0;              // diffusion time; 0 = automatic (von Neumann entropy knee)
  int t_max = 100;        // range searched by the automatic t
  double gamma = 1.0;     // potential: 1 = log, 0 = square root, any value in [-1, 1]

  // --- embedding ---
  int n_components = 2;
  MdsMethod mds = MdsMethod::metric;
  MdsSolver mds_solver = MdsSolver::sgd;
  int mds_max_iter = 3000;    // SMACOF iteration cap
  double mds_tol = 1e-6;      // SMACOF relative stress improvement to stop at
  int sgd_epochs = 30;        // SGD-MDS passes over the pairs (Zheng et al. t_max)
  double sgd_eps = 0.01;      // SGD-MDS final step size factor

  // --- execution ---
  std::uint64_t seed = 42;
  int threads = 1;  // 0: all hardware threads

  // The M-PHATE / MM-PHATE reference defaults.
  static Options mphate();
  // Plain PHATE defaults (identical to a default-constructed Options).
  static Options phate() { return Options{}; }

  void validate() const;
};

const char* to_string(MdsMethod m);
const char* to_string(MdsSolver s);
const char* to_string(KnnMethod k);
MdsMethod parse_mds_method(const std::string& text);  // "classic" | "metric"
MdsSolver parse_mds_solver(const std::string& text);  // "smacof" | "sgd"
KnnMethod parse_knn_method(const std::string& text);  // "auto" | "exact" | "kdtree"

}  // namespace mmphate
