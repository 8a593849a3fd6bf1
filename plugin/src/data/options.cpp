#include "mmphate/options.hpp"

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "util/config_json.hpp"
#include "mmphate/error.hpp"

namespace mmphate {
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

// The names of an enum's values, as to_string writes them.
template <class E>
std::vector<std::pair<std::string, E>> names_of(std::initializer_list<E> values) {
  std::vector<std::pair<std::string, E>> out;
  for (const E v : values) out.emplace_back(to_string(v), v);
  return out;
}

// "'a', 'b', 'c'": the allowed values of an enum, as the parse_* functions list them.
template <class E>
std::string quoted_names(std::initializer_list<E> values) {
  std::string out;
  for (const E v : values) out += std::string(out.empty() ? "" : ", ") + "'" + to_string(v) + "'";
  return out;
}

}  // namespace

// Every field once: its name, type, allowed values and --help line. Sizes are bounded so that
// no option alone can drive an allocation or a loop beyond what any real input needs
// (t_max = 2^31 - 1 once drove a 96-node embedding to 15 GB).
const detail::KeyTable<Options>& detail::option_keys() {
  using O = Options;
  constexpr double kMaxNeighbours = 100000;
  const std::string neighbours = "integers in [1, 100000]";
  static const KeyTable<O>& t = *new KeyTable<O>(KeyTable<O>("option")
          .value("knn", &O::knn, between(1, kMaxNeighbours), neighbours)
          .help("neighbours defining each point's kernel bandwidth (plain PHATE)")
          .value("decay", &O::decay, finite_above(0), "finite values > 0")
          .help("alpha of the alpha-decay kernel")
          .value("thresh", &O::thresh, [](double v) { return v >= 0 && v < 1; }, "[0, 1)")
          .help("drop kernel entries below this value")
          .value("n_pca", &O::n_pca, between(0, 100000), "integers in [0, 100000] (0 disables PCA)")
          .help("PCA to this many dimensions first when the input is wider (0: never)")
          .choice("knn_method", &O::knn_method,
                  names_of({KnnMethod::automatic, KnnMethod::exact, KnnMethod::kdtree}),
                  quoted_names({KnnMethod::automatic, KnnMethod::exact, KnnMethod::kdtree}))
          .help("nearest-neighbour back end: auto | exact | kdtree")
          .value("intraslice_knn", &O::intraslice_knn, between(1, kMaxNeighbours), neighbours)
          .help("multislice: neighbours for the intraslice bandwidth")
          .value("interslice_knn", &O::interslice_knn, between(1, kMaxNeighbours), neighbours)
          .help("multislice: neighbour rank of the global interslice bandwidth")
          .value("normalize", &O::normalize)
          .help("multislice: z-score each node's trace across probes: true | false")
          .choice("multislice_mode", &O::multislice_mode,
                  names_of({MultisliceMode::scalable, MultisliceMode::faithful}),
                  quoted_names({MultisliceMode::faithful, MultisliceMode::scalable}))
          .help("multislice kernel: scalable | faithful")
          .value("interslice_edges", &O::interslice_edges, between(0, kMaxNeighbours),
                 "integers in [0, 100000] (0: interslice_knn)")
          .help("scalable: nearest slice-points kept per node (0: interslice_knn)")
          .value("time_edge_weight", &O::time_edge_weight, finite_at_least(0), "finite values >= 0")
          .help("scalable: weight of same-unit edges between adjacent steps (0: none)")
          .value("epoch_edge_weight", &O::epoch_edge_weight, finite_at_least(0), "finite values >= 0")
          .help("scalable: weight of same-unit edges between adjacent epochs (0: none)")
          .value("memory_budget_gb", &O::memory_budget_gb, finite_above(0), "finite values > 0")
          .help("faithful: refuse inputs whose kernel needs more memory than this")
          .choice("nan_policy", &O::nan_policy, names_of({NanPolicy::error, NanPolicy::drop_node, NanPolicy::zero}),
                  quoted_names({NanPolicy::error, NanPolicy::drop_node, NanPolicy::zero}))
          .help("NaN/Inf in a trace: error | drop-node | zero")
          .value("n_landmark", &O::n_landmark, [](int v) { return v == 0 || (v >= 2 && v <= 1000000); },
                 "0 (no landmarks) or integers in [2, 1000000]")
          .help("use landmarks above this many nodes (0: never)")
          .value("n_svd", &O::n_svd, between(1, 10000), "integers in [1, 10000]")
          .help("eigenvectors used to cluster nodes into landmarks")
          .value("svd_power_iterations", &O::svd_power_iterations, between(0, 50), "integers in [0, 50]")
          .help("randomized eigensolver passes for those eigenvectors")
          .value("t", &O::t, between(0, 10000), "0 (automatic) or integers in [1, 10000]")
          .help("diffusion time (0: automatic, from the von Neumann entropy knee)")
          .value("t_max", &O::t_max, between(3, 10000), "integers in [3, 10000]")
          .help("largest t considered by the automatic choice")
          .value("gamma", &O::gamma, between(-1, 1), "[-1, 1]")
          .help("potential: 1 = log, 0 = square root, any value in [-1, 1]")
          .value("n_components", &O::n_components, between(2, 3), "2 or 3")
          .help("embedding dimensions: 2 or 3")
          .choice("mds", &O::mds, names_of({MdsMethod::classic, MdsMethod::metric}),
                  quoted_names({MdsMethod::classic, MdsMethod::metric}))
          .help("classic | metric")
          .choice("mds_solver", &O::mds_solver, names_of({MdsSolver::smacof, MdsSolver::sgd}),
                  quoted_names({MdsSolver::smacof, MdsSolver::sgd}))
          .help("metric MDS solver: smacof | sgd")
          .value("mds_max_iter", &O::mds_max_iter, between(1, 1000000), "integers in [1, 1000000]")
          .help("SMACOF iteration cap")
          .value("mds_tol", &O::mds_tol, finite_at_least(0), "finite values >= 0")
          .help("SMACOF stop: relative stress improvement below this")
          .value("sgd_epochs", &O::sgd_epochs, between(1, 100000), "integers in [1, 100000]")
          .help("SGD-MDS passes over all pairs")
          .value("sgd_eps", &O::sgd_eps, [](double v) { return v > 0 && v <= 1; }, "(0, 1]")
          .help("SGD-MDS final step size")
          .value("seed", &O::seed, nullptr, "integers in [0, 18446744073709551615]")
          .help("random seed (landmarks, SGD-MDS)")
          .value("threads", &O::threads, between(0, 1024), "integers in [0, 1024] (0: all hardware threads)")
          .help("worker threads (0: all cores)"));
  return t;
}

std::string option_allowed(const std::string& field) {
  const auto* e = detail::option_keys().find(field);
  return e ? e->allowed : "";
}

void Options::validate() const { detail::option_keys().validate(*this); }

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
