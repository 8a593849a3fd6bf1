// mmphate::core from another project: MM-PHATE on a hidden-state trace, then its
// community-structure scores. Usage: consumer_core [TRACE.npy]
// Without an argument the trace is generated: 6 epochs x 5 steps x 12 units x 30 probes, units in
// 3 communities that respond alike, the communities separating as "training" goes on.
#include <cmath>
#include <cstdio>
#include <exception>
#include <random>

#include <mmphate/mmphate.hpp>

namespace {

mmphate::RowMatrix generated_trace(mmphate::TraceShape& shape) {
  shape.epochs = 6;
  shape.steps = 5;
  shape.units = 12;
  shape.probes = 30;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  mmphate::RowMatrix profile(3, shape.probes);  // one response profile per community
  for (mmphate::Index i = 0; i < profile.size(); ++i) profile.data()[i] = normal(rng);
  // Row of node (epoch, step, unit): (epoch * steps + step) * units + unit.
  mmphate::RowMatrix raw(shape.nodes(), shape.probes);
  for (mmphate::Index e = 0; e < shape.epochs; ++e)
    for (mmphate::Index t = 0; t < shape.steps; ++t)
      for (mmphate::Index u = 0; u < shape.units; ++u) {
        const double strength = 0.3 + 0.3 * static_cast<double>(e) + 0.1 * std::sin(static_cast<double>(t));
        const mmphate::Index row = (e * shape.steps + t) * shape.units + u;
        for (mmphate::Index s = 0; s < shape.probes; ++s) raw(row, s) = strength * profile(u % 3, s) + normal(rng);
      }
  return raw;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    mmphate::TraceShape shape;
    const mmphate::RowMatrix raw = argc > 1 ? mmphate::read_trace_npy(argv[1], shape) : generated_trace(shape);
    mmphate::Options opt = mmphate::Options::mmphate_scalable();
    opt.threads = 1;
    opt.validate();
    const mmphate::EmbedResult r = mmphate::run_multislice(raw, shape, opt);

    const mmphate::PreparedTrace prepared = mmphate::prepare_trace(raw, shape, opt);
    const mmphate::CommunityScores scores = mmphate::community_scores(prepared.features, r.nodes, r.embedding);
    std::printf("trace %lld epochs x %lld steps x %lld units x %lld probes\n", static_cast<long long>(shape.epochs),
                static_cast<long long>(shape.steps), static_cast<long long>(shape.units),
                static_cast<long long>(shape.probes));
    std::printf("embedding %lld x %lld, t = %d%s, kernel nnz %lld\n", static_cast<long long>(r.embedding.rows()),
                static_cast<long long>(r.embedding.cols()), r.t, r.t_automatic ? " (automatic)" : "",
                static_cast<long long>(r.kernel_nnz));
    std::printf("intra-step k%d %.3f, inter-step k%d %.3f\n", scores.ks[0], scores.intra_step[0], scores.ks[0],
                scores.inter_step[0]);
    if (r.embedding.rows() != shape.nodes() || r.embedding.cols() != opt.n_components || !r.embedding.allFinite()) {
      std::fprintf(stderr, "consumer_core: unexpected embedding\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {  // mmphate::Error: one line naming what is wrong
    std::fprintf(stderr, "consumer_core: %s\n", e.what());
    return 1;
  }
}
