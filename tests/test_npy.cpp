// Unit tests of the .npy reader / writer: round trips of every written dtype and clear
// errors (mmphate::Error naming the problem) on every malformed file the reader rejects.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "util/atomic_file.hpp"
#include "mmphate/error.hpp"
#include "util/memory.hpp"
#include "mmphate/npy.hpp"

using namespace mmphate;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto tick = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() /
            ("mmphate_test_npy_" + std::to_string(std::random_device{}()) + "_" + std::to_string(tick) + "_" +
             std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Writes a version-1.0 .npy file with the given header dict and raw payload.
// The header is padded with spaces to a 64-byte boundary and ends in '\n', as NumPy does.
void write_raw_npy(const std::string& path, std::string dict, const std::vector<unsigned char>& payload,
                   const char* magic = "\x93NUMPY", unsigned char major = 1) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::size_t total = prefix + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write(magic, 6);
  const unsigned char ver[2] = {major, 0};
  out.write(reinterpret_cast<const char*>(ver), 2);
  if (major == 1) {
    const unsigned char len[2] = {static_cast<unsigned char>(dict.size() & 0xff),
                                  static_cast<unsigned char>(dict.size() >> 8)};
    out.write(reinterpret_cast<const char*>(len), 2);
  } else {
    const std::uint32_t n = static_cast<std::uint32_t>(dict.size());
    const unsigned char len[4] = {static_cast<unsigned char>(n & 0xff), static_cast<unsigned char>((n >> 8) & 0xff),
                                  static_cast<unsigned char>((n >> 16) & 0xff),
                                  static_cast<unsigned char>((n >> 24) & 0xff)};
    out.write(reinterpret_cast<const char*>(len), 4);
  }
  out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
  out.write(reinterpret_cast<const char*>(payload.data()), static_cast<std::streamsize>(payload.size()));
}

template <typename T>
std::vector<unsigned char> bytes_of(const std::vector<T>& v) {
  std::vector<unsigned char> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Expects read_npy(path) to throw mmphate::Error whose message contains every needle.
void expect_read_error(const std::string& path, const std::vector<std::string>& needles) {
  try {
    read_npy(path);
    ADD_FAILURE() << "read_npy(" << path << ") did not throw";
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const auto& n : needles)
      EXPECT_NE(what.find(n), std::string::npos) << "message '" << what << "' lacks '" << n << "'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "read_npy threw a non-mmphate exception: " << e.what();
  }
}

}  // namespace

TEST(Npy, RoundTripFloat64KeepsValuesAndShape) {
  TempDir dir;
  const std::string p = dir.file("f8.npy");
  std::vector<double> v = {0.0, -0.0, 1.5, -2.25, 1e-310, 1e300, std::numeric_limits<double>::infinity(),
                           3.141592653589793, -1e-20, 42.0, 7.0, 0.1};
  write_npy(p, v.data(), {2, 3, 2});
  const NpyArray a = read_npy(p);
  EXPECT_EQ(a.type, NpyType::float64);
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{2, 3, 2}));
  EXPECT_EQ(a.size(), 12u);
  const auto back = a.to_double();
  ASSERT_EQ(back.size(), v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(std::memcmp(&back[i], &v[i], sizeof(double)), 0) << "element " << i;
  }
  EXPECT_FALSE(fs::exists(p + ".tmp"));
}

TEST(Npy, RoundTripFloat32KeepsValuesAndShape) {
  TempDir dir;
  const std::string p = dir.file("f4.npy");
  std::vector<float> v = {1.0f, -0.5f, 3.25f, 1e-30f, -7.0f, 0.1f};
  write_npy(p, v.data(), {6});
  const NpyArray a = read_npy(p);
  EXPECT_EQ(a.type, NpyType::float32);
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{6}));
  const auto back = a.to_double();
  ASSERT_EQ(back.size(), v.size());
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(back[i], static_cast<double>(v[i]));
  // float data is not an integer array
  EXPECT_THROW(a.to_int64(), Error);
}

TEST(Npy, RoundTripInt64KeepsValuesAndShape) {
  TempDir dir;
  const std::string p = dir.file("i8.npy");
  std::vector<std::int64_t> v = {0, -1, 1, (std::int64_t{1} << 53) + 1, std::numeric_limits<std::int64_t>::min(),
                                 std::numeric_limits<std::int64_t>::max()};
  write_npy(p, v.data(), {3, 2});
  const NpyArray a = read_npy(p);
  EXPECT_EQ(a.type, NpyType::int64);
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{3, 2}));
  EXPECT_EQ(a.to_int64(), v);
}

