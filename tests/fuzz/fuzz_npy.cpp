// Fuzz harness of the .npy reader (plugin/src/npy.cpp): read_npy, the element conversions and
// read_npy_matrix, on regular files and, for every 16th input, through a FIFO (the reader's
// chunked path for inputs whose size it cannot know).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <thread>

#include "fuzz.hpp"
#include "mmphate/error.hpp"
#include "mmphate/npy.hpp"

namespace mmphate::fuzz {
namespace {

// A .npy file: magic, version, little-endian header length, header dict padded with spaces
// to a 64-byte boundary and ended by '\n', then the payload.
std::string npy_bytes(std::string dict, const std::string& payload, unsigned char major = 1, bool pad = true) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  if (pad) {
    dict.append((64 - (prefix + dict.size() + 1) % 64) % 64, ' ');
    dict.push_back('\n');
  }
  std::string s = "\x93NUMPY";
  s += static_cast<char>(major);
  s += '\0';
  const std::uint32_t n = static_cast<std::uint32_t>(dict.size());
  for (std::size_t b = 0; b < (major == 1 ? 2u : 4u); ++b) s += static_cast<char>((n >> (8 * b)) & 0xff);
  return s + dict + payload;
}

std::string payload(std::size_t bytes) {
  std::string p(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i) p[i] = static_cast<char>(i * 37 + 11);
  return p;
}

std::string dict(const std::string& descr, const std::string& shape, const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

std::vector<std::string> seeds() {
  return {npy_bytes(dict("<f8", "(2, 3)"), payload(48)),
          npy_bytes(dict("<f4", "(4,)"), payload(16)),
          npy_bytes(dict("<i4", "(2, 2)"), payload(16)),
          npy_bytes(dict("<i8", "(3, 1)"), payload(24)),
          npy_bytes(dict("<f8", "(1, 2, 2)"), payload(32), 2),
          npy_bytes(dict("<f4", "(2, 1)"), payload(8), 3),
          npy_bytes(dict("<f8", "()"), payload(8)),
          npy_bytes("{'shape': (2, 2), 'fortran_order': False, 'descr': '<f4'}", payload(16)),
          npy_bytes("{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (1, 1)}", payload(8), 1, false)};
}

// Fresh headers from the format's vocabulary, right or wrong, with a payload of about the
// size they claim.
std::string generate(Rng& rng) {
  static const char* descrs[] = {"<f8", "<f4", "<i4", "<i8", ">f8", "|u1", "<f2", "<c16", "O", "", "<f8'", "<i8 "};
  static const char* fortran[] = {"False", "True", "0", "", "False "};
  static const char* dims[] = {"0", "1", "2", "3", "7", "-1", "4294967296", "18446744073709551615",
                               "18446744073709551616", "1000000000000", "2305843009213693952", " ", "1L", "x"};
  std::string shape = "(";
  const std::size_t rank = uniform(rng, 5);
  std::size_t elems = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    const char* d = uniform(rng, 3) ? dims[1 + uniform(rng, 4)] : dims[uniform(rng, std::size(dims))];
    shape += std::string(d) + (rank == 1 || i + 1 < rank ? "," : "") + (i + 1 < rank ? " " : "");
    elems *= std::strtoull(d, nullptr, 10) % 8;
  }
  shape += uniform(rng, 10) ? ")" : "";
  const std::string descr = descrs[uniform(rng, std::size(descrs))];
  const std::size_t width = descr.find('4') != std::string::npos ? 4 : 8;
  std::size_t bytes = elems * width;
  switch (uniform(rng, 4)) {
    case 0: bytes += 1 + uniform(rng, 16); break;                             // trailing bytes
    case 1: bytes -= std::min<std::size_t>(bytes, 1 + uniform(rng, 8)); break;  // truncated
    default: break;
  }
  static const unsigned char versions[] = {1, 2, 3, 0, 4, 255};
  const unsigned char major = uniform(rng, 4) ? versions[uniform(rng, 3)] : versions[uniform(rng, std::size(versions))];
  return npy_bytes(dict(descr, shape, fortran[uniform(rng, std::size(fortran))]), payload(bytes), major,
                   uniform(rng, 8) != 0);
}

std::size_t width_of(NpyType t) { return t == NpyType::float32 || t == NpyType::int32 ? 4 : 8; }

void check(const NpyArray& a) {
  if (a.bytes.size() != a.size() * width_of(a.type))
    throw Broken("payload of " + std::to_string(a.bytes.size()) + " bytes for " + std::to_string(a.size()) +
                 " elements of " + npy_type_name(a.type));
  for (auto d : a.shape)
    if (d == 0) throw Broken("a dimension 0 was accepted");
  if (a.to_double().size() != a.size()) throw Broken("to_double() size");
  if (a.type == NpyType::int32 || a.type == NpyType::int64) {
    if (a.to_int64().size() != a.size()) throw Broken("to_int64() size");
  }
}

// Writes `input` into a FIFO from a second thread while the reader reads it. The reader may
// stop early (a bad header): the writer then gets EPIPE and ends.
NpyArray read_through_fifo(const std::string& input, const std::string& path) {
  ::unlink(path.c_str());
  if (::mkfifo(path.c_str(), 0600) != 0) throw std::runtime_error(std::string("mkfifo: ") + std::strerror(errno));
  std::thread writer([&] {
    const int fd = ::open(path.c_str(), O_WRONLY);
    if (fd < 0) return;
    for (std::size_t done = 0; done < input.size();) {
      const ssize_t n = ::write(fd, input.data() + done, input.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
  });
  struct Join {
    std::thread& t;
    ~Join() { t.join(); }
  } join{writer};
  return read_npy(path);
}

void run(const std::string& input, const std::string& scratch) {
  static bool ignore_sigpipe = (::signal(SIGPIPE, SIG_IGN), true);
  (void)ignore_sigpipe;
  static std::size_t count = 0;
  if (++count % 16 == 0) {
    check(read_through_fifo(input, scratch + "/fifo.npy"));
    return;
  }
  const std::string path = scratch + "/input.npy";
  write_file(path, input);
  NpyArray a = read_npy(path);
  check(a);
  // The matrix reader adds its own rules (2-D, floats); its rejections must be clean too.
  try {
    const RowMatrix m = read_npy_matrix(path);
    if (static_cast<std::size_t>(m.size()) != a.size()) throw Broken("read_npy_matrix size");
  } catch (const Error&) {
  }
}

}  // namespace

const Target& target() {
  static const Target t{"npy",
                        seeds,
                        run,
                        {"\x93NUMPY", "'descr'", "'shape'", "'fortran_order'", "'<f8'", "'<f4'", "'<i4'", "'<i8'",
                         "'>f8'", "True", "False", "(", ")", "()", "(0,)", "(10, 0)", "(-1,)", ",", ": ", "{", "}",
                         "\n", "'", "\"", "(18446744073709551615,)", "(4294967296, 4294967296)"},
                        false,
                        generate,
                        4000};
  return t;
}

}  // namespace mmphate::fuzz
