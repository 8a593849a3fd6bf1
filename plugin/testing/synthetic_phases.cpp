#include "testing/synthetic_phases.hpp"

#include <cmath>
#include <random>

#include "mmphate/error.hpp"

namespace mmphate {

RowMatrix make_phase_trace(const TraceShape& shape, const std::vector<double>& diversity, int communities,
                           double noise, std::uint64_t seed) {
  const Index E = shape.epochs, T = shape.steps, U = shape.units, S = shape.probes;
  if (E < 1 || T < 1 || U < 1 || S < 2)
    throw Error("phase trace: need epochs, steps, units >= 1 and probes >= 2");
  if (static_cast<Index>(diversity.size()) != E)
    throw Error("phase trace: " + std::to_string(diversity.size()) + " diversity values for " + std::to_string(E) +
                " epochs");
  for (double a : diversity)
    if (!std::isfinite(a) || a < 0) throw Error("phase trace: diversity values must be finite and >= 0");
  if (communities < 1) throw Error("phase trace: communities must be >= 1");
  if (!std::isfinite(noise) || noise < 0) throw Error("phase trace: noise must be finite and >= 0");

  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto profile = [&]() {
    Vector v(S);
    for (Index s = 0; s < S; ++s) v(s) = normal(rng);
    return v;
  };
  const Vector base = profile(), b1 = profile(), b2 = profile();
  std::vector<Vector> community;
  std::vector<double> phase;
  for (int c = 0; c < communities; ++c) {
    community.push_back(profile());
    phase.push_back(2.0 * M_PI * c / communities);
  }
  // One cycle over the steps of an epoch: every unit traces a loop whose size follows a(e).
  const double w = 2.0 * M_PI / static_cast<double>(std::max<Index>(T, 2));
  RowMatrix X(shape.nodes(), S);
  for (Index e = 0; e < E; ++e)
    for (Index t = 0; t < T; ++t)
      for (Index u = 0; u < U; ++u) {
        const int c = static_cast<int>(u % communities);
        const double ang = w * static_cast<double>(t) + phase[c];
        const Index row = (e * T + t) * U + u;
        for (Index s = 0; s < S; ++s)
          X(row, s) = base(s) +
                      diversity[e] * (community[c](s) + std::cos(ang) * b1(s) + std::sin(ang) * b2(s)) +
                      noise * normal(rng);
      }
  return X;
}

std::vector<double> rise_then_collapse(Index epochs, Index peak_epoch, double low, double high) {
  if (epochs < 2 || peak_epoch < 1 || peak_epoch >= epochs - 1)
    throw Error("rise_then_collapse: need 0 < peak_epoch < epochs - 1, got peak " + std::to_string(peak_epoch) +
                " of " + std::to_string(epochs));
  std::vector<double> a(static_cast<std::size_t>(epochs));
  for (Index e = 0; e < epochs; ++e) {
    const double f = e <= peak_epoch ? static_cast<double>(e) / peak_epoch
                                     : static_cast<double>(epochs - 1 - e) / (epochs - 1 - peak_epoch);
    a[e] = low + (high - low) * f;
  }
  return a;
}

std::vector<double> constant_diversity(Index epochs, double level) {
  return std::vector<double>(static_cast<std::size_t>(std::max<Index>(epochs, 0)), level);
}

}  // namespace mmphate
