#include "tfevents.hpp"

#include <cctype>
#include <cmath>
#include <cstring>
#include <ctime>

#include "crc32c.hpp"

namespace mmphate::tb {
namespace {

// Explicit byte order: the files must read the same on any host.
void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFFu);
}

}  // namespace

void ProtoWriter::varint(std::uint64_t v) {
  while (v >= 0x80) {
    out_ += static_cast<char>((v & 0x7Fu) | 0x80u);
    v >>= 7;
  }
  out_ += static_cast<char>(v);
}

void ProtoWriter::field_varint(int field, std::uint64_t v) {
  key(field, 0);
  varint(v);
}

void ProtoWriter::field_double(int field, double v) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  key(field, 1);
  put_le(out_, bits, 8);
}

void ProtoWriter::field_float(int field, float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  key(field, 5);
  put_le(out_, bits, 4);
}

void ProtoWriter::field_bytes(int field, const std::string& b) {
  key(field, 2);
  varint(b.size());
  out_ += b;
}

std::string file_version_event(double wall_time) {
  ProtoWriter e;
  e.field_double(1, wall_time);
  e.field_bytes(3, "brain.Event:2");
  return e.bytes();
}

std::string scalar_event(double wall_time, std::int64_t step, const std::vector<SummaryValue>& values) {
  ProtoWriter summary;
  for (const auto& v : values) {
    ProtoWriter value;
    value.field_bytes(1, v.tag);
    value.field_float(2, v.value);
    if (!v.description.empty()) {
      ProtoWriter meta;
      meta.field_bytes(3, v.description);
      value.field_bytes(9, meta.bytes());
    }
    summary.field_bytes(1, value.bytes());
  }
  ProtoWriter e;
  e.field_double(1, wall_time);
  e.field_varint(2, static_cast<std::uint64_t>(step));
  e.field_bytes(5, summary.bytes());
  return e.bytes();
}

void append_record(std::string& out, const std::string& data) {
  std::string len;
  put_le(len, data.size(), 8);
  out += len;
  put_le(out, masked_crc32c(len.data(), len.size()), 4);
  out += data;
  put_le(out, masked_crc32c(data.data(), data.size()), 4);
}

std::string event_file(const std::vector<ScalarPoint>& points, double start_wall_time,
                       const std::map<std::string, std::string>& descriptions) {
  // (step, tag) -> the last point given; then grouped by (step, wall_time) in that order.
  std::map<std::pair<std::int64_t, std::string>, const ScalarPoint*> last;
  for (const auto& p : points) last[{p.step, p.tag}] = &p;
  std::map<std::pair<std::int64_t, double>, std::vector<const ScalarPoint*>> events;
  for (const auto& [key, p] : last) events[{p->step, p->wall_time}].push_back(p);

  std::string out;
  append_record(out, file_version_event(start_wall_time));
  std::map<std::string, bool> described;
  for (const auto& [key, ps] : events) {
    std::vector<SummaryValue> values;
    for (const ScalarPoint* p : ps) {
      SummaryValue v{p->tag, static_cast<float>(p->value), ""};
      if (!described[p->tag]) {
        described[p->tag] = true;
        if (auto d = descriptions.find(p->tag); d != descriptions.end()) v.description = d->second;
      }
      values.push_back(std::move(v));
    }
    append_record(out, scalar_event(key.second, key.first, values));
  }
  return out;
}

std::string event_file_name(double start_wall_time, const std::string& host) {
  std::string h;
  for (const char c : host)
    h += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  if (h.empty()) h = "localhost";
  const long long secs = std::isfinite(start_wall_time) && start_wall_time > 0
                             ? static_cast<long long>(start_wall_time)
                             : static_cast<long long>(std::time(nullptr));
  return "events.out.tfevents." + std::to_string(secs) + "." + h + ".mmphate";
}

}  // namespace mmphate::tb
