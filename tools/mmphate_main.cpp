// mmphate: command-line front end of the numeric core.
//   mmphate phate IN.npy OUT.npy [options]      plain PHATE on an [n, d] matrix
//   mmphate embed TRACE.npy OUT_DIR [options]   multislice PHATE on a hidden-state trace
// Progress goes to stderr, a JSON summary to stdout; errors are one line, exit status 1
// (2 for usage errors).
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <iostream>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/atomic_file.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "mmphate/allocator.hpp"
#include "util/memory.hpp"
#include "data/option_table.hpp"
#include "mmphate/npy.hpp"
#include "mmphate/phate.hpp"
#include "mmphate/scores.hpp"
#include "view_commands.hpp"

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
    "  score TRACE.npy EMBEDDING.npy      community-structure scores of an embedding of a trace\n"
    "  config [phate|reference|scalable]  print a preset's options as JSON (for --config files)\n"
    "  render RUN_DIR OUT_DIR             PNG/SVG figures of a monitored run (docs/VIEWER.md)\n"
    "  export --tensorboard RUN_DIR OUT   TensorBoard projector files of a monitored run\n"
    "  serve RUN_DIR [--port N]           loopback HTTP server for the web viewer (live runs)\n"
    "\n"
    "Run 'mmphate <command> --help' for the options of a command.\n";


struct Parsed {
  std::vector<std::string> positional;
  Options opt;
  bool quiet = false;
  bool help = false;
  std::map<std::string, std::string> extra;  // command-specific flags (e.g. --labels)
};

// `extra_names`: flags of the command itself, taking a value.
Parsed parse(int argc, char** argv, Options defaults, const std::vector<std::string>& extra_names = {}) {
  Parsed p;
  p.opt = defaults;
  // --config FILE.json applies before the other flags, whatever their order.
  for (int i = 2; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--config") cli::apply_options_file(p.opt, argv[i + 1]);
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") { p.help = true; continue; }
    if (a == "--quiet" || a == "-q") { p.quiet = true; continue; }
    if (a == "--config") { ++i; continue; }
    if (a.rfind("--", 0) == 0) {
      // --nan-policy and --nan_policy are the same flag.
      std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(std::min(a.find('='), a.size())), '-', '_');
      std::string name = a.substr(2);
      const auto eq = name.find('=');
      if (eq != std::string::npos) name = name.substr(0, eq);
      if (std::find(extra_names.begin(), extra_names.end(), name) != extra_names.end()) {
        if (eq != std::string::npos) {
          p.extra[name] = a.substr(2 + eq + 1);
        } else {
          if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
          p.extra[name] = argv[++i];
        }
        continue;
      }
    }
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
        for (const auto& e : extra_names) names += ", --" + e;
        throw UsageError("unknown option --" + name + " (valid options: " + names + ", --quiet, --help)");
      }
      continue;
    }
    p.positional.push_back(a);
  }
  return p;
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
  j["options"] = cli::options_to_json(o);
  return j;
}

int cmd_phate(int argc, char** argv) {
  Parsed p = parse(argc, argv, Options::phate());
  if (p.help) {
    std::cout << "usage: mmphate phate IN.npy OUT.npy [options]\n\n"
                 "Plain PHATE of the rows of IN.npy ([n, d], float32 or float64). Writes the embedding\n"
                 "[n, n_components] float64 to OUT.npy and a JSON summary to stdout.\n\noptions:\n"
              << cli::option_help(Options::phate())
              << "  --config FILE.json    options from a JSON object (configs/), applied before flags\n"
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

// Options preset for multislice commands: "--preset scalable" (default) or "reference".
Options multislice_preset(int argc, char** argv) {
  std::string preset = "scalable";
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--preset" && i + 1 < argc) preset = argv[i + 1];
    else if (a.rfind("--preset=", 0) == 0) preset = a.substr(9);
  }
  if (preset == "scalable") return Options::mmphate_scalable();
  if (preset == "reference") return Options::mphate();
  throw UsageError("invalid --preset '" + preset + "': allowed 'scalable', 'reference'");
}


// A command's integer flag, read wide and range-checked (std::stol accepted "-5" and threw a
// bare "stol" for junk): the error names the flag, the value and the allowed range.
long long parse_integer(const std::string& flag, const std::string& text, long long lo, long long hi,
                        const std::string& allowed) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || std::isspace(static_cast<unsigned char>(text[0])) || errno == ERANGE ||
      v < lo || v > hi)
    throw Error("invalid option --" + flag + " = '" + text + "': allowed " + allowed);
  return v;
}

std::vector<int> parse_ks(const std::string& text) {
  std::vector<int> ks;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    ks.push_back(static_cast<int>(parse_integer("k", item, 1, 100000, "integers in [1, 100000] separated by commas")));
  if (ks.empty()) throw Error("invalid option --k = '" + text + "': allowed integers in [1, 100000] separated by commas");
  return ks;
}

Index parse_max_queries(const std::string& text) {
  return parse_integer("max_queries", text, 0, Index{1} << 40, "integers in [0, 1099511627776] (0: every node)");
}

