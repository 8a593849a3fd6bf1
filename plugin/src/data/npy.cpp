#include "mmphate/npy.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/atomic_file.hpp"
#include "mmphate/error.hpp"

namespace mmphate {
namespace {

std::size_t element_size(NpyType t) {
  switch (t) {
    case NpyType::float32:
    case NpyType::int32:
      return 4;
    default:
      return 8;
  }
}

const char* descr_of(NpyType t) {
  switch (t) {
    case NpyType::float32: return "<f4";
    case NpyType::float64: return "<f8";
    case NpyType::int32: return "<i4";
    default: return "<i8";
  }
}

// Returns the value text of `key` in the header dict, e.g. "'<f8'" or "(3, 4)".
std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
  const std::string quoted = "'" + key + "'";
  auto pos = header.find(quoted);
  if (pos == std::string::npos) throw Error(path + ": .npy header has no '" + key + "' entry");
  pos = header.find(':', pos);
  if (pos == std::string::npos) throw Error(path + ": malformed .npy header");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  std::size_t end = pos;
  if (header[pos] == '(') {
    end = header.find(')', pos);
    if (end == std::string::npos) throw Error(path + ": malformed shape in .npy header");
    return header.substr(pos, end - pos + 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  std::string v = header.substr(pos, end - pos);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

std::string shape_string(const std::vector<std::size_t>& shape) {
  std::string s;
  for (auto d : shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "[" + s + "]";
}

// Dimensions are decimal integers >= 1: a negative, empty (0) or non-numeric entry is an
// error, as is a shape whose element count overflows.
std::vector<std::size_t> parse_shape(const std::string& text, const std::string& path) {
  // A tuple: an empty value threw std::out_of_range from substr, and 'shape': 12 read as ().
  if (text.size() < 2 || text.front() != '(' || text.back() != ')')
    throw Error(path + ": malformed shape '" + text.substr(0, 40) + "' in .npy header (expected a tuple such as (3, 4))");
  std::vector<std::size_t> shape;
  std::string inner = text.substr(1, text.size() - 2);
  std::stringstream ss(inner);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::size_t a = item.find_first_not_of(' ');
    if (a == std::string::npos) continue;
    std::size_t b = item.find_last_not_of(' ');
    item = item.substr(a, b - a + 1);
    if (item.find_first_not_of("0123456789") != std::string::npos)
      throw Error(path + ": bad shape entry '" + item + "' in .npy header (allowed: integers >= 1)");
    errno = 0;
    char* endp = nullptr;
    const unsigned long long v = std::strtoull(item.c_str(), &endp, 10);
    if (errno == ERANGE || *endp != '\0')
      throw Error(path + ": shape entry '" + item + "' in .npy header is too large");
    shape.push_back(static_cast<std::size_t>(v));
  }
  for (auto d : shape)
    if (d == 0) throw Error(path + ": the array is empty: shape " + shape_string(shape) + " has a dimension 0");
  std::size_t n = 1;
  for (auto d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw Error(path + ": shape " + shape_string(shape) + " in .npy header overflows the element count");
  return shape;
}

// Reads exactly `nbytes` of payload and checks that nothing follows. With a regular file the
// size is checked against the header's claim before any allocation; other inputs (pipes) are
// read in bounded chunks, so a false claim never allocates more than the data that arrived.
void read_payload(std::ifstream& in, const std::string& path, std::size_t nbytes, NpyArray& arr) {
  const std::string claim = "shape " + shape_string(arr.shape) + " of " + npy_type_name(arr.type) + " needs " +
                            std::to_string(nbytes) + " bytes of data";
  struct stat st {};
  const std::streamoff offset = in.tellg();
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && offset >= 0) {
    const auto size = static_cast<std::uint64_t>(st.st_size), start = static_cast<std::uint64_t>(offset);
    const std::uint64_t available = size > start ? size - start : 0;
    if (available < nbytes)
      throw Error(path + ": truncated data: the header's " + claim + ", the file holds " + std::to_string(available));
    if (available > nbytes)
      throw Error(path + ": " + std::to_string(available - nbytes) +
                  " unexpected trailing byte(s) after the data (the header's " + claim + ")");
    arr.bytes.reserve(nbytes);  // the file holds them
  }
  constexpr std::size_t kChunk = std::size_t{64} << 20;
  std::size_t got = 0;
  while (got < nbytes) {
    const std::size_t step = std::min(kChunk, nbytes - got);
    arr.bytes.resize(got + step);
    in.read(reinterpret_cast<char*>(arr.bytes.data() + got), static_cast<std::streamsize>(step));
    got += static_cast<std::size_t>(in.gcount());
    if (static_cast<std::size_t>(in.gcount()) != step)
      throw Error(path + ": truncated data: the header's " + claim + ", found " + std::to_string(got));
  }
  if (in.peek() != std::char_traits<char>::eof())
    throw Error(path + ": unexpected trailing bytes after the data (the header's " + claim + ")");
}

template <typename T>
void write_impl(const std::string& path, const T* data, const std::vector<std::size_t>& shape,
                NpyType type) {
  std::string shape_text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    shape_text += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) shape_text += ",";
    if (i + 1 < shape.size()) shape_text += " ";
  }
  shape_text += ")";
  std::string header = std::string("{'descr': '") + descr_of(type) +
                       "', 'fortran_order': False, 'shape': " + shape_text + ", }";
  // Pad so that magic(6)+version(2)+len(2)+header is a multiple of 64, ending in '\n'.
  std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::size_t count = 1;
  for (auto s : shape) count *= s;

  // Temporary name + rename (atomic_file.hpp): a killed process never leaves a half-written
  // file under the final name, and device nodes, FIFOs and links are handled, not replaced.
  write_file_atomic(path, [&](std::ostream& out) {
    const char magic[] = "\x93NUMPY\x01\x00";
    out.write(magic, 8);
    const auto hlen = static_cast<std::uint16_t>(header.size());
    const unsigned char lenbytes[2] = {static_cast<unsigned char>(hlen & 0xff),
                                       static_cast<unsigned char>(hlen >> 8)};
    out.write(reinterpret_cast<const char*>(lenbytes), 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
  });
}

}  // namespace

const char* npy_type_name(NpyType t) {
  switch (t) {
    case NpyType::float32: return "float32";
    case NpyType::float64: return "float64";
    case NpyType::int32: return "int32";
    default: return "int64";
  }
}

std::size_t NpyArray::size() const {
  std::size_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::vector<double> NpyArray::to_double() const {
  const std::size_t n = size();
  std::vector<double> out(n);
  const unsigned char* p = bytes.data();
  for (std::size_t i = 0; i < n; ++i) {
    switch (type) {
      case NpyType::float32: { float v; std::memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
      case NpyType::float64: { std::memcpy(&out[i], p + 8 * i, 8); break; }
      case NpyType::int32: { std::int32_t v; std::memcpy(&v, p + 4 * i, 4); out[i] = static_cast<double>(v); break; }
      case NpyType::int64: { std::int64_t v; std::memcpy(&v, p + 8 * i, 8); out[i] = static_cast<double>(v); break; }
    }
  }
  return out;
}

std::vector<std::int64_t> NpyArray::to_int64() const {
  if (type != NpyType::int32 && type != NpyType::int64)
    throw Error(std::string("expected an integer array, got ") + npy_type_name(type));
  const std::size_t n = size();
  std::vector<std::int64_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (type == NpyType::int64) {
      std::memcpy(&out[i], bytes.data() + 8 * i, 8);
    } else {
      std::int32_t v;
      std::memcpy(&v, bytes.data() + 4 * i, 4);
      out[i] = v;
    }
  }
  return out;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': no such file or not readable");
  char magic[6];
  in.read(magic, 6);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw Error(path + ": not a .npy file (bad magic bytes)");
  unsigned char ver[2] = {0, 0};
  in.read(reinterpret_cast<char*>(ver), 2);
  if (!in) throw Error(path + ": truncated .npy header");  // before: the version was read uninitialised
  std::size_t hlen = 0;
  if (ver[0] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else if (ver[0] == 2 || ver[0] == 3) {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::size_t>(b[3]) << 24);
  } else {
    throw Error(path + ": unsupported .npy format version " + std::to_string(ver[0]));
  }
  if (!in || hlen > (1u << 20)) throw Error(path + ": truncated or corrupt .npy header");
  std::string header(hlen, '\0');
  in.read(&header[0], static_cast<std::streamsize>(hlen));
  if (!in) throw Error(path + ": truncated .npy header");

  NpyArray arr;
  std::string descr = dict_value(header, "descr", path);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"'))
    descr = descr.substr(1, descr.size() - 2);
  if (descr == "<f4") arr.type = NpyType::float32;
  else if (descr == "<f8") arr.type = NpyType::float64;
  else if (descr == "<i4") arr.type = NpyType::int32;
  else if (descr == "<i8") arr.type = NpyType::int64;
  else
    throw Error(path + ": unsupported dtype '" + descr +
                "' (supported: little-endian float32 '<f4', float64 '<f8', int32 '<i4', int64 '<i8')");
  if (dict_value(header, "fortran_order", path) != "False")
    throw Error(path + ": Fortran-ordered arrays are not supported; save with C order (np.ascontiguousarray)");
  arr.shape = parse_shape(dict_value(header, "shape", path), path);

  std::size_t nbytes = 0;
  if (__builtin_mul_overflow(arr.size(), element_size(arr.type), &nbytes))
    throw Error(path + ": shape " + shape_string(arr.shape) + " in .npy header overflows the byte count");
  read_payload(in, path, nbytes, arr);
  return arr;
}

RowMatrix read_npy_matrix(const std::string& path) {
  NpyArray a = read_npy(path);
  if (a.shape.size() != 2) throw Error(path + ": expected a 2-D array [rows, cols], got shape " + shape_string(a.shape));
  if (a.type != NpyType::float32 && a.type != NpyType::float64)
    throw Error(path + ": expected float32 or float64 data, got " + npy_type_name(a.type));
  std::vector<double> v = a.to_double();
  RowMatrix m(static_cast<Index>(a.shape[0]), static_cast<Index>(a.shape[1]));
  std::copy(v.begin(), v.end(), m.data());
  return m;
}

void write_npy(const std::string& path, const double* data, const std::vector<std::size_t>& shape) {
  write_impl(path, data, shape, NpyType::float64);
}
void write_npy(const std::string& path, const float* data, const std::vector<std::size_t>& shape) {
  write_impl(path, data, shape, NpyType::float32);
}
void write_npy(const std::string& path, const std::int64_t* data,
               const std::vector<std::size_t>& shape) {
  write_impl(path, data, shape, NpyType::int64);
}
void write_npy_matrix(const std::string& path, const RowMatrix& m) {
  write_npy(path, m.data(), {static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())});
}

}  // namespace mmphate
