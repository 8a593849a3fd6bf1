#include "data/option_table.hpp"

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

#include "util/config_json.hpp"
#include "mmphate/error.hpp"

namespace mmphate::cli {
namespace {

// Integers are read into a wide type and range-checked: a value the field cannot hold is an
// error naming the option, the value and the allowed range (it used to wrap: --knn 4294967297
// ran with knn 1).
int to_int(const std::string& name, const std::string& v) {
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || std::isspace(static_cast<unsigned char>(v[0])))
    throw Error("--" + name + " expects an integer, got '" + v + "'");
  if (errno == ERANGE || x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max())
    throw Error("invalid option " + name + " = " + v + ": allowed " + option_allowed(name));
  return static_cast<int>(x);
}

std::uint64_t to_seed(const std::string& v) {
  // strtoull alone accepts "-1" (as 2^64 - 1): digits only.
  errno = 0;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || errno == ERANGE)
    throw Error("invalid option seed = " + v + ": allowed " + option_allowed("seed"));
  return x;
}

double to_double(const std::string& name, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0') throw Error("--" + name + " expects a number, got '" + v + "'");
  return x;
}

std::string num(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

#define INT_FLAG(field, help) \
  Flag{#field, help, [](Options& o, const std::string& v) { o.field = to_int(#field, v); }, \
       [](const Options& o) { return std::to_string(o.field); }}
#define DOUBLE_FLAG(field, help) \
  Flag{#field, help, [](Options& o, const std::string& v) { o.field = to_double(#field, v); }, \
       [](const Options& o) { return num(o.field); }}

}  // namespace

const std::vector<Flag>& option_flags() {
  static const std::vector<Flag> flags = {
      INT_FLAG(knn, "neighbours defining each point's kernel bandwidth (plain PHATE)"),
      DOUBLE_FLAG(decay, "alpha of the alpha-decay kernel"),
      DOUBLE_FLAG(thresh, "drop kernel entries below this value"),
      INT_FLAG(n_pca, "PCA to this many dimensions first when the input is wider (0: never)"),
      Flag{"knn_method", "nearest-neighbour back end: auto | exact | kdtree",
           [](Options& o, const std::string& v) { o.knn_method = parse_knn_method(v); },
           [](const Options& o) { return std::string(to_string(o.knn_method)); }},
      INT_FLAG(intraslice_knn, "multislice: neighbours for the intraslice bandwidth"),
      INT_FLAG(interslice_knn, "multislice: neighbour rank of the global interslice bandwidth"),
      Flag{"normalize", "multislice: z-score each node's trace across probes: true | false",
           [](Options& o, const std::string& v) {
             if (v == "true" || v == "1") o.normalize = true;
             else if (v == "false" || v == "0") o.normalize = false;
             else throw Error("--normalize expects true or false, got '" + v + "'");
           },
           [](const Options& o) { return std::string(o.normalize ? "true" : "false"); }},
      Flag{"multislice_mode", "multislice kernel: scalable | faithful",
           [](Options& o, const std::string& v) { o.multislice_mode = parse_multislice_mode(v); },
           [](const Options& o) { return std::string(to_string(o.multislice_mode)); }},
      INT_FLAG(interslice_edges, "scalable: nearest slice-points kept per node (0: interslice_knn)"),
      DOUBLE_FLAG(time_edge_weight, "scalable: weight of same-unit edges between adjacent steps (0: none)"),
      DOUBLE_FLAG(epoch_edge_weight, "scalable: weight of same-unit edges between adjacent epochs (0: none)"),
      DOUBLE_FLAG(memory_budget_gb, "faithful: refuse inputs whose kernel needs more memory than this"),
      Flag{"nan_policy", "NaN/Inf in a trace: error | drop-node | zero",
           [](Options& o, const std::string& v) { o.nan_policy = parse_nan_policy(v); },
           [](const Options& o) { return std::string(to_string(o.nan_policy)); }},
      INT_FLAG(n_landmark, "use landmarks above this many nodes (0: never)"),
      INT_FLAG(n_svd, "eigenvectors used to cluster nodes into landmarks"),
      INT_FLAG(svd_power_iterations, "randomized eigensolver passes for those eigenvectors"),
      INT_FLAG(t, "diffusion time (0: automatic, from the von Neumann entropy knee)"),
      INT_FLAG(t_max, "largest t considered by the automatic choice"),
      DOUBLE_FLAG(gamma, "potential: 1 = log, 0 = square root, any value in [-1, 1]"),
      INT_FLAG(n_components, "embedding dimensions: 2 or 3"),
      Flag{"mds", "classic | metric",
           [](Options& o, const std::string& v) { o.mds = parse_mds_method(v); },
           [](const Options& o) { return std::string(to_string(o.mds)); }},
      Flag{"mds_solver", "metric MDS solver: smacof | sgd",
           [](Options& o, const std::string& v) { o.mds_solver = parse_mds_solver(v); },
           [](const Options& o) { return std::string(to_string(o.mds_solver)); }},
      INT_FLAG(mds_max_iter, "SMACOF iteration cap"),
      DOUBLE_FLAG(mds_tol, "SMACOF stop: relative stress improvement below this"),
      INT_FLAG(sgd_epochs, "SGD-MDS passes over all pairs"),
      DOUBLE_FLAG(sgd_eps, "SGD-MDS final step size"),
      Flag{"seed", "random seed (landmarks, SGD-MDS)",
           [](Options& o, const std::string& v) { o.seed = to_seed(v); },
           [](const Options& o) { return std::to_string(o.seed); }},
      INT_FLAG(threads, "worker threads (0: all cores)"),
  };
  return flags;
}

