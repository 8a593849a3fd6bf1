// TensorBoard scalars of `mmphate export --tensorboard` (docs/VIEWER.md): the event file is
// read back by an independent reader written here (its own bitwise CRC-32C, TFRecord framing
// and protobuf decoding) and compared with frames.jsonl; the writer's pieces are checked
// against known bytes.
#include <dirent.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "crc32c.hpp"
#include "tfevents.hpp"

using nlohmann::json;

namespace {

// ---- independent reader ------------------------------------------------------------------

// Bit by bit (the writer uses a table), reflected Castagnoli polynomial.
std::uint32_t ref_crc32c(const std::string& s) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (const unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}
std::uint32_t ref_masked(const std::string& s) {
  const std::uint32_t c = ref_crc32c(s);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

std::uint64_t le(const std::string& s, std::size_t pos, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[pos + i])) << (8 * i);
  return v;
}

// TFRecords of a file; throws on truncation or a CRC that does not match.
std::vector<std::string> read_records(const std::string& file) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < file.size()) {
    if (file.size() - pos < 12) throw std::runtime_error("truncated record header");
    const std::uint64_t len = le(file, pos, 8);
    if (le(file, pos + 8, 4) != ref_masked(file.substr(pos, 8))) throw std::runtime_error("length CRC mismatch");
    if (file.size() - pos - 12 < len + 4) throw std::runtime_error("truncated record data");
    std::string data = file.substr(pos + 12, len);
    if (le(file, pos + 12 + len, 4) != ref_masked(data)) throw std::runtime_error("data CRC mismatch");
    out.push_back(std::move(data));
    pos += 12 + len + 4;
  }
  return out;
}

struct Field {
  int number = 0, wire = 0;
  std::uint64_t bits = 0;  // varint, fixed64 or fixed32 value
  std::string bytes;       // length-delimited payload
};

std::uint64_t read_varint(const std::string& s, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= s.size()) throw std::runtime_error("truncated varint");
    const auto b = static_cast<unsigned char>(s[pos++]);
    v |= static_cast<std::uint64_t>(b & 0x7Fu) << shift;
    if (!(b & 0x80u)) return v;
  }
  throw std::runtime_error("varint too long");
}

std::vector<Field> decode(const std::string& msg) {
  std::vector<Field> out;
  std::size_t pos = 0;
  while (pos < msg.size()) {
    const std::uint64_t key = read_varint(msg, pos);
    Field f;
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7u);
    if (f.wire == 0) {
      f.bits = read_varint(msg, pos);
    } else if (f.wire == 1 || f.wire == 5) {
      const int n = f.wire == 1 ? 8 : 4;
      if (msg.size() - pos < static_cast<std::size_t>(n)) throw std::runtime_error("truncated fixed field");
      f.bits = le(msg, pos, n);
      pos += static_cast<std::size_t>(n);
    } else if (f.wire == 2) {
      const std::uint64_t n = read_varint(msg, pos);
      if (msg.size() - pos < n) throw std::runtime_error("truncated length-delimited field");
      f.bytes = msg.substr(pos, n);
      pos += n;
    } else {
      throw std::runtime_error("unexpected wire type " + std::to_string(f.wire));
    }
    out.push_back(std::move(f));
  }
  return out;
}

struct Value {
  std::string tag, description;
  float value = NAN;
  bool has_metadata = false;
};
struct Event {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;
  bool has_summary = false;
  std::vector<Value> values;
};

// event.proto: wall_time 1 (double), step 2 (int64), file_version 3, summary 5; summary.proto:
// Summary.value 1, Value.tag 1, simple_value 2 (float), metadata 9, summary_description 3.
Event decode_event(const std::string& data) {
  Event e;
  for (const Field& f : decode(data)) {
    if (f.number == 1 && f.wire == 1) std::memcpy(&e.wall_time, &f.bits, 8);
    else if (f.number == 2 && f.wire == 0) e.step = static_cast<std::int64_t>(f.bits);
    else if (f.number == 3 && f.wire == 2) e.file_version = f.bytes;
    else if (f.number == 5 && f.wire == 2) {
      e.has_summary = true;
      for (const Field& v : decode(f.bytes)) {
        if (v.number != 1 || v.wire != 2) throw std::runtime_error("unexpected Summary field");
        Value val;
        for (const Field& g : decode(v.bytes)) {
          if (g.number == 1 && g.wire == 2) val.tag = g.bytes;
          else if (g.number == 2 && g.wire == 5) {
            const auto b = static_cast<std::uint32_t>(g.bits);
            std::memcpy(&val.value, &b, 4);
          } else if (g.number == 9 && g.wire == 2) {
            val.has_metadata = true;
            for (const Field& m : decode(g.bytes))
              if (m.number == 3 && m.wire == 2) val.description = m.bytes;
          } else {
            throw std::runtime_error("unexpected Value field " + std::to_string(g.number));
          }
        }
        e.values.push_back(val);
      }
    } else {
      throw std::runtime_error("unexpected Event field " + std::to_string(f.number));
    }
  }
  return e;
}

