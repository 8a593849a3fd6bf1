#include "testing/store_traces.hpp"

#include <string>

#include "mmphate/error.hpp"

namespace mmphate {

AssembledTrace assemble_trace(const SnapshotStore::View& view) {
  AssembledTrace out;
  if (view.snapshots.empty()) throw Error("no snapshots recorded yet");
  const auto& first = *view.snapshots.front();
  out.shape.epochs = static_cast<Index>(view.snapshots.size());
  out.shape.steps = first.steps;
  out.shape.units = first.units;
  out.shape.probes = first.probes;
  out.step_index = first.step_index;
  out.raw.resize(out.shape.nodes(), out.shape.probes);
  out.node_valid.assign(static_cast<std::size_t>(out.shape.nodes()), 1);
  Index row = 0;
  for (const auto& s : view.snapshots) {
    out.epochs.push_back(s->epoch);
    for (Index t = 0; t < s->steps; ++t) {
      const bool valid = s->step_valid.empty() || s->step_valid[t];
      for (Index u = 0; u < s->units; ++u, ++row) {
        const float* src = s->values.data() + (t * s->units + u) * s->probes;
        for (Index p = 0; p < s->probes; ++p) out.raw(row, p) = src[p];
        out.node_valid[row] = valid ? 1 : 0;
      }
    }
  }
  return out;
}

Snapshot snapshot_from_trace(const RowMatrix& trace, Index epoch, Index steps, Index units) {
  if ((epoch + 1) * steps * units > trace.rows())
    throw Error("snapshot_from_trace: epoch " + std::to_string(epoch) + " of " + std::to_string(steps) + " steps x " +
                std::to_string(units) + " units is beyond the trace's " + std::to_string(trace.rows()) + " rows");
  Snapshot s;
  s.epoch = epoch;
  s.steps = steps;
  s.units = units;
  s.probes = trace.cols();
  s.values.resize(static_cast<std::size_t>(steps * units * s.probes));
  for (Index r = 0; r < steps * units; ++r)
    for (Index p = 0; p < s.probes; ++p)
      s.values[static_cast<std::size_t>(r * s.probes + p)] = static_cast<float>(trace(epoch * steps * units + r, p));
  return s;
}

}  // namespace mmphate
