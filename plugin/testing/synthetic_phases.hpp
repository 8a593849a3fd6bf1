// Hidden-state traces whose entropy phases are known by construction, for testing the
// diagnostics and the phase detector (docs/DIAGNOSTICS.md, "Measured behaviour").
//
// Node (epoch e, step t, unit u) responds to probe s with
//   x = base[s] + a(e) * (community[c(u)][s] + cos(w t + phi_c) B1[s] + sin(w t + phi_c) B2[s])
//       + noise * N(0, 1),
// c(u) = u mod communities. The diversity a(e) scales both how far the communities sit apart
// (intra-step spread) and how far a unit travels over the steps of an epoch (inter-step
// spread); after z-scoring, a small a(e) leaves every node near the shared base profile.
#pragma once
#include <cstdint>
#include <vector>

#include "mmphate/trace.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

// Raw trace (epochs * steps * units) x probes, epoch-major node order (trace.hpp).
// diversity: one a(e) >= 0 per epoch.
RowMatrix make_phase_trace(const TraceShape& shape, const std::vector<double>& diversity, int communities,
                           double noise, std::uint64_t seed);

// a(e) rising linearly from `low` at epoch 0 to `high` at `peak_epoch`, then falling linearly
// back to `low` at the last epoch: information processing, then compression from peak_epoch.
std::vector<double> rise_then_collapse(Index epochs, Index peak_epoch, double low, double high);

// a(e) = level for every epoch: no phase change.
std::vector<double> constant_diversity(Index epochs, double level);

}  // namespace mmphate