// ---- helpers -----------------------------------------------------------------------------

const std::string kData = std::string(MMPHATE_SOURCE_DIR) + "/tests/data/";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string fresh_dir(const std::string& name) {
  const std::string d = testing::TempDir() + "/mmphate_tfevents_" + name;
  const std::string cmd = "rm -rf '" + d + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return d;
}

// Runs the CLI; returns the path of the one event file it wrote into out.
std::string export_run(const std::string& run, const std::string& out) {
  const std::string cmd = std::string("'") + MMPHATE_CLI + "' export --tensorboard '" + run + "' '" + out +
                          "' --frames last --quiet >/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<std::string> found;
  if (DIR* d = ::opendir(out.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("events.out.tfevents.", 0) == 0 && n.size() > 8 && n.substr(n.size() - 8) == ".mmphate") found.push_back(n);
    }
    ::closedir(d);
  }
  EXPECT_EQ(found.size(), 1u);
  return found.empty() ? "" : out + "/" + found[0];
}

std::vector<json> frame_lines(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(slurp(path));
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

struct Point {
  float value;
  double wall_time;
};
using Points = std::map<std::pair<std::string, std::int64_t>, Point>;

// Reads the file, checks the framing and the order, returns every (tag, step).
Points read_points(const std::string& path, std::map<std::string, int>* described = nullptr) {
  const std::vector<std::string> records = read_records(slurp(path));
  EXPECT_GE(records.size(), 2u);
  Points pts;
  if (records.empty()) return pts;
  const Event first = decode_event(records[0]);
  EXPECT_EQ(first.file_version, "brain.Event:2");
  EXPECT_FALSE(first.has_summary);
  std::int64_t last_step = -1;
  for (std::size_t i = 1; i < records.size(); ++i) {
    const Event e = decode_event(records[i]);
    EXPECT_TRUE(e.has_summary);
    EXPECT_TRUE(e.file_version.empty());
    EXPECT_GE(e.step, last_step) << "steps must not go backwards (TensorBoard drops data after that)";
    last_step = e.step;
    for (const Value& v : e.values) {
      EXPECT_TRUE(pts.emplace(std::make_pair(v.tag, e.step), Point{v.value, e.wall_time}).second)
          << "duplicate " << v.tag << " at step " << e.step;
      if (v.has_metadata && described) ++(*described)[v.tag];
      if (v.has_metadata) EXPECT_NE(v.description.find("Step = epoch"), std::string::npos) << v.tag;
    }
  }
  return pts;
}

int phase_code(const std::string& l) {
  return l == "unknown" ? 0 : l == "information_processing" ? 1 : l == "compression" ? 2 : l == "stable" ? 3 : -1;
}

}  // namespace

TEST(TfEventsCrc, KnownCrc32cVectors) {
  // RFC 3720 (iSCSI) B.4 and the "123456789" check value of CRC-32C.
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending += static_cast<char>(i);
    descending += static_cast<char>(31 - i);
  }
  const std::vector<std::pair<std::string, std::uint32_t>> vectors = {
      {"123456789", 0xE3069283u}, {std::string(32, '\0'), 0x8A9136AAu}, {std::string(32, '\xff'), 0x62A8AB43u},
      {ascending, 0x46DD794Eu},   {descending, 0x113FDB5Cu},            {"", 0u}};
  for (const auto& [bytes, crc] : vectors) {
    EXPECT_EQ(ref_crc32c(bytes), crc) << "test reader, " << bytes.size() << " bytes";
    EXPECT_EQ(mmphate::tb::crc32c(bytes.data(), bytes.size()), crc) << "writer, " << bytes.size() << " bytes";
    EXPECT_EQ(mmphate::tb::masked_crc32c(bytes.data(), bytes.size()), ref_masked(bytes));
  }
}

