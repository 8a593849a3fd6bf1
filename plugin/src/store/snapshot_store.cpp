#include "mmphate/snapshot_store.hpp"

#include "util/atomic_file.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "util/config_json.hpp"
#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "mmphate/npy.hpp"

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

std::string epoch_file(std::int64_t epoch) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "epoch_%06lld.npy", static_cast<long long>(epoch));
  return buf;
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

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    throw Error("cannot create directory '" + path + "'");
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
  if (s.step_index.empty()) {
    const std::vector<Index> keep = sampled_steps(s.steps, policy_);
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

void SnapshotStore::save(const std::string& dir) const {
  const View v = view();
  make_dir(dir);
  nlohmann::json index;
  index["format"] = "mmphate-snapshots";
  index["version"] = 1;
  index["snapshots"] = nlohmann::json::array();
  std::set<std::string> files;
  for (const auto& s : v.snapshots) {
    const std::string name = epoch_file(s->epoch);
    const std::string path = dir + "/" + name;
    struct stat st;
    bool current;
    {
      std::lock_guard<std::mutex> lock(save_mutex_);
      auto it = saved_.find(s->epoch);
      current = it != saved_.end() && it->second.lock() == s && ::stat(path.c_str(), &st) == 0;
    }
    if (!current) {  // new, or the epoch was pushed again since the last save
      write_npy(path, s->values.data(),
                {static_cast<std::size_t>(s->steps), static_cast<std::size_t>(s->units),
                 static_cast<std::size_t>(s->probes)});
      std::lock_guard<std::mutex> lock(save_mutex_);
      saved_[s->epoch] = s;
    }
    files.insert(name);
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : s->layer_spans())
      layers.push_back({{"name", l.name}, {"units", l.units}, {"directions", l.directions}});
    index["snapshots"].push_back({{"epoch", s->epoch},
                                  {"global_step", s->global_step},
                                  {"file", name},
                                  {"nonfinite", s->nonfinite},
                                  {"layer", s->layer},
                                  {"directions", s->directions},
                                  {"layers", std::move(layers)},
                                  {"step_index", s->step_index},
                                  {"step_valid", s->step_valid}});
  }
  write_file_atomic(dir + "/index.json", index.dump(1) + "\n");
  // Files of snapshots retention dropped since this store saved or resumed them (the index no
  // longer names them), and temporaries of a killed save. Files this store never wrote or
  // loaded stay: after a failed resume they may be the only copy of an earlier run.
  {
    std::lock_guard<std::mutex> lock(save_mutex_);
    for (auto it = saved_.begin(); it != saved_.end();) {
      const std::string name = epoch_file(it->first);
      if (files.count(name)) {
        ++it;
        continue;
      }
      std::remove((dir + "/" + name).c_str());
      it = saved_.erase(it);
    }
  }
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.rfind("epoch_", 0) == 0 && name.size() > 8 && name.compare(name.size() - 8, 8, ".npy.tmp") == 0)
        std::remove((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
}

namespace {

// index.json is read as untrusted input: every structural problem is an Error naming the
// entry and the key, never a raw JSON exception.
const nlohmann::json& entry_key(const nlohmann::json& entry, const char* key, const std::string& where) {
  if (!entry.contains(key)) throw Error(where + ": missing key '" + key + "'");
  return entry[key];
}

std::vector<std::int64_t> read_int_list(const nlohmann::json& v, const char* key, const std::string& where) {
  if (!v.is_array()) throw detail::type_error(where, key, v, "an array of integers");
  std::vector<std::int64_t> out;
  for (const auto& x : v) out.push_back(detail::read_int(x, key, where));
  return out;
}

// A snapshot file named by the index must lie inside the snapshot folder: a relative path
// without '..' components (an entry like ../../etc/hostname or /etc/hostname is refused).
std::string snapshot_file_path(const std::string& dir, const std::string& file, const std::string& where) {
  bool inside = !file.empty() && file[0] != '/';
  std::size_t pos = 0;
  while (inside && pos <= file.size()) {
    const std::size_t slash = std::min(file.find('/', pos), file.size());
    if (file.compare(pos, slash - pos, "..") == 0 && slash - pos == 2) inside = false;
    pos = slash + 1;
  }
  if (!inside)
    throw Error(where + ": key 'file' = \"" + file + "\": allowed a relative path inside '" + dir +
                "' (not absolute, no '..')");
  return dir + "/" + file;
}

}  // namespace

void SnapshotStore::resume(const std::string& dir) {
  if (view().snapshots.size() > 0) throw Error("resume: the store already holds snapshots");
  const std::string src = dir + "/index.json";
  std::ifstream in(src);
  if (!in) throw Error("cannot resume from '" + dir + "': no index.json");
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(src + ": invalid JSON: " + e.what());
  }
  if (!index.is_object() || !index.contains("format") || index["format"] != "mmphate-snapshots")
    throw Error(src + ": not a mmphate snapshot index (expected an object with \"format\": \"mmphate-snapshots\")");
  const nlohmann::json& list = entry_key(index, "snapshots", src);
  if (!list.is_array()) throw detail::type_error(src, "snapshots", list, "an array of snapshot entries");

  // Everything loads into a staging store under this store's policy; this store changes only
  // once every snapshot has loaded, so a failed resume leaves it empty and resumable.
  SnapshotStore staged(policy_);
  std::int64_t previous = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& entry = list[i];
    const std::string where = src + ": snapshots[" + std::to_string(i) + "]";
    if (!entry.is_object()) throw Error(where + ": expected an object, got " + entry.type_name());
    Snapshot s;
    s.epoch = detail::read_int(entry_key(entry, "epoch", where), "epoch", where);
    if (i > 0 && s.epoch <= previous)
      throw Error(where + ": epoch " + std::to_string(s.epoch) + " after epoch " + std::to_string(previous) +
                  " (allowed: increasing epochs)");
    previous = s.epoch;
    s.global_step = detail::read_int(entry_key(entry, "global_step", where), "global_step", where);
    const std::string file = detail::read_string(entry_key(entry, "file", where), "file", where);
    const std::string path = snapshot_file_path(dir, file, where);
    s.step_index = read_int_list(entry_key(entry, "step_index", where), "step_index", where);
    for (std::int64_t v : read_int_list(entry_key(entry, "step_valid", where), "step_valid", where)) {
      if (v != 0 && v != 1) throw detail::type_error(where, "step_valid", entry["step_valid"], "an array of 0 and 1");
      s.step_valid.push_back(static_cast<std::uint8_t>(v));
    }
    if (entry.contains("layer")) s.layer = detail::read_string(entry["layer"], "layer", where);
    if (entry.contains("directions")) s.directions = detail::read_int32(entry["directions"], "directions", where);
    // "layers": the recorded layers in unit order; older indexes lack it and describe their one
    // layer with the two keys above.
    if (entry.contains("layers")) {
      const nlohmann::json& layers = entry["layers"];
      if (!layers.is_array()) throw detail::type_error(where, "layers", layers, "an array of {name, units, directions}");
      for (std::size_t k = 0; k < layers.size(); ++k) {
        const std::string at = where + ": layers[" + std::to_string(k) + "]";
        if (!layers[k].is_object()) throw Error(at + ": expected an object, got " + layers[k].type_name());
        SnapshotLayer l;
        l.name = detail::read_string(entry_key(layers[k], "name", at), "name", at);
        l.units = detail::read_int(entry_key(layers[k], "units", at), "units", at);
        l.directions = detail::read_int32(entry_key(layers[k], "directions", at), "directions", at);
        s.layers.push_back(std::move(l));
      }
    }
    const NpyArray a = read_npy(path);
    if (a.type != NpyType::float32 || a.shape.size() != 3)
      throw Error(path + ": expected float32 [steps, units, probes]");
    s.steps = static_cast<Index>(a.shape[0]);
    s.units = static_cast<Index>(a.shape[1]);
    s.probes = static_cast<Index>(a.shape[2]);
    s.values.resize(a.size());
    std::memcpy(s.values.data(), a.bytes.data(), a.bytes.size());
    // A one-layer list says what the legacy keys say: keep the form a one-layer recorder pushes.
    if (s.layers.size() == 1 && s.layers[0] == SnapshotLayer{s.layer, s.units, s.directions}) s.layers.clear();
    if (s.step_index.empty())
      throw Error(where + ": key 'step_index' is empty (allowed: one original step per stored step)");
    try {
      staged.push(std::move(s));  // step_index set: no second subsampling
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }

  std::size_t loaded = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::lock_guard<std::mutex> other(staged.mutex_);
    if (!kept_.empty()) throw Error("resume: the store already holds snapshots");
    kept_ = std::move(staged.kept_);
    decisions_.insert(decisions_.end(), staged.decisions_.begin(), staged.decisions_.end());
    steps_ = staged.steps_;
    units_ = staged.units_;
    probes_ = staged.probes_;
    ++version_;
    loaded = kept_.size();
    // The files in dir hold exactly these snapshots: a later save() there need not rewrite them.
    std::lock_guard<std::mutex> saved(save_mutex_);
    for (const auto& sp : kept_) saved_[sp->epoch] = sp;
  }
  changed_.notify_all();
  logger()->info("snapshot store: resumed {} snapshot(s) from {}", loaded, dir);
}

}  // namespace mmphate