TEST(Npy, MatrixRoundTripIsRowMajor) {
  TempDir dir;
  const std::string p = dir.file("m.npy");
  RowMatrix m(2, 3);
  m << 1, 2, 3, 4, 5, 6;
  write_npy_matrix(p, m);
  const NpyArray a = read_npy(p);
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{2, 3}));
  // C order: the payload is 1 2 3 4 5 6
  EXPECT_EQ(a.to_double(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  const RowMatrix back = read_npy_matrix(p);
  EXPECT_EQ(back, m);
}

TEST(Npy, ReadsHandWrittenInt32AndVersion2Header) {
  TempDir dir;
  const std::string p = dir.file("i4.npy");
  std::vector<std::int32_t> v = {-3, 0, 5, 2147483647};
  write_raw_npy(p, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", bytes_of(v));
  NpyArray a = read_npy(p);
  EXPECT_EQ(a.type, NpyType::int32);
  EXPECT_EQ(a.to_int64(), (std::vector<std::int64_t>{-3, 0, 5, 2147483647}));
  EXPECT_EQ(a.to_double(), (std::vector<double>{-3, 0, 5, 2147483647}));

  const std::string p2 = dir.file("v2.npy");
  std::vector<double> d = {1.0, 2.0, 3.0};
  write_raw_npy(p2, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", bytes_of(d), "\x93NUMPY", 2);
  a = read_npy(p2);
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{3}));
  EXPECT_EQ(a.to_double(), d);
}

TEST(Npy, MissingFileThrows) {
  TempDir dir;
  expect_read_error(dir.file("does_not_exist.npy"), {"does_not_exist.npy", "cannot open"});
}

TEST(Npy, WrongMagicThrows) {
  TempDir dir;
  const std::string p = dir.file("magic.npy");
  std::vector<double> d = {1.0};
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", bytes_of(d), "\x93NUMPX");
  expect_read_error(p, {"magic"});
  // a plain text file is no .npy either
  const std::string q = dir.file("text.npy");
  std::ofstream(q) << "hello world, not numpy\n";
  expect_read_error(q, {"magic"});
}

TEST(Npy, BigEndianThrows) {
  TempDir dir;
  const std::string p = dir.file("be.npy");
  std::vector<unsigned char> payload(16, 0);
  write_raw_npy(p, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", payload);
  expect_read_error(p, {"dtype", ">f8"});
}

TEST(Npy, FortranOrderThrows) {
  TempDir dir;
  const std::string p = dir.file("fortran.npy");
  std::vector<double> d = {1, 2, 3, 4};
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", bytes_of(d));
  expect_read_error(p, {"Fortran"});
}

TEST(Npy, UnsupportedDtypeThrows) {
  TempDir dir;
  const std::string p = dir.file("u1.npy");
  std::vector<unsigned char> payload = {1, 2, 3, 4};
  write_raw_npy(p, "{'descr': '<u1', 'fortran_order': False, 'shape': (4,), }", payload);
  expect_read_error(p, {"dtype", "<u1"});
}

TEST(Npy, TruncatedDataThrows) {
  TempDir dir;
  const std::string p = dir.file("trunc.npy");
  std::vector<double> d = {1, 2, 3, 4, 5};  // 5 of the 6 elements the header promises
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", bytes_of(d));
  expect_read_error(p, {"truncated", "48"});
}

TEST(Npy, TruncatedHeaderThrows) {
  TempDir dir;
  const std::string p = dir.file("trunc_header.npy");
  {
    std::ofstream out(p, std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    const unsigned char len[2] = {0x76, 0x00};  // promises 118 header bytes
    out.write(reinterpret_cast<const char*>(len), 2);
    out << "{'descr': '<f8',";
  }
  expect_read_error(p, {"truncated"});
}

TEST(Npy, ReadMatrixRejectsWrongRankAndIntegerData) {
  TempDir dir;
  const std::string p1 = dir.file("vec.npy");
  std::vector<double> v = {1, 2, 3};
  write_npy(p1, v.data(), {3});
  try {
    read_npy_matrix(p1);
    ADD_FAILURE() << "1-D array accepted as a matrix";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2-D"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3]"), std::string::npos) << e.what();
  }
  const std::string p2 = dir.file("int.npy");
  std::vector<std::int64_t> iv = {1, 2, 3, 4};
  write_npy(p2, iv.data(), {2, 2});
  try {
    read_npy_matrix(p2);
    ADD_FAILURE() << "int64 array accepted as a float matrix";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("int64"), std::string::npos) << e.what();
  }
}

TEST(Npy, WriteToMissingDirectoryThrows) {
  TempDir dir;
  std::vector<double> v = {1.0};
  EXPECT_THROW(write_npy(dir.file("no/such/dir/x.npy"), v.data(), {1}), Error);
}

