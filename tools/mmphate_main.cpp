// mmphate: command-line front end of the numeric core.
//   mmphate phate IN.npy OUT.npy [options]      plain PHATE on an [n, d] matrix
//   mmphate embed TRACE.npy OUT_DIR [options]   multislice PHATE on a hidden-state trace
// Progress goes to stderr, a JSON summary to stdout; errors are one line, exit status 1
// (2 for usage errors).
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_options.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "mmphate/allocator.hpp"
#include "mmphate/npy.hpp"
#include "mmphate/phate.hpp"

using namespace mmphate;
using nlohmann::json;

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* kTopUsage =
    "usage: mmphate <command> [arguments]\n"
    "\n"
    "commands:\n"
    "  phate IN.npy OUT.npy [options]     plain PHATE on an [n, d] float matrix\n"
    "  embed TRACE.npy OUT_DIR [options]  multislice PHATE (M-PHATE / MM-PHATE) on a trace\n"
    "                                     [epochs, steps, units, probes] or [slices, units, probes]\n"
    "\n"
    "Run 'mmphate <command> --help' for the options of a command.\n";

double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0.0;
}

struct Parsed {
  std::vector<std::string> positional;
  Options opt;
  bool quiet = false;
  bool help = false;
};

Parsed parse(int argc, char** argv, Options defaults) {
  Parsed p;
  p.opt = defaults;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") { p.help = true; continue; }
    if (a == "--quiet" || a == "-q") { p.quiet = true; continue; }
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      const auto eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else {
        if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
        value = argv[++i];
      }
      if (!cli::apply_option(p.opt, name, value)) {
        std::string names;
        for (const auto& f : cli::option_flags()) names += (names.empty() ? "--" : ", --") + f.name;
        throw UsageError("unknown option --" + name + " (valid options: " + names + ", --quiet, --help)");
      }
      continue;
    }
    p.positional.push_back(a);
  }
  return p;
}

// Fails before any computation when the output cannot be created.
void require_writable(const std::string& path) {
  const std::string probe = path + ".tmp";
  {
    std::ofstream out(probe, std::ios::binary | std::ios::app);
    if (!out) throw Error("cannot write '" + path + "' (missing directory or no permission)");
  }
  std::remove(probe.c_str());
}

json options_json(const Options& o) {
  json j;
  for (const auto& f : cli::option_flags()) j[f.name] = f.get(o);
  return j;
}

json summary_json(const EmbedResult& r, const Options& o, double wall) {
  json j;
  j["nodes"] = r.n_nodes;
  j["n_components"] = o.n_components;
  j["t"] = r.t;
  j["t_automatic"] = r.t_automatic;
  j["landmarks_used"] = r.landmarks_used;
  j["n_landmarks"] = r.n_landmarks;
  j["kernel_nnz"] = r.kernel_nnz;
  j["mds_iterations"] = r.mds_iterations;
  if (!std::isnan(r.interslice_eps)) j["interslice_eps"] = r.interslice_eps;
  json times = json::object();
  for (const auto& [name, s] : r.times) times[name] = s;
  j["stage_seconds"] = times;
  j["wall_seconds"] = wall;
  j["peak_rss_mb"] = peak_rss_mb();
  j["options"] = options_json(o);
  return j;
}

int cmd_phate(int argc, char** argv) {
  Parsed p = parse(argc, argv, Options::phate());
  if (p.help) {
    std::cout << "usage: mmphate phate IN.npy OUT.npy [options]\n\n"
                 "Plain PHATE of the rows of IN.npy ([n, d], float32 or float64). Writes the embedding\n"
                 "[n, n_components] float64 to OUT.npy and a JSON summary to stdout.\n\noptions:\n"
              << cli::option_help(Options::phate())
              << "  --quiet               no progress on stderr\n  --help                this text\n";
    return 0;
  }
  if (p.positional.size() != 2) throw UsageError("phate needs IN.npy and OUT.npy (see mmphate phate --help)");
  if (!p.quiet) logger()->set_level(spdlog::level::info);
  p.opt.validate();
  const auto t0 = std::chrono::steady_clock::now();
  const RowMatrix X = read_npy_matrix(p.positional[0]);
  require_writable(p.positional[1]);
  logger()->info("PHATE on {} points x {} dims", X.rows(), X.cols());
  const EmbedResult r = run_phate(X, p.opt);
  write_npy_matrix(p.positional[1], r.embedding);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json s = summary_json(r, p.opt, wall);
  s["input"] = p.positional[0];
  s["output"] = p.positional[1];
  s["knn_method"] = to_string(r.knn_method);
  std::cout << s.dump(2) << std::endl;
  return 0;
}

