// Faithful vs scalable multislice kernels on one trace: time, memory of the whole run and the
// community-structure scores of each embedding, plus their 10-NN agreement.
//   bench_modes TRACE.npy [--threads T] [--n_landmark L] [--mds_solver S] [--time_edge_weight W]
//               [--epoch_edge_weight W] [--interslice_knn K] [--interslice_edges K] [--n_svd N]   (overrides for the scalable run)
// TRACE is [epochs, steps, units, probes] or [slices, units, probes].
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "mmphate/agreement.hpp"
#include "mmphate/allocator.hpp"
#include "mmphate/npy.hpp"
#include "mmphate/phate.hpp"
#include "mmphate/scores.hpp"

using namespace mmphate;

int main(int argc, char** argv) {
  mmphate::reexec_with_huge_pages(argv);
  if (argc < 2) {
    std::cerr << "usage: bench_modes TRACE.npy [--threads T]\n";
    return 2;
  }
  keep_freed_memory_mapped();
  int threads = 2;
  Options scalable = Options::mmphate_scalable();
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads") threads = std::stoi(v);
    else if (k == "--n_landmark") scalable.n_landmark = std::stoi(v);
    else if (k == "--mds_solver") scalable.mds_solver = parse_mds_solver(v);
    else if (k == "--time_edge_weight") scalable.time_edge_weight = std::stod(v);
    else if (k == "--epoch_edge_weight") scalable.epoch_edge_weight = std::stod(v);
    else if (k == "--interslice_knn") scalable.interslice_knn = std::stoi(v);
    else if (k == "--interslice_edges") scalable.interslice_edges = std::stoi(v);
    else if (k == "--n_svd") scalable.n_svd = std::stoi(v);
    else { std::cerr << "unknown flag " << k << "\n"; return 2; }
  }
  const NpyArray a = read_npy(argv[1]);
  TraceShape shape;
  if (a.shape.size() == 4) {
    shape.epochs = a.shape[0]; shape.steps = a.shape[1]; shape.units = a.shape[2]; shape.probes = a.shape[3];
  } else {
    shape.epochs = a.shape[0]; shape.units = a.shape[1]; shape.probes = a.shape[2];
  }
  const auto v = a.to_double();
  RowMatrix raw(shape.nodes(), shape.probes);
  std::copy(v.begin(), v.end(), raw.data());

  nlohmann::json out;
  out["input"] = argv[1];
  out["nodes"] = shape.nodes();
  RowMatrix emb[2];
  const char* names[2] = {"faithful", "scalable"};
  for (int m = 0; m < 2; ++m) {
    Options opt = m == 0 ? Options::mphate() : scalable;
    opt.threads = threads;
    const auto t0 = std::chrono::steady_clock::now();
    const PreparedTrace tr = prepare_trace(raw, shape, opt);
    const EmbedResult r = run_multislice(tr, opt);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ScoreOptions so;
    so.threads = threads;
    const CommunityScores sc = community_scores(tr.features, tr.index, r.embedding, so);
    emb[m] = r.embedding;
    out[names[m]] = {{"seconds", secs}, {"t", r.t}, {"landmarks", r.n_landmarks}, {"kernel_nnz", r.kernel_nnz},
                     {"scores", scores_to_json(sc)}};
  }
  out["agreement_k10_faithful_vs_scalable"] = knn_agreement(emb[0], emb[1], 10, threads);
  std::cout << out.dump() << std::endl;
  return 0;
}
