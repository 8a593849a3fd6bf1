// SnapshotStore's files: save() writes the kept snapshots as one .npy per epoch plus
// index.json (atomically, rewriting only what changed); resume() reads them back as untrusted
// input into a staging store, so a failed resume leaves the store empty.
#include "mmphate/snapshot_store.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include <nlohmann/json.hpp>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "mmphate/npy.hpp"
#include "util/atomic_file.hpp"
#include "util/config_json.hpp"

namespace mmphate {
namespace {

std::string epoch_file(std::int64_t epoch) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "epoch_%06lld.npy", static_cast<long long>(epoch));
  return buf;
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    throw Error("cannot create directory '" + path + "'");
}

}  // namespace

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
  std::ifstream in(src, std::ios::binary);
  if (!in) throw Error("cannot resume from '" + dir + "': no index.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Depth-limited like every reader of untrusted JSON (util/config_json.hpp).
  const nlohmann::json index = detail::parse_untrusted_json(text, src);
  if (!index.is_object() || !index.contains("format") || index["format"] != "mmphate-snapshots")
    throw Error(src + ": not a mmphate snapshot index (expected an object with \"format\": \"mmphate-snapshots\")");
  const nlohmann::json& list = entry_key(index, "snapshots", src);
  if (!list.is_array()) throw detail::type_error(src, "snapshots", list, "an array of snapshot entries");

  // Everything loads into a staging store under this store's policy; this store changes only
  // once every snapshot has loaded, so a failed resume leaves it empty and resumable.
  SnapshotStore staged(policy());
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
