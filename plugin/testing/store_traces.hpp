// Between generated traces and snapshot stores, for tests and benchmarks (target mmphate_testing).
// assemble_trace is the scratch reference the live updater's WindowGraph is compared with.
#pragma once
#include <cstdint>
#include <vector>

#include "mmphate/snapshot_store.hpp"
#include "mmphate/trace.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

// The engine's input from a view: raw (epochs * steps * units) x probes in epoch-major node
// order, its shape, and per node whether it may become a graph node (padding steps may not).
struct AssembledTrace {
  RowMatrix raw;
  TraceShape shape;
  std::vector<std::uint8_t> node_valid;
  std::vector<std::int64_t> epochs;      // epoch of each trace epoch index
  std::vector<std::int64_t> step_index;  // original time step of each trace step
};
AssembledTrace assemble_trace(const SnapshotStore::View& view);

// The inverse, for generated traces in tests and benchmarks: epoch `epoch` of a flattened trace
// (rows (epoch * steps + step) * units + unit, one column per probe) as the snapshot a
// recorder would push (global_step 0, one direction, no padding).
Snapshot snapshot_from_trace(const RowMatrix& trace, Index epoch, Index steps, Index units);

}  // namespace mmphate
