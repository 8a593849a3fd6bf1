// Diffusion operator P = D^-1 K and its symmetric conjugate A = D^-1/2 K D^-1/2.
#pragma once
#include "mmphate/types.hpp"

namespace mmphate {

// Row sums of K; throws if any row sums to zero (an isolated node has no diffusion).
Vector kernel_degrees(const SparseMatrix& K);

// Row-stochastic P = D^-1 K.
SparseMatrix diffusion_operator(const SparseMatrix& K);

// Symmetric A = D^-1/2 K D^-1/2 (same eigenvalues as P).
SparseMatrix symmetric_diffusion(const SparseMatrix& K);

// Divides each row by its sum (rows summing to 0 are left as zeros).
void normalize_rows(SparseMatrix& M);

}  // namespace mmphate
