// WindowGraph: the multislice kernel of a sliding window of epochs, kept up to date as
// snapshots arrive and leave instead of being rebuilt (the live monitor's graph stage).
//
// What each epoch's snapshot contributes is computed once, when it enters the window:
//  * its prepared features (NaN policy, z-score: per node, so independent of other epochs);
//  * its intraslice blocks (each slice is one time step of one epoch);
//  * for each of its slice-points, the exact list of nearest slice-points of the same unit
//    over the current window, kept with `margin` spare entries beyond the interslice edges.
// When epochs enter, their points are added to the lists of older points they are closer
// than (each list stays the exact top-|list| of the window: an entry is inserted only below
// the list's horizon, the first distance ever cut off). When epochs leave, their entries are
// erased; a list that falls below the edges it needs is recomputed against the whole unit.
// So the kernel built from the lists equals the from-scratch scalable kernel of the window
// (multislice.hpp) up to the order of ties, at a cost proportional to the new points.
// Candidates are ranked with GEMM-expanded squared distances and every kept distance is
// re-measured directly, so lists hold the same distances the from-scratch search reports.
// build() assembles the CSR rows directly, unit by unit: the union of a point's own list and
// of the lists it appears in (a reverse index filled in row order comes out sorted), its
// multiway edges and its slice's intraslice row, with no global sort of the ~200 entries per
// node. The bandwidth eps and the multiway edges are recomputed on every build (both are cheap).
// Faithful mode keeps no lists: build() falls back to the from-scratch kernel.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "engine/graph/multislice.hpp"
#include "mmphate/options.hpp"
#include "mmphate/snapshot_store.hpp"
#include "mmphate/trace.hpp"
#include "mmphate/types.hpp"

namespace mmphate {

struct WindowChange {
  std::vector<std::int64_t> added;    // epochs that entered (or whose snapshot was replaced)
  std::vector<std::int64_t> removed;  // epochs that left
  bool reset = false;                 // layout changed (steps/units/probes): everything rebuilt
  Index refilled_lists = 0;           // neighbour lists recomputed after removals
  Index inserted_entries = 0;         // entries new points added to older lists
};

// The window's graph as the engine needs it: graph rows are the present nodes in grid order
// (window epoch, step, unit), as prepare_trace would number them.
struct WindowKernel {
  SparseMatrix K;
  NodeIndex nodes;
  RowMatrix features;  // graph rows x probes (prepared)
  MultisliceInfo info;
  std::vector<std::int64_t> epochs;  // epoch number of each window position
  Index nonfinite_values = 0, dropped_nodes = 0, padded_nodes = 0, constant_nodes = 0;
};

class WindowGraph {
 public:
  WindowGraph(Options opt, int margin = 16);

  // Brings the window to the snapshots of `view` (oldest first). Snapshots are recognised by
  // pointer identity: a re-pushed epoch counts as removed and added. Throws mmphate::Error for
  // an epoch it cannot take (NaN policy, layout) and then keeps the previous window unchanged,
  // so the next update with a valid view goes on from it (an allocation failure while the
  // lists are updated empties the window instead: the next update rebuilds it).
  WindowChange update(const SnapshotStore::View& view);

  // Kernel of the current window (requires at least one epoch). Reuses internal buffers:
  // not to be called concurrently on one WindowGraph.
  WindowKernel build() const;

  // Epochs currently in the window, oldest first.
  std::vector<std::int64_t> epochs() const;
  Index steps() const { return steps_; }
  Index units() const { return units_; }
  bool empty() const { return window_.empty(); }
  std::size_t list_bytes() const;

  WindowGraph(const WindowGraph&) = delete;
  WindowGraph& operator=(const WindowGraph&) = delete;
  ~WindowGraph();

 private:
  struct EpochGraph;
  struct OrdinalMap;
  struct UnitRows;
  void reset_layout(const Snapshot& s);
  std::unique_ptr<EpochGraph> prepare_epoch(const SnapshotPtr& snap, std::int32_t ordinal) const;
  OrdinalMap ordinal_map() const;
  void update_lists(const std::vector<char>& is_new, WindowChange& change);
  void update_unit_lists(Index u, const std::vector<char>& is_new, const OrdinalMap& where, Index& refilled,
                         Index& inserted);
  double bandwidth() const;
  void unit_rows(Index u, const OrdinalMap& where, const std::vector<Index>& offset, double inv_eps2,
                 std::vector<int>& local_of_row, UnitRows& out) const;
  int edges_needed() const;

  Options opt_;
  int margin_;
  Index steps_ = 0, units_ = 0, probes_ = 0;
  std::int32_t next_ordinal_ = 0;
  std::vector<std::unique_ptr<EpochGraph>> window_;  // oldest first
  // build()'s per-unit rows, kept between calls: refilled in place, they need no fresh
  // memory (first-touch pages cost ~2 ms per MB on our VMs). So build() is not reentrant.
  mutable std::vector<UnitRows> unit_rows_;
};

}  // namespace mmphate
