#include "mmphate/options.hpp"

#include <cmath>
#include <sstream>

#include "util/config_json.hpp"
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
  o.interslice_edges = 200;
  o.svd_power_iterations = 4;
  o.n_svd = 50;
  return o;
}

namespace {

// Integer fields and their allowed ranges: validate() checks them, and option_allowed() words
// them for parsers that meet a value beyond the field's type. Sizes are bounded so that no
// option alone can drive an allocation or a loop beyond what any real input needs (t_max =
// 2^31 - 1 once drove a 96-node embedding to 15 GB).
struct IntRule {
  const char* field;
  int Options::*member;
  long long lo, hi;
  const char* allowed;
};
constexpr long long kMaxNeighbours = 100000;
const IntRule kIntRules[] = {
    {"knn", &Options::knn, 1, kMaxNeighbours, "integers in [1, 100000]"},
    {"n_pca", &Options::n_pca, 0, 100000, "integers in [0, 100000] (0 disables PCA)"},
    {"intraslice_knn", &Options::intraslice_knn, 1, kMaxNeighbours, "integers in [1, 100000]"},
    {"interslice_knn", &Options::interslice_knn, 1, kMaxNeighbours, "integers in [1, 100000]"},
    {"interslice_edges", &Options::interslice_edges, 0, kMaxNeighbours,
     "integers in [0, 100000] (0: interslice_knn)"},
    {"n_landmark", &Options::n_landmark, 0, 1000000, "0 (no landmarks) or integers in [2, 1000000]"},
    {"n_svd", &Options::n_svd, 1, 10000, "integers in [1, 10000]"},
    {"svd_power_iterations", &Options::svd_power_iterations, 0, 50, "integers in [0, 50]"},
    {"t", &Options::t, 0, 10000, "0 (automatic) or integers in [1, 10000]"},
    {"t_max", &Options::t_max, 3, 10000, "integers in [3, 10000]"},
    {"n_components", &Options::n_components, 2, 3, "2 or 3"},
    {"mds_max_iter", &Options::mds_max_iter, 1, 1000000, "integers in [1, 1000000]"},
    {"sgd_epochs", &Options::sgd_epochs, 1, 100000, "integers in [1, 100000]"},
    {"threads", &Options::threads, 0, 1024, "integers in [0, 1024] (0: all hardware threads)"},
};

}  // namespace

std::string option_allowed(const std::string& field) {
  for (const auto& r : kIntRules)
    if (field == r.field) return r.allowed;
  if (field == "seed") return "integers in [0, 18446744073709551615]";
  return "";
}

void Options::validate() const {
  for (const auto& r : kIntRules) {
    const int v = this->*(r.member);
    require(v >= r.lo && v <= r.hi, r.field, v, r.allowed);
  }
  require(n_landmark != 1, "n_landmark", n_landmark, "0 (no landmarks) or integers in [2, 1000000]");
  require(std::isfinite(decay) && decay > 0, "decay", decay, "finite values > 0");
  require(std::isfinite(thresh) && thresh >= 0 && thresh < 1, "thresh", thresh, "[0, 1)");
  require(std::isfinite(gamma) && gamma >= -1 && gamma <= 1, "gamma", gamma, "[-1, 1]");
  require(std::isfinite(mds_tol) && mds_tol >= 0, "mds_tol", mds_tol, "finite values >= 0");
  require(std::isfinite(sgd_eps) && sgd_eps > 0 && sgd_eps <= 1, "sgd_eps", sgd_eps, "(0, 1]");
  require(std::isfinite(time_edge_weight) && time_edge_weight >= 0, "time_edge_weight", time_edge_weight,
          "finite values >= 0");
  require(std::isfinite(epoch_edge_weight) && epoch_edge_weight >= 0, "epoch_edge_weight", epoch_edge_weight,
          "finite values >= 0");
  require(std::isfinite(memory_budget_gb) && memory_budget_gb > 0, "memory_budget_gb", memory_budget_gb,
          "finite values > 0");
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
