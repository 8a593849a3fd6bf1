// Dense pairwise distances (the landmark potential's MDS input, the faithful interslice kernel).
#pragma once
#include "mmphate/types.hpp"

namespace mmphate {

// Euclidean distances between the rows of X; exactly symmetric, zero diagonal.
Matrix row_distances(const Matrix& X);

}  // namespace mmphate
