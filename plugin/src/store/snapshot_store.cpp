// SnapshotStore in memory: push() checks and step-samples a snapshot, the retention policy
// decides what stays, view() hands the updater a consistent set (files: snapshot_io.cpp).
#include "mmphate/snapshot_store.hpp"

#include <algorithm>
#include <cmath>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"

namespace mmphate {
namespace {

std::string shape_text(Index t, Index u, Index s) {
  return "[" + std::to_string(t) + " steps, " + std::to_string(u) + " units, " + std::to_string(s) + " probes]";
}

// Original indices of the steps kept by the sampling policy.
std::vector<Index> sampled_steps(Index steps, const RetentionPolicy& p) {
  std::vector<Index> keep;
  if (p.step_sampling == StepSampling::stride) {
    for (Index t = 0; t < steps; t += p.step_stride) keep.push_back(t);
  } else if (p.step_sampling == StepSampling::even && p.step_count < steps) {
    // step_count points spread evenly over [0, steps - 1], first and last included.
    for (int i = 0; i < p.step_count; ++i)
      keep.push_back(p.step_count == 1 ? 0
                                       : static_cast<Index>(std::llround(static_cast<double>(i) * (steps - 1) /
                                                                         (p.step_count - 1))));
  } else {
    for (Index t = 0; t < steps; ++t) keep.push_back(t);
  }
  return keep;
}

std::string layers_text(const std::vector<SnapshotLayer>& layers) {
  std::string out;
  for (const auto& l : layers) {
    if (!out.empty()) out += ", ";
    out += "'" + l.name + "' (" + std::to_string(l.units) + " units" +
           (l.directions > 1 ? ", " + std::to_string(l.directions) + " directions" : std::string()) + ")";
  }
  return out;
}

}  // namespace

void RetentionPolicy::validate() const {
  if (max_epochs < 1) throw Error("invalid retention max_epochs = " + std::to_string(max_epochs) + ": allowed >= 1");
  // thin keeps every epoch below thin_dense, epoch thin_dense and the newest.
  if (kind == RetentionKind::thin && max_epochs < thin_dense + 2)
    throw Error("invalid retention max_epochs = " + std::to_string(max_epochs) + " for thin with thin_dense = " +
                std::to_string(thin_dense) + ": allowed >= thin_dense + 2");
  if (thin_dense < 0) throw Error("invalid retention thin_dense = " + std::to_string(thin_dense) + ": allowed >= 0");
  if (memory_budget_bytes == 0) throw Error("invalid retention memory_budget_bytes = 0: allowed > 0");
  if (step_sampling == StepSampling::stride && step_stride < 1)
    throw Error("invalid retention step_stride = " + std::to_string(step_stride) + ": allowed >= 1");
  if (step_sampling == StepSampling::even && step_count < 1)
    throw Error("invalid retention step_count = " + std::to_string(step_count) + ": allowed >= 1");
}

SnapshotStore::SnapshotStore(RetentionPolicy policy) : policy_(policy) { policy_.validate(); }

RetentionPolicy SnapshotStore::policy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return policy_;
}

void SnapshotStore::set_step_planner(StepPlanner planner) {
  std::lock_guard<std::mutex> lock(mutex_);
  planner_ = std::move(planner);
}

std::vector<SnapshotLayer> Snapshot::layer_spans() const {
  if (!layers.empty()) return layers;
  return {SnapshotLayer{layer, units, directions}};
}