int cmd_embed(int argc, char** argv) {
  Parsed p = parse(argc, argv, Options::mphate());
  if (p.help) {
    std::cout << "usage: mmphate embed TRACE.npy OUT_DIR [options]\n\n"
                 "Multislice PHATE (M-PHATE defaults) of a hidden-state trace [epochs, steps, units, probes]\n"
                 "or [slices, units, probes]. Nodes are (epoch, step, unit) triples in epoch-major order.\n"
                 "Writes OUT_DIR/embedding.npy [nodes, n_components], OUT_DIR/nodes.npy [nodes, 3] int64\n"
                 "(epoch, step, unit) and OUT_DIR/summary.json; the summary is also printed.\n\noptions:\n"
              << cli::option_help(Options::mphate())
              << "  --quiet               no progress on stderr\n  --help                this text\n";
    return 0;
  }
  if (p.positional.size() != 2) throw UsageError("embed needs TRACE.npy and OUT_DIR (see mmphate embed --help)");
  if (!p.quiet) logger()->set_level(spdlog::level::info);
  p.opt.validate();
  const std::string out_dir = p.positional[1];
  const auto t0 = std::chrono::steady_clock::now();
  const NpyArray a = read_npy(p.positional[0]);
  if (a.type != NpyType::float32 && a.type != NpyType::float64)
    throw Error(p.positional[0] + ": expected float32 or float64 hidden states, got " + npy_type_name(a.type));
  Index epochs = 1, steps = 1, units = 0, probes = 0;
  if (a.shape.size() == 4) {
    epochs = static_cast<Index>(a.shape[0]); steps = static_cast<Index>(a.shape[1]);
    units = static_cast<Index>(a.shape[2]); probes = static_cast<Index>(a.shape[3]);
  } else if (a.shape.size() == 3) {
    epochs = static_cast<Index>(a.shape[0]);
    units = static_cast<Index>(a.shape[1]); probes = static_cast<Index>(a.shape[2]);
  } else {
    throw Error(p.positional[0] + ": expected a trace of shape [epochs, steps, units, probes] or "
                "[slices, units, probes], got " + std::to_string(a.shape.size()) + " dimension(s)");
  }
  if (epochs * steps * units == 0 || probes == 0)
    throw Error(p.positional[0] + ": the trace is empty (a dimension is 0)");
  const auto values = a.to_double();
  RowMatrix F(epochs * steps * units, probes);
  std::copy(values.begin(), values.end(), F.data());
  if (::mkdir(out_dir.c_str(), 0755) != 0 && errno != EEXIST)
    throw Error("cannot create output directory '" + out_dir + "'");
  require_writable(out_dir + "/embedding.npy");
  logger()->info("multislice PHATE on {} epochs x {} steps x {} units ({} nodes), {} probes", epochs, steps,
                 units, F.rows(), probes);
  const EmbedResult r = run_multislice(F, epochs * steps, units, p.opt);

  std::vector<std::int64_t> nodes;
  nodes.reserve(static_cast<std::size_t>(F.rows()) * 3);
  for (Index e = 0; e < epochs; ++e)
    for (Index s = 0; s < steps; ++s)
      for (Index u = 0; u < units; ++u) { nodes.push_back(e); nodes.push_back(s); nodes.push_back(u); }
  write_npy_matrix(out_dir + "/embedding.npy", r.embedding);
  write_npy(out_dir + "/nodes.npy", nodes.data(), {static_cast<std::size_t>(F.rows()), 3});
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json s = summary_json(r, p.opt, wall);
  s["input"] = p.positional[0];
  s["shape"] = {{"epochs", epochs}, {"steps", steps}, {"units", units}, {"probes", probes}};
  s["constant_nodes"] = r.constant_nodes;
  {
    std::ofstream out(out_dir + "/summary.json");
    if (!out) throw Error("cannot write '" + out_dir + "/summary.json'");
    out << s.dump(2) << "\n";
  }
  std::cout << s.dump(2) << std::endl;
  logger()->info("wrote {}/embedding.npy, nodes.npy, summary.json", out_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kTopUsage;
    return argc < 2 ? 2 : 0;
  }
  mmphate::keep_freed_memory_mapped();
  const std::string cmd = argv[1];
  try {
    if (cmd == "phate") return cmd_phate(argc, argv);
    if (cmd == "embed") return cmd_embed(argc, argv);
    throw UsageError("unknown command '" + cmd + "' (commands: phate, embed)");
  } catch (const UsageError& e) {
    std::cerr << "mmphate: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mmphate: error: " << e.what() << std::endl;
    return 1;
  }
}