const char* kEmbedHelp =
    "usage: mmphate embed TRACE.npy OUT_DIR [options]\n\n"
    "Multislice PHATE of a hidden-state trace [epochs, steps, units, probes] or [slices, units, probes].\n"
    "Nodes are (epoch, step, unit) triples in epoch-major order. Writes to OUT_DIR:\n"
    "  embedding.npy          [nodes, n_components] float64\n"
    "  nodes.npy              [nodes, 3] int64: epoch, step, unit of each embedding row\n"
    "  most_active_class.npy  [nodes] int64, with --labels\n"
    "  summary.json           parameters, t, timings, peak memory, community-structure scores\n"
    "The summary is also printed on stdout.\n\n"
    "  --preset P             scalable (default: kNN interslice kernel, 2000 landmarks) or\n"
    "                         reference (the Python reference's faithful kernel and defaults)\n"
    "  --labels LABELS.npy    class of each probe (int): adds the most active class per node\n"
    "  --k LIST               neighbourhood sizes of the scores (default 10,40)\n"
    "  --max_queries N        nodes sampled per score family (default 20000, 0: all)\n\noptions:\n";

int cmd_embed(int argc, char** argv) {
  const Options defaults = multislice_preset(argc, argv);
  Parsed p = parse(argc, argv, defaults, {"preset", "labels", "k", "max_queries"});
  if (p.help) {
    std::cout << kEmbedHelp << cli::option_help(defaults)
              << "  --config FILE.json    options from a JSON object (configs/), applied before flags\n"
              << "  --quiet               no progress on stderr\n  --help                this text\n";
    return 0;
  }
  if (p.positional.size() != 2) throw UsageError("embed needs TRACE.npy and OUT_DIR (see mmphate embed --help)");
  if (!p.quiet) logger()->set_level(spdlog::level::info);
  p.opt.validate();
  ScoreOptions so;
  so.threads = p.opt.threads;
  if (p.extra.count("k")) so.ks = parse_ks(p.extra["k"]);
  if (p.extra.count("max_queries")) so.max_queries = parse_max_queries(p.extra["max_queries"]);
  const std::string out_dir = p.positional[1];
  const auto t0 = std::chrono::steady_clock::now();
  TraceShape shape;
  const RowMatrix raw = read_trace_npy(p.positional[0], shape);
  std::vector<std::int64_t> labels;
  if (p.extra.count("labels")) {
    const NpyArray la = read_npy(p.extra["labels"]);
    labels = la.to_int64();
    if (static_cast<Index>(labels.size()) != shape.probes)
      throw Error(p.extra["labels"] + ": " + std::to_string(labels.size()) + " labels for " +
                  std::to_string(shape.probes) + " probes (one class per probe required)");
  }
  if (::mkdir(out_dir.c_str(), 0755) != 0 && errno != EEXIST)
    throw Error("cannot create output directory '" + out_dir + "'");
  require_writable(out_dir + "/embedding.npy");
  logger()->info("multislice PHATE ({}) on {} epochs x {} steps x {} units ({} nodes), {} probes",
                 to_string(p.opt.multislice_mode), shape.epochs, shape.steps, shape.units, shape.nodes(), shape.probes);

  const PreparedTrace trace = prepare_trace(raw, shape, p.opt);
  const EmbedResult r = run_multislice(trace, p.opt);
  const Index n = r.embedding.rows();

  std::vector<std::int64_t> nodes;
  nodes.reserve(static_cast<std::size_t>(n) * 3);
  for (Index i = 0; i < n; ++i) {
    nodes.push_back(r.nodes.epoch(i));
    nodes.push_back(r.nodes.step(i));
    nodes.push_back(r.nodes.unit(i));
  }
  write_npy_matrix(out_dir + "/embedding.npy", r.embedding);
  write_npy(out_dir + "/nodes.npy", nodes.data(), {static_cast<std::size_t>(n), 3});
  if (!labels.empty()) {
    const std::vector<int> cls = most_active_class(trace.features, labels);
    std::vector<std::int64_t> c64(cls.begin(), cls.end());
    write_npy(out_dir + "/most_active_class.npy", c64.data(), {c64.size()});
  }
  json scores;
  {
    StageTimes st_times;
    ScopedStage st(st_times, "scores");
    scores = scores_to_json(community_scores(trace.features, trace.index, r.embedding, so));
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json s = summary_json(r, p.opt, wall);
  s["input"] = p.positional[0];
  s["preset"] = p.extra.count("preset") ? p.extra["preset"] : "scalable";
  s["shape"] = {{"epochs", shape.epochs}, {"steps", shape.steps}, {"units", shape.units}, {"probes", shape.probes}};
  s["constant_nodes"] = r.constant_nodes;
  s["dropped_nodes"] = r.dropped_nodes;
  s["nonfinite_values"] = r.nonfinite_values;
  s["scores"] = scores;
  write_file_atomic(out_dir + "/summary.json", s.dump(2) + "\n");
  std::cout << s.dump(2) << std::endl;
  logger()->info("wrote {}/embedding.npy, nodes.npy, summary.json", out_dir);
  return 0;
}

int cmd_config(int argc, char** argv) {
  const std::string preset = argc >= 3 ? argv[2] : "scalable";
  Options o;
  if (preset == "phate") o = Options::phate();
  else if (preset == "reference") o = Options::mphate();
  else if (preset == "scalable") o = Options::mmphate_scalable();
  else throw UsageError("config: unknown preset '" + preset + "' (allowed: phate, reference, scalable)");
  std::cout << cli::options_to_json(o).dump(2) << std::endl;
  return 0;
}

int cmd_score(int argc, char** argv) {
  const Options defaults = multislice_preset(argc, argv);
  Parsed p = parse(argc, argv, defaults, {"preset", "nodes", "k", "max_queries"});
  if (p.help) {
    std::cout << "usage: mmphate score TRACE.npy EMBEDDING.npy [--nodes NODES.npy] [--k 10,40] [--max_queries N]\n\n"
                 "Community-structure scores (docs/SCORES.md): for each node, the overlap of its k nearest\n"
                 "neighbours in the z-scored trace and in the embedding, among the units of its slice\n"
                 "(intra-step) and among the slice-points of its unit (inter-step). EMBEDDING rows are the\n"
                 "trace's nodes in epoch-major order, or the rows listed in NODES.npy ([rows, 3]: epoch,\n"
                 "step, unit; as written by 'mmphate embed'). Prints JSON.\n";
    return 0;
  }
  if (p.positional.size() != 2) throw UsageError("score needs TRACE.npy and EMBEDDING.npy (see mmphate score --help)");
  ScoreOptions so;
  so.threads = p.opt.threads;
  if (p.extra.count("k")) so.ks = parse_ks(p.extra["k"]);
  if (p.extra.count("max_queries")) so.max_queries = parse_max_queries(p.extra["max_queries"]);
  TraceShape shape;
  const RowMatrix raw = read_trace_npy(p.positional[0], shape);
  const RowMatrix Y = read_npy_matrix(p.positional[1]);
  Options opt = p.opt;
  if (p.extra.count("nodes")) opt.nan_policy = NanPolicy::zero;  // rows are selected below
  PreparedTrace trace = prepare_trace(raw, shape, opt);
  if (p.extra.count("nodes")) {
    const NpyArray na = read_npy(p.extra["nodes"]);
    const auto v = na.to_int64();
    if (na.shape.size() != 2 || na.shape[1] != 3)
      throw Error(p.extra["nodes"] + ": expected [rows, 3] (epoch, step, unit)");
    NodeIndex idx;
    idx.shape = shape;
    idx.row_of.assign(static_cast<std::size_t>(shape.nodes()), -1);
    RowMatrix F(static_cast<Index>(na.shape[0]), shape.probes);
    for (std::size_t r = 0; r < na.shape[0]; ++r) {
      const std::int64_t e = v[3 * r], t = v[3 * r + 1], u = v[3 * r + 2];
      if (e < 0 || e >= shape.epochs || t < 0 || t >= shape.steps || u < 0 || u >= shape.units)
        throw Error(p.extra["nodes"] + ": row " + std::to_string(r) + " names a node outside the trace");
      const Index full = (e * shape.steps + t) * shape.units + u;
      idx.row_of[full] = static_cast<Index>(r);
      idx.full_id.push_back(full);
      F.row(static_cast<Index>(r)) = trace.features.row(full);
    }
    trace.features = F;
    trace.index = idx;
  }
  if (Y.rows() != trace.index.size())
    throw Error(p.positional[1] + ": " + std::to_string(Y.rows()) + " rows but the trace has " +
                std::to_string(trace.index.size()) + " nodes (pass --nodes NODES.npy for a subset)");
  json s = scores_to_json(community_scores(trace.features, trace.index, Y, so));
  s["trace"] = p.positional[0];
  s["embedding"] = p.positional[1];
  std::cout << s.dump(2) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  mmphate::reexec_with_huge_pages(argv);
  // Past a file-size limit (ulimit -f) the kernel's default is to kill the process mid-write,
  // leaving OUT.tmp behind; ignored, the write fails with EFBIG like a full disk, and
  // write_file_atomic removes the temporary and reports one error line.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kTopUsage;
    return argc < 2 ? 2 : 0;
  }
  mmphate::keep_freed_memory_mapped();
  const std::string cmd = argv[1];
  try {
    if (cmd == "phate") return cmd_phate(argc, argv);
    if (cmd == "embed") return cmd_embed(argc, argv);
    if (cmd == "score") return cmd_score(argc, argv);
    if (cmd == "config") return cmd_config(argc, argv);
    if (cmd == "render") return view::cmd_render(argc, argv);
    if (cmd == "export") return view::cmd_export(argc, argv);
    if (cmd == "serve") return view::cmd_serve(argc, argv);
    throw UsageError("unknown command '" + cmd + "' (commands: phate, embed, score, config, render, export, serve)");
  } catch (const view::UsageError& e) {
    std::cerr << "mmphate: " << e.what() << std::endl;
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "mmphate: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mmphate: error: " << e.what() << std::endl;
    return 1;
  }
}