TEST(TfEventsWriter, EncodesAScalarEventByHand) {
  // Event{wall_time 1.5, step 3, summary{value{tag "a", simple_value 1}}}, bytes worked out by
  // hand from the wire format: keys (field << 3 | wire), little-endian fixed fields.
  const std::string got = mmphate::tb::scalar_event(1.5, 3, {{"a", 1.0f, ""}});
  const std::string want("\x09\x00\x00\x00\x00\x00\x00\xf8\x3f"  // 1: double 1.5
                         "\x10\x03"                              // 2: varint 3
                         "\x2a\x0a"                              // 5: Summary, 10 bytes
                         "\x0a\x08"                              //   1: Value, 8 bytes
                         "\x0a\x01\x61"                          //     1: tag "a"
                         "\x15\x00\x00\x80\x3f",                 //     2: float 1.0
                         23);
  EXPECT_EQ(got, want);
  // A negative step is a ten-byte varint (int64 two's complement), read back unchanged.
  const Event neg = decode_event(mmphate::tb::scalar_event(2.0, -1, {{"b", -0.5f, "why"}}));
  EXPECT_EQ(neg.step, -1);
  EXPECT_EQ(neg.wall_time, 2.0);
  ASSERT_EQ(neg.values.size(), 1u);
  EXPECT_EQ(neg.values[0].value, -0.5f);
  EXPECT_EQ(neg.values[0].description, "why");
  // Record framing: length, its masked CRC, data, its masked CRC.
  std::string rec;
  mmphate::tb::append_record(rec, "hello");
  ASSERT_EQ(rec.size(), 8u + 4 + 5 + 4);
  EXPECT_EQ(le(rec, 0, 8), 5u);
  EXPECT_EQ(le(rec, 8, 4), ref_masked(rec.substr(0, 8)));
  EXPECT_EQ(rec.substr(12, 5), "hello");
  EXPECT_EQ(le(rec, 17, 4), ref_masked("hello"));
  EXPECT_EQ(mmphate::tb::event_file_name(1700000000.9, "gpu-7.lab/x y"),
            "events.out.tfevents.1700000000.gpu-7.lab_x_y.mmphate");
}

TEST(TfEventsReader, FailsOnAWrongCrc) {
  std::string file;
  mmphate::tb::append_record(file, mmphate::tb::file_version_event(1.0));
  mmphate::tb::append_record(file, mmphate::tb::scalar_event(1.0, 0, {{"metrics/loss", 0.25f, ""}}));
  ASSERT_EQ(read_records(file).size(), 2u);
  std::string bad_data = file;
  bad_data[bad_data.size() - 6] ^= 0x01;  // a byte of the second record's data
  EXPECT_THROW(read_records(bad_data), std::runtime_error);
  std::string bad_length_crc = file;
  bad_length_crc[9] ^= 0x40;
  EXPECT_THROW(read_records(bad_length_crc), std::runtime_error);
  EXPECT_THROW(read_records(file.substr(0, file.size() - 1)), std::runtime_error);
}

TEST(ExportTensorboard, ScalarsOfTheSampleRunMatchItsFrames) {
  const std::string out = fresh_dir("sample") + "/not/yet/there";  // parents created too
  const std::string path = export_run(kData + "sample_run", out);
  ASSERT_FALSE(path.empty());
  EXPECT_NE(path.find("events.out.tfevents.1700000000."), std::string::npos) << "named after the run's start";
  std::map<std::string, int> described;
  const Points got = read_points(path, &described);

  // What frames.jsonl says, read here on its own.
  Points want;
  for (const json& f : frame_lines(kData + "sample_run/frames.jsonl")) {
    if (f["type"] != "embedding") continue;
    const std::int64_t e = f["epoch"];
    const double w = f["wall_time"];
    for (const auto& [k, v] : f["metrics"].items())
      if (v.is_number()) want[{"metrics/" + k, e}] = {v.get<float>(), w};
    for (const auto& [k, v] : f["diagnostics"]["quantities"].items()) want[{"diagnostics/" + k, e}] = {v.get<float>(), w};
    want[{"progress/global_step", e}] = {f["global_step"].get<float>(), w};
    want[{"phase/code", e}] = {static_cast<float>(phase_code(f["diagnostics"]["phase"]["label"])), w};
  }
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [key, p] : want) {
    const auto it = got.find(key);
    ASSERT_NE(it, got.end()) << key.first << " at step " << key.second;
    EXPECT_EQ(it->second.value, p.value) << key.first << " at step " << key.second;
    EXPECT_EQ(it->second.wall_time, p.wall_time) << key.first << " at step " << key.second;
  }
  // Spot checks against the file's text, and the null val_acc of epoch 1 left out.
  EXPECT_EQ(got.at({"metrics/train_loss", 0}).value, 2.4f);
  EXPECT_EQ(got.at({"diagnostics/intra_step_entropy", 2}).value, 2.5049f);
  EXPECT_EQ(got.at({"phase/code", 0}).value, 1.0f);
  EXPECT_EQ(got.at({"phase/code", 7}).value, 2.0f);
  EXPECT_EQ(got.at({"progress/global_step", 7}).value, 800.0f);
  EXPECT_EQ(got.count({"metrics/val_acc", 1}), 0u);
  // Each tag's description once, on its first value.
  std::set<std::string> tags;
  for (const auto& [key, p] : got) tags.insert(key.first);
  for (const auto& t : tags) EXPECT_EQ(described[t], 1) << t;

  // Exporting again replaces the file (same name), it does not add a second copy.
  EXPECT_EQ(export_run(kData + "sample_run", out), path);
}

