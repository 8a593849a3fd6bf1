/// @file
/// Neighbourhood agreement between two embeddings of the same nodes: the mean over nodes of
/// |kNN_A(i) ∩ kNN_B(i)| / k. Invariant to rotation, reflection, translation and scale; this
/// is how the fixtures judge an embedding against the reference.
#pragma once
#include "mmphate/types.hpp"

namespace mmphate {

double knn_agreement(const RowMatrix& a, const RowMatrix& b, int k, int threads = 1);

}  // namespace mmphate
