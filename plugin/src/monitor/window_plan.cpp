#include "monitor/window_plan.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "util/parallel.hpp"

namespace mmphate::detail {

WindowPlan plan_window(const MonitorConfig& cfg, Index steps, Index units, Index probes) {
  WindowPlan p;
  p.steps = p.kept_steps = steps;
  const RetentionPolicy& r = cfg.retention;
  // The epochs the window reaches: max_epochs, or fewer where the memory budget binds.
  const double epoch_bytes = static_cast<double>(steps) * static_cast<double>(units) * static_cast<double>(probes) * 4.0;
  const double by_memory = epoch_bytes > 0 ? std::floor(static_cast<double>(r.memory_budget_bytes) / epoch_bytes) : 1e18;
  p.epochs = static_cast<Index>(std::max(1.0, std::min<double>(r.max_epochs, by_memory)));
  const Options& o = cfg.embedding;
  const double edges = o.interslice_edges > 0 ? o.interslice_edges : o.interslice_knn;
  const double per_node = static_cast<double>(units) + edges;
  const double threads = std::max(1, resolve_threads(o.threads));
  auto seconds = [&](Index kept) {
    return static_cast<double>(p.epochs * kept * units) * per_node * kFrameSecondsPerEntry / threads;
  };
  p.frame_s_all = p.frame_s = seconds(steps);
  p.nodes = p.epochs * steps * units;
  const double budget = cfg.updater.frame_budget_s;
  if (r.step_sampling != StepSampling::automatic || !(budget > 0) || p.frame_s_all <= budget) return p;
  // At least 2 steps, so each epoch keeps its first and last.
  if (steps > 2)
    p.kept_steps = std::clamp<Index>(static_cast<Index>(std::floor(static_cast<double>(steps) * budget / p.frame_s_all)),
                                     2, steps);
  p.sampled = p.kept_steps < steps;
  p.nodes = p.epochs * p.kept_steps * units;
  p.frame_s = seconds(p.kept_steps);
  std::ostringstream os;
  os.precision(3);
  os << "a window of " << p.epochs << " epochs x " << steps << " steps x " << units << " units ("
     << p.epochs * steps * units << " nodes) would take about " << p.frame_s_all
     << " s a frame, above updater.frame_budget_s = " << budget;
  if (p.sampled)
    os << "; keeping " << p.kept_steps << " evenly spaced steps of each epoch (" << p.nodes << " nodes, about "
       << p.frame_s << " s; retention.step_sampling \"even\", step_count " << p.kept_steps
       << "; retention.step_sampling \"all\" keeps every step)";
  if (p.frame_s > budget)
    os << "; still above the budget: a smaller retention.max_epochs or more embedding.threads would fit it";
  p.message = os.str();
  return p;
}

}  // namespace mmphate::detail
