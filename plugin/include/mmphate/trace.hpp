/// @file
/// A hidden-state trace [epochs, steps, units, probes] and the nodes it contributes.
///
/// Nodes are (epoch, step, unit) triples in epoch-major order: full id = slice * units + unit
/// with slice = epoch * steps + step. prepare_trace() applies the NaN policy and the z-score and
/// returns the features of the nodes that stay in the graph together with their index.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mmphate/options.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

struct TraceShape {
  Index epochs = 1, steps = 1, units = 0, probes = 0;
  Index slices() const { return epochs * steps; }
  Index nodes() const { return epochs * steps * units; }
};

/// The graph's nodes: a subset (all, unless nodes were dropped) of the trace's nodes.
struct NodeIndex {
  TraceShape shape;
  std::vector<Index> full_id;  ///< graph row -> slice * units + unit
  std::vector<Index> row_of;   ///< slice * units + unit -> graph row, or -1 when dropped

  Index size() const { return static_cast<Index>(full_id.size()); }
  Index slice(Index row) const { return full_id[row] / shape.units; }
  Index unit(Index row) const { return full_id[row] % shape.units; }
  Index epoch(Index row) const { return slice(row) / shape.steps; }
  Index step(Index row) const { return slice(row) % shape.steps; }
  /// Graph row of (slice, unit), or -1.
  Index row(Index slice, Index unit) const { return row_of[slice * shape.units + unit]; }

  static NodeIndex all(const TraceShape& shape);
};

struct PreparedTrace {
  RowMatrix features;  ///< graph rows x probes (z-scored when requested)
  NodeIndex index;
  Index nonfinite_values = 0;
  Index dropped_nodes = 0;   ///< removed by nan_policy drop-node
  Index padded_nodes = 0;    ///< excluded by node_valid
  Index constant_nodes = 0;  ///< constant across probes: zero vectors after z-scoring
};

/// Reads a trace .npy (float32 or float64): [epochs, steps, units, probes], or [slices, units,
/// probes] (steps = 1), as the raw (epochs * steps * units) x probes matrix; sets `shape`.
/// Errors name the file and what was found.
RowMatrix read_trace_npy(const std::string& path, TraceShape& shape);

/// Shape of M-PHATE-style input [slices, units, probes] (steps = 1); checks the row count.
TraceShape slice_trace_shape(const RowMatrix& features, Index slices, Index units);

/// raw: (epochs * steps * units) x probes. Applies opt.nan_policy and opt.normalize. Without
/// normalisation, values whose squared distances would overflow double (|x| above ~1e120) are
/// multiplied by one power of two (distance_safe_scale in normalize.hpp): exact, and the
/// multislice kernel is scale-invariant.
/// node_valid (optional, one per node): nodes marked 0 (padded time steps) never become graph
/// nodes, whatever their values.
PreparedTrace prepare_trace(const RowMatrix& raw, const TraceShape& shape, const Options& opt,
                            const std::vector<std::uint8_t>* node_valid = nullptr);

}  // namespace mmphate
