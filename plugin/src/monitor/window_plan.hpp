// The live window a frame budget allows (issue 16). A frame costs about in proportion to the
// window's kernel entries, nodes x (units per slice + interslice edges): a 256-unit layer's
// intraslice rows are dense, so one epoch of 28 steps adds 7,168 nodes and 3.3 M entries, and
// a 64-epoch window (458,752 nodes) cost 18-23 s per incremental frame on one core. When the
// window the retention policy would reach exceeds the budget and the user left
// retention.step_sampling at "auto", the monitor keeps evenly spaced steps of each epoch so
// that it fits, says so at start (log, `window_planned` event, config.json).
#pragma once
#include <string>

#include "mmphate/monitor/config.hpp"
#include "mmphate/types.hpp"

namespace mmphate::detail {

// One thread's seconds per kernel entry of a frame, measured on the 2-core VM with the real
// 256-unit LSTM (docs/PERFORMANCE.md): warm full recomputes cost 133 ns per entry at 49k nodes
// and 159 ns at 65k (4.76 s), incremental frames 110 ns at 458k. The planned window must hold
// its worst frame, so the full recompute's figure.
constexpr double kFrameSecondsPerEntry = 160e-9;

struct WindowPlan {
  Index steps = 0;          // steps per epoch as recorded
  Index kept_steps = 0;     // steps per epoch the window keeps
  Index epochs = 0;         // epochs the retention policy keeps at most
  Index nodes = 0;          // nodes of the fullest window with kept_steps
  double frame_s = 0.0;     // the model's frame time at that window
  double frame_s_all = 0.0; // ... with every step
  bool sampled = false;     // kept_steps < steps
  std::string message;      // what the monitor logs at start
};

// The plan for snapshots of `steps` x `units` (all layers) and `probes` under `cfg`.
WindowPlan plan_window(const MonitorConfig& cfg, Index steps, Index units, Index probes);

}  // namespace mmphate::detail
