// The metric and diagnostics curves of a run directory as TensorBoard scalars (docs/VIEWER.md
// "TensorBoard scalars"): one point per quantity per epoch, step = epoch.
//   metrics/<name>          Monitor::on_epoch_end metrics, coalesced epochs' included
//   diagnostics/<name>      diagnostics.quantities of each frame's newest epoch; a coalesced
//                           epoch's from the per_epoch curves of the frame that carried it
//   phase/code              0 unknown, 1 information_processing, 2 compression, 3 stable
//   progress/global_step    the training step passed with the epoch
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmphate/run/frame_reader.hpp"
#include "tfevents.hpp"

namespace mmphate::view {

struct RunScalars {
  std::vector<tb::ScalarPoint> points;
  std::map<std::string, std::string> descriptions;  // by tag
  double start_wall_time = 0;                        // the run's first frame
};

// Null (NaN/Inf) values are left out. Every point of an epoch has the wall_time of the frame
// that reported the epoch (its own, or the one that coalesced it); for an epoch reported twice
// (a resumed run) the later report wins.
RunScalars run_scalars(const RunData& run);

// Phase label -> phase/code; -1 for a word the PhaseDetector does not write.
int phase_code(const std::string& label);

}  // namespace mmphate::view
