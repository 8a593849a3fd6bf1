// Multislice kernel of M-PHATE / MM-PHATE (METHOD.md section 2), faithful to the reference.
//
// Nodes are (slice, unit) pairs, row = slice * units + unit; a node's features are its
// (z-scored) responses over the probe set.
//  * intraslice: alpha-decay kernel among the units of one slice (intraslice_knn, decay),
//    thresholded, symmetrised;
//  * interslice: exp(-d^2 / eps^2) between the same unit in every other slice, with one
//    global eps = mean over units of the median over slice-points of the distance to the
//    interslice_knn-th nearest slice-point of that unit (self counted as index 0);
//  * the combined kernel keeps entries >= thresh; its diagonal is 1.
// Memory is O(units * slices^2): see faithful_kernel_bytes().
#pragma once
#include "mmphate/options.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

struct MultisliceInfo {
  double interslice_eps = 0.0;
  Index intraslice_nnz = 0;   // including the diagonal
  Index interslice_nnz = 0;
  Index constant_nodes = 0;   // nodes whose trace was constant (zero after z-scoring)
};

// Upper bound of the bytes the faithful kernel needs (dense interslice blocks + triplets).
double faithful_kernel_bytes(Index slices, Index units);

// Global interslice bandwidth of the reference (features already normalised).
double interslice_bandwidth(const RowMatrix& features, Index slices, Index units, int kappa);

// features: (slices * units) x probes, already normalised if desired.
SparseMatrix multislice_kernel(const RowMatrix& features, Index slices, Index units,
                               const Options& opt, MultisliceInfo* info = nullptr);

}  // namespace mmphate
