// Umbrella header of mmphate::core: the public API of the numeric engine and the live monitor,
// without LibTorch. Capture in a LibTorch training loop: <mmphate/torch.hpp> (mmphate::torch).
//
// What is here (README.md, "Library" and "Watching a training run"):
//  * engine: Options (presets, validate), run_phate / run_multislice / embed_kernel and their
//    EmbedResult, the trace layout (TraceShape, NodeIndex), .npy I/O, community-structure
//    scores and k-NN agreement, mmphate::Error, the "mmphate" spdlog logger;
//  * live monitoring: SnapshotStore (retention, save / resume), MonitorConfig and its JSON
//    files, Monitor;
//  * process tuning an executable may opt into (allocator.hpp).
// The per-stage headers (kernel.hpp, knn.hpp, landmarks.hpp, mds.hpp, ..., docs/ARCHITECTURE.md)
// are installed too and may be included on their own, but they are the engine's building
// blocks, not a stable interface.
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
#include "mmphate/monitor_config.hpp"
#include "mmphate/monitor.hpp"