bool apply_option(Options& opt, const std::string& name, const std::string& value) {
  for (const auto& f : option_flags())
    if (f.name == name) {
      f.set(opt, value);
      return true;
    }
  return false;
}

std::string option_help(const Options& defaults) {
  std::ostringstream os;
  for (const auto& f : option_flags()) {
    std::string left = "  --" + f.name + " V";
    left.resize(std::max<std::size_t>(left.size() + 1, 24), ' ');
    os << left << f.help << " (default: " << f.get(defaults) << ")\n";
  }
  return os.str();
}

namespace {

std::string valid_keys() {
  std::string names;
  for (const auto& f : option_flags()) names += (names.empty() ? "" : ", ") + f.name;
  return names;
}

}  // namespace

void apply_options_json(Options& opt, const nlohmann::json& config, const std::string& source) {
  if (!config.is_object()) throw Error(source + ": expected a JSON object of option names and values");
  for (const auto& [key, value] : config.items()) {
    const Flag* flag = nullptr;
    for (const auto& f : option_flags())
      if (f.name == key) flag = &f;
    if (!flag) throw Error(source + ": unknown key '" + key + "' (valid keys: " + valid_keys() + ")");
    std::string text;
    if (value.is_string()) text = value.get<std::string>();
    else if (value.is_boolean()) text = value.get<bool>() ? "true" : "false";
    else if (value.is_number_integer() || value.is_number_unsigned()) text = value.dump();  // exact, never wrapped
    else if (value.is_number_float()) {
      std::ostringstream os;
      os.precision(17);
      os << value.get<double>();
      text = os.str();
    } else {
      throw Error(source + ": key '" + key + "' has a value of the wrong type (" + value.type_name() + ")");
    }
    try {
      flag->set(opt, text);
    } catch (const Error& e) {
      throw Error(source + ": key '" + key + "': " + e.what());
    }
  }
}

void apply_options_file(Options& opt, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open config '" + path + "'");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Not only parse_error: a number beyond double (1e999) is json's out_of_range, which leaked.
  apply_options_json(opt, detail::parse_untrusted_json(text, path), path);
}

nlohmann::json options_to_json(const Options& opt) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : option_flags()) {
    const std::string v = f.get(opt);
    char* end = nullptr;
    const double num = std::strtod(v.c_str(), &end);
    if (v == "true" || v == "false") j[f.name] = (v == "true");
    else if (!v.empty() && *end == '\0' && v.find_first_of(".eEni") != std::string::npos) j[f.name] = num;
    else if (!v.empty() && *end == '\0') j[f.name] = v[0] == '-' ? nlohmann::json(std::stoll(v)) : nlohmann::json(std::stoull(v));
    else j[f.name] = v;
  }
  return j;
}

}  // namespace mmphate::cli
