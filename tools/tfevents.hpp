// TensorBoard event files written by hand (no protobuf library): TFRecord framing around
// serialized `Event` messages holding scalar `Summary` values.
//
// A record: uint64 length (little-endian), uint32 masked CRC-32C of those 8 bytes, the data,
// uint32 masked CRC-32C of the data. The data of the first record is Event{wall_time,
// file_version = "brain.Event:2"}; each later one Event{wall_time = 1, step = 2, summary = 5},
// Summary{repeated Value value = 1}, Value{tag = 1, simple_value = 2 (float), metadata = 9},
// SummaryMetadata{summary_description = 3} (field numbers of tensorboard's event.proto and
// summary.proto).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mmphate::tb {

// Protocol-buffer wire encoding, appended to a byte string.
class ProtoWriter {
 public:
  void varint(std::uint64_t v);
  void field_varint(int field, std::uint64_t v);     // wire type 0 (int64 as two's complement)
  void field_double(int field, double v);            // wire type 1, fixed64 little-endian
  void field_float(int field, float v);              // wire type 5, fixed32 little-endian
  void field_bytes(int field, const std::string& b); // wire type 2, length-delimited
  const std::string& bytes() const { return out_; }

 private:
  void key(int field, int wire) { varint(static_cast<std::uint64_t>(field) << 3 | static_cast<unsigned>(wire)); }
  std::string out_;
};

struct SummaryValue {
  std::string tag;
  float value = 0;
  std::string description;  // "" = no metadata (TensorBoard keeps the first one per tag)
};

std::string file_version_event(double wall_time);
std::string scalar_event(double wall_time, std::int64_t step, const std::vector<SummaryValue>& values);

// Appends one TFRecord holding `data` to `out`.
void append_record(std::string& out, const std::string& data);

// One point of a scalar curve.
struct ScalarPoint {
  std::string tag;
  std::int64_t step = 0;
  double wall_time = 0;
  double value = 0;
};

// A whole event file: the version record at `start_wall_time`, then the points in step order
// (TensorBoard discards data after a step that goes backwards), one Event per (step,
// wall_time), each tag's description on its first value. Of points with the same tag and
// step the last one given wins.
std::string event_file(const std::vector<ScalarPoint>& points, double start_wall_time,
                       const std::map<std::string, std::string>& descriptions);

// events.out.tfevents.<seconds>.<host>.mmphate: the name TensorBoard looks for ("tfevents");
// the host is reduced to [A-Za-z0-9._-].
std::string event_file_name(double start_wall_time, const std::string& host);

}  // namespace mmphate::tb
