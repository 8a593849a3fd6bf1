// Multislice kernels of M-PHATE / MM-PHATE (docs/METHOD.md section 2; design in docs/MULTISLICE.md).
//
// Graph rows are the nodes of a NodeIndex (trace.hpp); a node's features are its (z-scored)
// responses over the probe set. Both modes share:
//  * intraslice: alpha-decay kernel among the units of one slice (intraslice_knn, decay),
//    thresholded, symmetrised;
//  * one global interslice bandwidth eps = mean over units of the median over slice-points of
//    the distance to the interslice_knn-th nearest slice-point of that unit (self = index 0).
// faithful (the reference): exp(-d^2 / eps^2) between the same unit in EVERY pair of slices,
//    entries >= thresh kept. Memory O(units * slices^2): see faithful_kernel_bytes().
// scalable: the same Gaussian, but each slice-point keeps only its interslice_knn nearest
//    slice-points of the same unit (symmetrised by union), plus explicit multiway edges to the
//    same unit at the adjacent steps of its epoch (time_edge_weight) and at the same step of
//    the adjacent epochs (epoch_edge_weight), weighted weight * max(exp(-d^2/eps^2), thresh).
//    Memory and time O(N * interslice_knn).
// Duplicate positions (a kNN edge that is also a multiway edge) keep the larger weight.
#pragma once
#include <vector>

#include "mmphate/options.hpp"
#include "mmphate/trace.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

struct MultisliceInfo {
  double interslice_eps = 0.0;
  Index intraslice_nnz = 0;   // including the diagonal
  Index interslice_nnz = 0;
  Index multiway_nnz = 0;
};

// Upper bound of the bytes the faithful kernel needs (dense interslice blocks + triplets).
double faithful_kernel_bytes(Index slices, Index units);

// The global interslice bandwidth eps of a [slices, units] trace (features normalised).
double interslice_bandwidth(const RowMatrix& features, Index slices, Index units, int kappa);

SparseMatrix multislice_kernel(const RowMatrix& features, const NodeIndex& nodes, const Options& opt,
                               MultisliceInfo* info = nullptr);

// All nodes of a [slices, units] trace (steps = 1).
SparseMatrix multislice_kernel(const RowMatrix& features, Index slices, Index units,
                               const Options& opt, MultisliceInfo* info = nullptr);

// Building blocks shared with the incremental window graph (incremental/window_graph.hpp):
// intraslice entries of every slice of `nodes` (symmetrised, diagonal included) ...
std::vector<Triplet> intraslice_entries(const RowMatrix& features, const NodeIndex& nodes, const Options& opt);
// ... and the median the interslice bandwidth averages (0 for an empty list).
double median_of(std::vector<double> v);
// The bandwidth rule, shared by the batch kernel and the live window (WindowGraph): the mean
// of the per-unit medians (a negative entry: a unit without neighbours, not counted); 1 when
// no unit counts or the mean is 0. `clamped`: some list was shorter than kappa. `repeated`:
// called every frame, so its warnings go to debug (a repeating condition is logged once).
double mean_unit_bandwidth(const std::vector<double>& unit_median, bool clamped, int kappa, bool repeated);

}  // namespace mmphate
