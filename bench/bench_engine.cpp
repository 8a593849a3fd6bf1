// End-to-end engine benchmark: plain PHATE on generated tree data, or multislice PHATE on a
// generated trace, with per-stage time and peak memory. One configuration per process so
// that peak RSS is the configuration's own.
//
//   bench_engine phate N DIMS [--threads T] [--knn_method auto|exact|kdtree]
//   bench_engine multislice EPOCHS STEPS UNITS PROBES [--multislice_mode faithful|scalable]
//                (scalable defaults, Options::mmphate_scalable())
//   bench_engine fixture PATH/input.npy (multislice fixture, M-PHATE defaults)
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "mmphate/allocator.hpp"
#include "util/memory.hpp"
#include "mmphate/npy.hpp"
#include "mmphate/phate.hpp"
#include "testing/synthetic.hpp"

using namespace mmphate;


int main(int argc, char** argv) {
  mmphate::reexec_with_huge_pages(argv);
  if (argc < 3) {
    std::cerr << "usage: bench_engine phate N DIMS | multislice EPOCHS STEPS UNITS PROBES | fixture INPUT.npy "
                 "[--threads T] [--knn_method M] [--n_landmark L] [--mds_solver S]\n";
    return 2;
  }
  mmphate::keep_freed_memory_mapped();
  const std::string mode = argv[1];
  Options opt = mode == "phate" ? Options::phate()
                : mode == "multislice" ? Options::mmphate_scalable() : Options::mphate();
  opt.threads = 2;
  int positional_end = argc;
  for (int i = 2; i < argc; ++i)
    if (std::string(argv[i]).rfind("--", 0) == 0) { positional_end = i; break; }
  for (int i = positional_end; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads") opt.threads = std::stoi(v);
    else if (k == "--knn_method") opt.knn_method = parse_knn_method(v);
    else if (k == "--n_landmark") opt.n_landmark = std::stoi(v);
    else if (k == "--mds_solver") opt.mds_solver = parse_mds_solver(v);
    else if (k == "--multislice_mode") opt.multislice_mode = parse_multislice_mode(v);
    else if (k == "--interslice_edges") opt.interslice_edges = std::stoi(v);
    else if (k == "--n_svd") opt.n_svd = std::stoi(v);
    else { std::cerr << "unknown flag " << k << "\n"; return 2; }
  }
  nlohmann::json out;
  out["mode"] = mode;
  const auto t0 = std::chrono::steady_clock::now();
  EmbedResult r;
  if (mode == "phate") {
    const Index n = std::stol(argv[2]), d = std::stol(argv[3]);
    const RowMatrix X = make_tree_data(n, d, 20, 1);
    out["shape"] = {n, d};
    const auto t1 = std::chrono::steady_clock::now();
    r = run_phate(X, opt);
    out["generate_s"] = std::chrono::duration<double>(t1 - t0).count();
    out["knn_method"] = to_string(r.knn_method);
  } else if (mode == "multislice") {
    TraceShape shape;
    shape.epochs = std::stol(argv[2]);
    shape.steps = std::stol(argv[3]);
    shape.units = std::stol(argv[4]);
    shape.probes = std::stol(argv[5]);
    const RowMatrix F = make_multislice_trace(shape.slices(), shape.units, shape.probes, 4, 1);
    out["shape"] = {shape.epochs, shape.steps, shape.units, shape.probes};
    out["multislice_mode"] = to_string(opt.multislice_mode);
    const auto t1 = std::chrono::steady_clock::now();
    out["generate_s"] = std::chrono::duration<double>(t1 - t0).count();
    r = run_multislice(F, shape, opt);
  } else if (mode == "fixture") {
    NpyArray a = read_npy(argv[2]);
    const auto v = a.to_double();
    const Index units = static_cast<Index>(a.shape[a.shape.size() - 2]);
    const Index probes = static_cast<Index>(a.shape.back());
    RowMatrix F(static_cast<Index>(v.size()) / probes, probes);
    std::copy(v.begin(), v.end(), F.data());
    out["input"] = argv[2];
    r = run_multislice(F, F.rows() / units, units, opt);
  } else {
    std::cerr << "unknown mode " << mode << "\n";
    return 2;
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out["nodes"] = r.n_nodes;
  out["kernel_nnz"] = r.kernel_nnz;
  out["threads"] = opt.threads;
  out["t"] = r.t;
  out["landmarks"] = r.n_landmarks;
  out["mds_iterations"] = r.mds_iterations;
  nlohmann::json stages = nlohmann::json::object();
  for (const auto& [name, s] : r.times) stages[name] = s;
  out["stage_s"] = stages;
  out["total_s"] = total;
  out["peak_rss_mb"] = peak_rss_mb();
  std::cout << out.dump() << std::endl;
  return 0;
}