void SnapshotStore::push(Snapshot s) {
  if (s.probes < 1) throw Error("snapshot of epoch " + std::to_string(s.epoch) + ": the probe set is empty");
  if (s.steps < 1 || s.units < 1)
    throw Error("snapshot of epoch " + std::to_string(s.epoch) + ": shape " + shape_text(s.steps, s.units, s.probes) +
                " has no nodes");
  if (s.values.size() != static_cast<std::size_t>(s.steps * s.units * s.probes))
    throw Error("snapshot of epoch " + std::to_string(s.epoch) + ": " + std::to_string(s.values.size()) +
                " values for shape " + shape_text(s.steps, s.units, s.probes));
  if (s.directions < 1 || s.units % s.directions != 0)
    throw Error("snapshot of epoch " + std::to_string(s.epoch) + ": " + std::to_string(s.units) +
                " units cannot split into " + std::to_string(s.directions) + " directions");
  if (!s.layers.empty()) {
    Index total = 0;
    for (const auto& l : s.layers) {
      if (l.units < 1 || l.directions < 1 || l.units % l.directions != 0)
        throw Error("snapshot of epoch " + std::to_string(s.epoch) + ": layer '" + l.name + "' has " +
                    std::to_string(l.units) + " units in " + std::to_string(l.directions) +
                    " directions (allowed: units >= 1, a multiple of the directions)");
      total += l.units;
    }
    if (total != s.units)
      throw Error("snapshot of epoch " + std::to_string(s.epoch) + ": its layers " + layers_text(s.layers) + " hold " +
                  std::to_string(total) + " units, the snapshot " + std::to_string(s.units));
  }
  if (!s.step_index.empty() && static_cast<Index>(s.step_index.size()) != s.steps)
    throw Error("snapshot of epoch " + std::to_string(s.epoch) + ": step_index has " +
                std::to_string(s.step_index.size()) + " entries for " + std::to_string(s.steps) + " steps");
  if (!s.step_valid.empty() && static_cast<Index>(s.step_valid.size()) != s.steps)
    throw Error("snapshot of epoch " + std::to_string(s.epoch) + ": step_valid has " +
                std::to_string(s.step_valid.size()) + " entries for " + std::to_string(s.steps) + " steps");

  // Time-step subsampling, on the caller's thread and before the lock.
  RetentionPolicy sampling;
  StepPlanner planner;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    sampling = policy_;
    if (sampling.step_sampling == StepSampling::automatic) planner = planner_;
  }
  if (sampling.step_sampling == StepSampling::automatic) {
    // The planner runs outside the lock (it may log, write and take its owner's locks).
    if (planner) planner(s.steps, s.units, s.probes, sampling);
    if (sampling.step_sampling == StepSampling::automatic) sampling.step_sampling = StepSampling::all;
    sampling.validate();
    std::lock_guard<std::mutex> lock(mutex_);
    if (policy_.step_sampling == StepSampling::automatic) {  // the first push to get here decides
      policy_.step_sampling = sampling.step_sampling;
      policy_.step_stride = sampling.step_stride;
      policy_.step_count = sampling.step_count;
    }
    sampling = policy_;
  }
  if (s.step_index.empty()) {
    const std::vector<Index> keep = sampled_steps(s.steps, sampling);
    if (static_cast<Index>(keep.size()) != s.steps) {
      const std::size_t block = static_cast<std::size_t>(s.units * s.probes);
      std::vector<float> values(keep.size() * block);
      std::vector<std::uint8_t> valid;
      for (std::size_t i = 0; i < keep.size(); ++i) {
        std::copy_n(s.values.begin() + static_cast<std::ptrdiff_t>(keep[i] * block), block,
                    values.begin() + static_cast<std::ptrdiff_t>(i * block));
        if (!s.step_valid.empty()) valid.push_back(s.step_valid[keep[i]]);
      }
      s.values = std::move(values);
      s.step_valid = std::move(valid);
      s.steps = static_cast<Index>(keep.size());
    }
    s.step_index.assign(keep.begin(), keep.end());
  }
  s.nonfinite = 0;
  for (float v : s.values)
    if (!std::isfinite(v)) ++s.nonfinite;
  if (s.nonfinite > 0)
    logger()->warn("snapshot of epoch {} holds {} NaN/Inf value(s); recorded with a flag", s.epoch, s.nonfinite);
  auto ptr = std::make_shared<const Snapshot>(std::move(s));

  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (units_ >= 0 && (ptr->steps != steps_ || ptr->units != units_ || ptr->probes != probes_))
      throw Error("snapshot of epoch " + std::to_string(ptr->epoch) + " has shape " +
                  shape_text(ptr->steps, ptr->units, ptr->probes) + " but earlier snapshots have " +
                  shape_text(steps_, units_, probes_) + " (the probe batch and the time-step sampling must stay fixed for a run)");
    steps_ = ptr->steps;
    units_ = ptr->units;
    probes_ = ptr->probes;
    while (!kept_.empty() && kept_.back()->epoch >= ptr->epoch) {
      decide_locked(kept_.back()->epoch, "replaced",
                    "epoch " + std::to_string(ptr->epoch) + " pushed again (training resumed from an earlier point)");
      kept_.pop_back();
    }
    kept_.push_back(ptr);
    decide_locked(ptr->epoch, "kept", "new snapshot");
    retain_locked();
    ++version_;
  }
  changed_.notify_all();
}

void SnapshotStore::decide_locked(std::int64_t epoch, const char* action, const std::string& reason) {
  decisions_.push_back({epoch, action, reason});
  if (std::string(action) != "kept") logger()->info("snapshot store: epoch {} {}: {}", epoch, action, reason);
}

void SnapshotStore::retain_locked() {
  if (policy_.kind == RetentionKind::window) {
    while (static_cast<int>(kept_.size()) > policy_.max_epochs) {
      decide_locked(kept_.front()->epoch, "dropped",
                    "window keeps the last " + std::to_string(policy_.max_epochs) + " epochs");
      kept_.erase(kept_.begin());
    }
  } else if (static_cast<int>(kept_.size()) > policy_.max_epochs) {
    const std::int64_t newest = kept_.back()->epoch;
    for (std::int64_t stride = 2;; stride *= 2) {
      auto keeps = [&](std::int64_t e) {
        return e < policy_.thin_dense || (e - policy_.thin_dense) % stride == 0 || e == newest;
      };
      int count = 0;
      for (const auto& s : kept_) count += keeps(s->epoch) ? 1 : 0;
      if (count <= policy_.max_epochs || stride > (std::int64_t{1} << 40)) {
        std::vector<SnapshotPtr> next;
        for (const auto& s : kept_) {
          if (keeps(s->epoch)) next.push_back(s);
          else decide_locked(s->epoch, "dropped",
                             "thin: every epoch below " + std::to_string(policy_.thin_dense) + ", then every " +
                                 std::to_string(stride) + "th");
        }
        kept_.swap(next);
        break;
      }
    }
  }
  std::size_t total = 0;
  for (const auto& s : kept_) total += s->bytes();
  while (total > policy_.memory_budget_bytes && kept_.size() > 1) {
    total -= kept_.front()->bytes();
    decide_locked(kept_.front()->epoch, "dropped",
                  "memory budget of " + std::to_string(policy_.memory_budget_bytes) + " bytes");
    kept_.erase(kept_.begin());
  }
}

SnapshotStore::View SnapshotStore::view() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return View{version_, kept_};
}

bool SnapshotStore::wait_for_update(std::uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return version_ != seen; });
}

std::vector<RetentionDecision> SnapshotStore::decisions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return decisions_;
}

std::size_t SnapshotStore::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t total = 0;
  for (const auto& s : kept_) total += s->bytes();
  return total;
}

}  // namespace mmphate