// A run whose updater fell behind: epoch 3 got no frame of its own, the next frame carries its
// metrics (coalesced_metrics) and its diagnostics (per_epoch); the last frame labels the phases
// of its whole window.
TEST(ExportTensorboard, CoalescedEpochsAndSettledPhasesHaveTheirPoints) {
  const std::string dir = fresh_dir("coalesced");
  const std::string run = dir + "/run";
  ASSERT_EQ(std::system(("mkdir -p '" + dir + "' && cp -r '" + kData + "sample_run' '" + run + "'").c_str()), 0);
  std::vector<json> lines = frame_lines(run + "/frames.jsonl");
  json removed;
  std::ofstream os(run + "/frames.jsonl", std::ios::binary | std::ios::trunc);
  for (json& f : lines) {
    if (f["type"] == "embedding" && f["epoch"] == 3) { removed = f; continue; }
    if (f["type"] == "embedding" && f["epoch"] == 4) {
      f["coalesced_epochs"] = {3};
      f["coalesced_metrics"] = {{"3", removed["metrics"]}};
      f["diagnostics"]["phase"]["per_epoch"] = {"information_processing", "information_processing", "compression",
                                                "compression"};  // window 1..4
    }
    if (f["type"] == "embedding" && f["epoch"] == 7)  // window 4..7
      f["diagnostics"]["phase"]["per_epoch"] = {"stable", "stable", "compression", "unknown"};
    os << f.dump() << "\n";
  }
  os.close();
  ASSERT_FALSE(removed.is_null());
  const json& carrier = lines[6];  // the epoch-4 frame
  ASSERT_EQ(carrier["epoch"], 4);

  const std::string path = export_run(run, dir + "/tb");
  ASSERT_FALSE(path.empty());
  const Points got = read_points(path);
  const double carrier_wall = carrier["wall_time"];
  for (const auto& [k, v] : removed["metrics"].items()) {
    const auto it = got.find({"metrics/" + k, 3});
    ASSERT_NE(it, got.end()) << k;
    EXPECT_EQ(it->second.value, v.get<float>()) << k;
    EXPECT_EQ(it->second.wall_time, carrier_wall) << k;
  }
  // Window [1, 2, 3, 4]: epoch 3 is position 2 of the carrier's per_epoch curves.
  for (const auto& [k, arr] : carrier["diagnostics"]["per_epoch"].items())
    EXPECT_EQ(got.at({"diagnostics/" + k, 3}).value, arr[2].get<float>()) << k;
  EXPECT_EQ(got.count({"progress/global_step", 3}), 0u) << "a coalesced epoch has no global step of its own";
  // The last frame's labels of epochs 4..7 win over the labels those epochs had when newest.
  EXPECT_EQ(got.at({"phase/code", 4}).value, 3.0f);
  EXPECT_EQ(got.at({"phase/code", 5}).value, 3.0f);
  EXPECT_EQ(got.at({"phase/code", 6}).value, 2.0f);
  EXPECT_EQ(got.at({"phase/code", 7}).value, 0.0f);
  EXPECT_EQ(got.at({"phase/code", 3}).value, 2.0f) << "epoch 3's label from the carrier's per_epoch labels";
  EXPECT_EQ(got.at({"phase/code", 1}).value, 1.0f);
  // Every point of an epoch carries the wall time of the frame that reported the epoch.
  for (const auto& [key, p] : got)
    if (key.second == 4) EXPECT_EQ(p.wall_time, carrier_wall) << key.first;
}
