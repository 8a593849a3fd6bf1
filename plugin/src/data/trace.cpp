#include "mmphate/trace.hpp"

#include "mmphate/npy.hpp"

#include <cmath>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "data/normalize.hpp"
#include "mmphate/npy.hpp"

namespace mmphate {

NodeIndex NodeIndex::all(const TraceShape& shape) {
  NodeIndex idx;
  idx.shape = shape;
  idx.full_id.resize(static_cast<std::size_t>(shape.nodes()));
  idx.row_of.resize(static_cast<std::size_t>(shape.nodes()));
  for (Index i = 0; i < shape.nodes(); ++i) idx.full_id[i] = idx.row_of[i] = i;
  return idx;
}

TraceShape slice_trace_shape(const RowMatrix& features, Index slices, Index units) {
  if (slices < 1 || units < 1 || features.rows() != slices * units)
    throw Error("multislice input: expected " + std::to_string(slices) + " x " + std::to_string(units) + " = " +
                std::to_string(slices * units) + " nodes, got " + std::to_string(features.rows()));
  TraceShape shape;
  shape.epochs = slices;
  shape.units = units;
  shape.probes = features.cols();
  return shape;
}

PreparedTrace prepare_trace(const RowMatrix& raw, const TraceShape& shape, const Options& opt,
                            const std::vector<std::uint8_t>* node_valid) {
  if (shape.units < 1 || shape.slices() < 1)
    throw Error("the trace has no nodes (epochs x steps x units = " + std::to_string(shape.nodes()) + ")");
  if (shape.probes < 1) throw Error("the probe set is empty (0 probes)");
  if (shape.probes < 2 && opt.normalize)
    throw Error("1 probe: z-scoring across probes needs at least 2 (use more probes or normalize = false)");
  if (opt.normalize && shape.probes < 5)
    logger()->warn("only {} probes: z-scored responses lie on a sphere of dimension {}, so many nodes coincide "
                   "(2 probes leave just two distinct directions); use at least 5 probes (2 per class "
                   "or more; docs/METHOD.md section 1)", shape.probes, shape.probes - 2);
  if (raw.rows() != shape.nodes() || raw.cols() != shape.probes)
    throw Error("trace has " + std::to_string(raw.rows()) + " x " + std::to_string(raw.cols()) +
                " values but the shape [" + std::to_string(shape.epochs) + ", " + std::to_string(shape.steps) +
                ", " + std::to_string(shape.units) + ", " + std::to_string(shape.probes) + "] needs " +
                std::to_string(shape.nodes()) + " x " + std::to_string(shape.probes));

  if (node_valid && static_cast<Index>(node_valid->size()) != raw.rows())
    throw Error("node_valid has " + std::to_string(node_valid->size()) + " entries for " +
                std::to_string(raw.rows()) + " nodes");
  PreparedTrace out;
  std::vector<char> bad(static_cast<std::size_t>(raw.rows()), 0);
  std::vector<char> padded(static_cast<std::size_t>(raw.rows()), 0);
  if (node_valid)
    for (Index r = 0; r < raw.rows(); ++r)
      if (!(*node_valid)[r]) { padded[r] = 1; ++out.padded_nodes; }
  Index first = -1, first_probe = -1;
  for (Index r = 0; r < raw.rows(); ++r) {
    if (padded[r]) continue;  // padding never becomes a node, whatever it holds
    for (Index c = 0; c < raw.cols(); ++c)
      if (!std::isfinite(raw(r, c))) {
        ++out.nonfinite_values;
        bad[r] = 1;
        if (first < 0) { first = r; first_probe = c; }
      }
  }
  Index bad_nodes = 0;
  for (char b : bad) bad_nodes += b;

  if (out.nonfinite_values > 0) {
    const Index slice = first / shape.units;
    const std::string where = "epoch " + std::to_string(slice / shape.steps) + ", step " +
                              std::to_string(slice % shape.steps) + ", unit " +
                              std::to_string(first % shape.units) + ", probe " + std::to_string(first_probe);
    if (opt.nan_policy == NanPolicy::error)
      throw Error("the trace holds " + std::to_string(out.nonfinite_values) + " NaN/Inf value(s) in " +
                  std::to_string(bad_nodes) + " node(s); first at " + where +
                  " (nan_policy: error; 'drop-node' or 'zero' handle them)");
    logger()->warn("trace: {} NaN/Inf value(s) in {} node(s), first at {}; nan_policy {}", out.nonfinite_values,
                   bad_nodes, where, to_string(opt.nan_policy));
  }

  const bool drop_bad = opt.nan_policy == NanPolicy::drop_node && bad_nodes > 0;
  if (drop_bad || out.padded_nodes > 0) {
    out.index.shape = shape;
    out.index.row_of.assign(static_cast<std::size_t>(shape.nodes()), -1);
    for (Index r = 0; r < raw.rows(); ++r)
      if (!padded[r] && !(drop_bad && bad[r])) {
        out.index.row_of[r] = static_cast<Index>(out.index.full_id.size());
        out.index.full_id.push_back(r);
      }
    out.dropped_nodes = drop_bad ? bad_nodes : 0;
    out.features.resize(out.index.size(), raw.cols());
    for (Index i = 0; i < out.index.size(); ++i) out.features.row(i) = raw.row(out.index.full_id[i]);
    if (out.index.size() == 0) throw Error("no valid node left in the trace (all NaN/Inf or padding)");
    if (!drop_bad && out.nonfinite_values > 0)
      out.features = out.features.unaryExpr([](double v) { return std::isfinite(v) ? v : 0.0; });
  } else {
    out.index = NodeIndex::all(shape);
    out.features = raw;
    if (out.nonfinite_values > 0)
      out.features = out.features.unaryExpr([](double v) { return std::isfinite(v) ? v : 0.0; });
  }
  if (opt.normalize) {
    out.constant_nodes = zscore_rows(out.features);
  } else if (const double s = distance_safe_scale(out.features); s != 1.0) {
    // One factor for the whole trace, so distances between nodes stay comparable.
    out.features *= s;
    logger()->warn("trace values up to {:.3g} in magnitude would overflow squared distances; features scaled by 2^{} "
                   "(exact; the kernel does not depend on the scale)", 1.0 / s, std::ilogb(s));
  }
  if (out.constant_nodes > 0)
    logger()->info("{} of {} nodes have a constant trace (dead or saturated units); they become zero vectors",
                   out.constant_nodes, out.features.rows());
  return out;
}

RowMatrix read_trace_npy(const std::string& path, TraceShape& shape) {
  const NpyArray a = read_npy(path);
  if (a.type != NpyType::float32 && a.type != NpyType::float64)
    throw Error(path + ": expected float32 or float64 hidden states, got " + npy_type_name(a.type));
  if (a.shape.size() == 4) {
    shape.epochs = static_cast<Index>(a.shape[0]); shape.steps = static_cast<Index>(a.shape[1]);
    shape.units = static_cast<Index>(a.shape[2]); shape.probes = static_cast<Index>(a.shape[3]);
  } else if (a.shape.size() == 3) {
    shape.epochs = static_cast<Index>(a.shape[0]); shape.steps = 1;
    shape.units = static_cast<Index>(a.shape[1]); shape.probes = static_cast<Index>(a.shape[2]);
  } else {
    throw Error(path + ": expected a trace of shape [epochs, steps, units, probes] or "
                "[slices, units, probes], got " + std::to_string(a.shape.size()) + " dimension(s)");
  }
  if (shape.nodes() == 0 || shape.probes == 0) throw Error(path + ": the trace is empty (a dimension is 0)");
  const auto values = a.to_double();
  RowMatrix F(shape.nodes(), shape.probes);
  std::copy(values.begin(), values.end(), F.data());
  return F;
}

}  // namespace mmphate
