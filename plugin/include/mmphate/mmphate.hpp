/// @file
/// Umbrella header of mmphate::core: the public API of the numeric engine and the live monitor,
/// without LibTorch. Capture in a LibTorch training loop: <mmphate/torch.hpp> (mmphate::torch).
///
/// What is here (README.md, "Library" and "Watching a training run"):
///  * engine: Options (presets, validate), run_phate / run_multislice / embed_kernel and their
///    EmbedResult, the trace layout (TraceShape, NodeIndex), .npy I/O, community-structure
///    scores and k-NN agreement, mmphate::Error, the "mmphate" spdlog logger;
///  * live monitoring: SnapshotStore (retention, save / resume), MonitorConfig and its JSON
///    files (monitor/config.hpp, with the option structs of monitor/updater_options.hpp and
///    monitor/diagnostics_options.hpp), Monitor (monitor/monitor.hpp);
///  * reading a run directory back (run/frame_reader.hpp);
///  * process tuning an executable may opt into (allocator.hpp).
/// Every header under include/mmphate/ is public and installed; the per-stage headers of the
/// engine and the monitor (kNN, kernels, landmarks, MDS, the updater, ...) are private to the
/// library (plugin/src/, docs/ARCHITECTURE.md) and are not installed.
#pragma once

#include "mmphate/error.hpp"
#include "mmphate/types.hpp"
#include "mmphate/log.hpp"
#include "mmphate/options.hpp"
#include "mmphate/trace.hpp"
#include "mmphate/npy.hpp"
#include "mmphate/phate.hpp"
#include "mmphate/scores.hpp"
#include "mmphate/agreement.hpp"
#include "mmphate/allocator.hpp"
#include "mmphate/snapshot_store.hpp"
#include "mmphate/monitor/config.hpp"
#include "mmphate/monitor/monitor.hpp"
#include "mmphate/run/frame_reader.hpp"
