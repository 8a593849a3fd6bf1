// Orthogonal Procrustes alignment of a new frame to the previous one, so the picture does not
// rotate, mirror or drift between epochs: the rotation (reflection allowed: MDS layouts have
// no handedness) and translation that best map the new coordinates of the nodes both frames
// share onto their old coordinates, in least squares (Schönemann 1966: R = U V^T from the
// SVD of the cross-covariance), optionally with a uniform scale (s = trace(Sigma) / |C|^2).
// The live monitor fits the scale too: the scale of an MDS layout of potential distances is
// set by the diffusion time t and the landmark count, i.e. by the procedure, not the network
// (a full recompute that changed t moved the shared nodes by 3-4 layout radii without it).
#pragma once
#include "mmphate/types.hpp"

namespace mmphate {

struct Alignment {
  Matrix rotation;            // d x d orthogonal
  double scale = 1.0;         // applied with the rotation
  Eigen::RowVectorXd shift;   // applied after the rotation
  bool reflected = false;     // det(rotation) < 0
  Index shared = 0;
  double rms_before = 0.0;    // RMS distance of the shared nodes, before and after
  double rms_after = 0.0;
  double radius = 0.0;        // RMS distance of the previous shared nodes to their centroid

  // x -> s x R + shift, for every row.
  void apply(RowMatrix& X) const;
};

// `current` and `previous` hold the same nodes row by row (at least 1 row).
// with_scale: also fit the uniform scale (kept in (0, inf); 1 when `current` is degenerate).
Alignment procrustes(const RowMatrix& current, const RowMatrix& previous, bool with_scale = false);

}  // namespace mmphate
