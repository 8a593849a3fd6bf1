// Orthogonal Procrustes alignment of a new frame to the previous one, so the picture does not
// rotate, mirror or drift between epochs: the rotation (reflection allowed: MDS layouts have
// no handedness) and translation that best map the new coordinates of the nodes both frames
// share onto their old coordinates, in least squares (Schönemann 1966: R = U V^T from the
// SVD of the cross-covariance). No scaling: a change of scale is information.
#pragma once
#include "mmphate/types.hpp"

namespace mmphate {

struct Alignment {
  Matrix rotation;            // d x d orthogonal
  Eigen::RowVectorXd shift;   // applied after the rotation
  bool reflected = false;     // det(rotation) < 0
  Index shared = 0;
  double rms_before = 0.0;    // RMS distance of the shared nodes, before and after
  double rms_after = 0.0;
  double radius = 0.0;        // RMS distance of the previous shared nodes to their centroid

  // x -> x R + shift, for every row.
  void apply(RowMatrix& X) const;
};

// `current` and `previous` hold the same nodes row by row (at least 1 row).
Alignment procrustes(const RowMatrix& current, const RowMatrix& previous);

}  // namespace mmphate
