// Why the live updater recomputes a frame in full instead of updating it incrementally
// (IncrementalEmbedder::decide, docs/MONITOR.md "Full recomputes"). The reasons are checked in
// the order listed; the first that applies wins. The frame's `update_reason` is the sentence
// refresh_text() writes for it, with the numbers that triggered it.
#pragma once

namespace mmphate {

enum class RefreshReason {
  none,                 // not a full recompute: the incremental update
  requested,            // update(view, force_full = true)
  incremental_off,      // IncrementalOptions::incremental = false
  first_frame,
  layout_changed,       // the snapshot shape changed (WindowChange::reset)
  exact_diffusion,      // window within n_landmark: no landmarks, exact diffusion
  small_window,         // window within full_below_nodes: warm full recomputes are cheap
  first_with_landmarks, // no full recompute with landmarks to update from yet
  no_shared_nodes,      // no node of the previous frame is left
  schedule,             // every full_every frames
  drift_new_share,      // too many nodes clustered since the last full
  drift_bandwidth,      // the interslice bandwidth moved too far since the last full
  drift_backoff,        // incremental operators were rejected recently: full for a few frames
  drift_energy,         // this frame's incremental operator failed the slow-mode check
};

}  // namespace mmphate
