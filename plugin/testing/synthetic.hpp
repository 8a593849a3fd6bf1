// Random-but-structured inputs of any size, for benchmarks, smoke tests and demos.
#pragma once
#include <cstdint>

#include "mmphate/types.hpp"

namespace mmphate {

// A branching random-walk tree in `dims` dimensions (like PHATE's test data): `branches`
// paths, each starting from a random point of an earlier path and walking with Gaussian
// steps, plus small isotropic noise. Returns n x dims.
RowMatrix make_tree_data(Index n, Index dims, int branches, std::uint64_t seed);

// Hidden-state trace flattened to (slices * units) x probes, row = slice * units + unit.
// Units belong to `communities` groups that share a response profile over the probes; the
// profiles drift slowly across slices and each unit adds its own noise.
RowMatrix make_multislice_trace(Index slices, Index units, Index probes, int communities,
                                std::uint64_t seed);

}  // namespace mmphate