// A tiny file whose header claims 2.4 GB is refused from its size, before any allocation
// (before: the reader allocated the claim, then reported truncated data; larger claims threw
// std::bad_alloc).
TEST(Npy, HugeClaimIsRefusedBeforeAllocating) {
  TempDir dir;
  const std::string p = dir.file("claim.npy");
  std::vector<double> d(8, 1.0);
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (30000000, 10), }", bytes_of(d));
  const double before = peak_rss_mb();
  expect_read_error(p, {"truncated", "[30000000, 10]", "2400000000", "holds 64"});
  EXPECT_LT(peak_rss_mb() - before, 100.0);
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000000,), }", bytes_of(d));
  expect_read_error(p, {"truncated", "8000000000000000"});
}

TEST(Npy, NegativeZeroAndOverflowingShapesThrow) {
  TempDir dir;
  const std::string p = dir.file("shape.npy");
  std::vector<double> d(6, 1.0);
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 6), }", bytes_of(d));
  expect_read_error(p, {"bad shape entry '-1'", "integers >= 1"});
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (10, 0), }", {});
  expect_read_error(p, {"empty", "[10, 0]"});
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }", bytes_of(d));
  expect_read_error(p, {"overflows", "[4294967296, 4294967296, 4]"});
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }", bytes_of(d));
  expect_read_error(p, {"overflows the byte count"});
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }", bytes_of(d));
  expect_read_error(p, {"too large"});
}

TEST(Npy, TrailingBytesThrow) {
  TempDir dir;
  const std::string p = dir.file("trailing.npy");
  std::vector<double> d = {1, 2, 3, 4, 5, 6, 7};  // one element more than (2, 3)
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", bytes_of(d));
  expect_read_error(p, {"8 unexpected trailing byte(s)", "48 bytes"});
}

// Found by fuzzing (tests/fuzz): a shape that is not a tuple threw std::out_of_range
// ('shape': with no value) or was read as a 0-d array ('shape': 12), and a file that ends
// inside the version bytes had them read uninitialised.
TEST(Npy, ShapeMustBeATupleAndTheVersionComplete) {
  TempDir dir;
  const std::string p = dir.file("shape.npy");
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': 12, }", bytes_of(std::vector<double>{1.0}));
  expect_read_error(p, {"malformed shape '12'", "tuple"});
  write_raw_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape':}", {});
  expect_read_error(p, {"malformed shape", "tuple"});
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write("\x93NUMPY\x01", 7);
  }
  expect_read_error(p, {"truncated .npy header"});
}

// Output paths that are not regular files: a FIFO is refused (before: replaced by a regular
// file through the temporary + rename), a symbolic link keeps being a link and its target
// gets the data, a dangling link creates its target.
TEST(Npy, WritesThroughLinksAndRefusesFifos) {
  TempDir dir;
  std::vector<double> v = {1.0, 2.0};
  const std::string fifo = dir.file("pipe.npy");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  try {
    write_npy(fifo, v.data(), {2});
    ADD_FAILURE() << "a FIFO was written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("FIFO"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fifo), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_THROW(write_file_atomic(fifo, "x"), Error);
  EXPECT_THROW(require_writable(fifo), Error);
  EXPECT_TRUE(fs::is_fifo(fifo));

  fs::create_directories(dir.file("real"));
  const std::string target = dir.file("real/out.npy");
  write_npy(target, v.data(), {2});
  const std::string link = dir.file("link.npy");
  fs::create_symlink("real/out.npy", link);  // relative, resolved against the link's folder
  std::vector<double> w = {3.0, 4.0, 5.0};
  write_npy(link, w.data(), {3});
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(read_npy(target).shape, std::vector<std::size_t>{3});
  EXPECT_FALSE(fs::exists(target + ".tmp"));

  const std::string dangling = dir.file("dangling.npy");
  fs::create_symlink(dir.file("real/new.npy"), dangling);
  write_file_atomic(dangling, "hello");
  EXPECT_TRUE(fs::is_symlink(dangling));
  EXPECT_TRUE(fs::is_regular_file(dir.file("real/new.npy")));
  EXPECT_EQ(fs::file_size(dir.file("real/new.npy")), 5u);

  // A character device is written in place, never replaced.
  if (fs::exists("/dev/null") && fs::is_character_file("/dev/null")) {
    EXPECT_TRUE(resolve_write_target("/dev/null").in_place);
    EXPECT_TRUE(resolve_write_target(dir.file("fresh.npy")).path == dir.file("fresh.npy"));
  }
  EXPECT_THROW(write_file_atomic(dir.file("real"), "x"), Error);  // a directory
}
