#include "mmphate/options.hpp"

#include <cmath>
#include <sstream>

#include "config_json.hpp"
#include "mmphate/error.hpp"

namespace mmphate {
namespace {

template <typename T>
void require(bool ok, const char* field, T value, const char* allowed) {
  detail::require_option(ok, "option", field, value, allowed);
}

}  // namespace

Options Options::mphate() {
  Options o;
  o.decay = 5.0;
  o.n_landmark = 4000;
  o.gamma = 0.0;
  o.mds_solver = MdsSolver::smacof;
  o.multislice_mode = MultisliceMode::faithful;
  return o;
}

Options Options::mmphate_scalable() {
  Options o = mphate();
  o.multislice_mode = MultisliceMode::scalable;
  o.n_landmark = 2000;
  o.interslice_edges = 100;
  o.svd_power_iterations = 2;
  o.n_svd = 50;
  return o;
}

void Options::validate() const {
  require(knn >= 1, "knn", knn, "integers >= 1");
  require(std::isfinite(decay) && decay > 0, "decay", decay, "finite values > 0");
  require(std::isfinite(thresh) && thresh >= 0 && thresh < 1, "thresh", thresh, "[0, 1)");
  require(n_pca >= 0, "n_pca", n_pca, "integers >= 0 (0 disables PCA)");
  require(intraslice_knn >= 1, "intraslice_knn", intraslice_knn, "integers >= 1");
  require(interslice_knn >= 1, "interslice_knn", interslice_knn, "integers >= 1");
  require(n_landmark == 0 || n_landmark >= 2, "n_landmark", n_landmark,
          "0 (no landmarks) or integers >= 2");
  require(n_svd >= 1, "n_svd", n_svd, "integers >= 1");
  require(svd_power_iterations >= 0 && svd_power_iterations <= 50, "svd_power_iterations", svd_power_iterations,
          "integers in [0, 50]");
  require(t >= 0, "t", t, "0 (automatic) or integers >= 1");
  require(t_max >= 3, "t_max", t_max, "integers >= 3");
  require(std::isfinite(gamma) && gamma >= -1 && gamma <= 1, "gamma", gamma, "[-1, 1]");
  require(n_components == 2 || n_components == 3, "n_components", n_components, "2 or 3");
  require(mds_max_iter >= 1, "mds_max_iter", mds_max_iter, "integers >= 1");
  require(std::isfinite(mds_tol) && mds_tol >= 0, "mds_tol", mds_tol, "finite values >= 0");
  require(sgd_epochs >= 1, "sgd_epochs", sgd_epochs, "integers >= 1");
  require(std::isfinite(sgd_eps) && sgd_eps > 0 && sgd_eps <= 1, "sgd_eps", sgd_eps, "(0, 1]");
  require(interslice_edges >= 0, "interslice_edges", interslice_edges, "integers >= 0 (0: interslice_knn)");
  require(std::isfinite(time_edge_weight) && time_edge_weight >= 0, "time_edge_weight", time_edge_weight,
          "finite values >= 0");
  require(std::isfinite(epoch_edge_weight) && epoch_edge_weight >= 0, "epoch_edge_weight", epoch_edge_weight,
          "finite values >= 0");
  require(std::isfinite(memory_budget_gb) && memory_budget_gb > 0, "memory_budget_gb", memory_budget_gb,
          "finite values > 0");
  require(threads >= 0, "threads", threads, "integers >= 0 (0: all hardware threads)");
}

const char* to_string(MdsMethod m) { return m == MdsMethod::classic ? "classic" : "metric"; }
const char* to_string(MdsSolver s) { return s == MdsSolver::smacof ? "smacof" : "sgd"; }
const char* to_string(KnnMethod k) {
  switch (k) {
    case KnnMethod::exact: return "exact";
    case KnnMethod::kdtree: return "kdtree";
    default: return "auto";
  }
}

const char* to_string(MultisliceMode m) { return m == MultisliceMode::faithful ? "faithful" : "scalable"; }
const char* to_string(NanPolicy p) {
  switch (p) {
    case NanPolicy::drop_node: return "drop-node";
    case NanPolicy::zero: return "zero";
    default: return "error";
  }
}
MultisliceMode parse_multislice_mode(const std::string& text) {
  if (text == "faithful") return MultisliceMode::faithful;
  if (text == "scalable") return MultisliceMode::scalable;
  throw Error("invalid option multislice_mode = '" + text + "': allowed 'faithful', 'scalable'");
}
NanPolicy parse_nan_policy(const std::string& text) {
  if (text == "error") return NanPolicy::error;
  if (text == "drop-node") return NanPolicy::drop_node;
  if (text == "zero") return NanPolicy::zero;
  throw Error("invalid option nan_policy = '" + text + "': allowed 'error', 'drop-node', 'zero'");
}

MdsMethod parse_mds_method(const std::string& text) {
  if (text == "classic") return MdsMethod::classic;
  if (text == "metric") return MdsMethod::metric;
  throw Error("invalid option mds = '" + text + "': allowed 'classic', 'metric'");
}
MdsSolver parse_mds_solver(const std::string& text) {
  if (text == "smacof") return MdsSolver::smacof;
  if (text == "sgd") return MdsSolver::sgd;
  throw Error("invalid option mds_solver = '" + text + "': allowed 'smacof', 'sgd'");
}
KnnMethod parse_knn_method(const std::string& text) {
  if (text == "auto") return KnnMethod::automatic;
  if (text == "exact") return KnnMethod::exact;
  if (text == "kdtree") return KnnMethod::kdtree;
  throw Error("invalid option knn_method = '" + text + "': allowed 'auto', 'exact', 'kdtree'");
}

}  // namespace mmphate
