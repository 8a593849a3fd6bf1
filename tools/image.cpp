#include "image.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "util/atomic_file.hpp"
#include "mmphate/error.hpp"

namespace mmphate::view {

Image::Image(int width, int height, Rgb fill) : w(width), h(height), rgb(static_cast<std::size_t>(width) * height * 3) {
  for (std::size_t i = 0; i < rgb.size(); i += 3) std::copy(fill.begin(), fill.end(), rgb.begin() + static_cast<std::ptrdiff_t>(i));
}

void Image::disc(double x, double y, double r, Rgb c, double alpha) {
  const int x0 = std::max(0, static_cast<int>(std::floor(x - r))), x1 = std::min(w - 1, static_cast<int>(std::ceil(x + r)));
  const int y0 = std::max(0, static_cast<int>(std::floor(y - r))), y1 = std::min(h - 1, static_cast<int>(std::ceil(y + r)));
  for (int py = y0; py <= y1; ++py)
    for (int px = x0; px <= x1; ++px) {
      // Coverage from the distance of the pixel centre: a one-pixel soft edge.
      const double d = std::hypot(px + 0.5 - x, py + 0.5 - y);
      const double a = alpha * std::clamp(r + 0.5 - d, 0.0, 1.0);
      if (a <= 0) continue;
      unsigned char* p = &rgb[(static_cast<std::size_t>(py) * w + px) * 3];
      for (int k = 0; k < 3; ++k) p[k] = static_cast<unsigned char>(std::lround(p[k] + (c[k] - p[k]) * a));
    }
}

void Image::rect(int x, int y, int rw, int rh, Rgb c) {
  for (int py = std::max(0, y); py < std::min(h, y + rh); ++py)
    for (int px = std::max(0, x); px < std::min(w, x + rw); ++px)
      std::copy(c.begin(), c.end(), rgb.begin() + static_cast<std::ptrdiff_t>((static_cast<std::size_t>(py) * w + px) * 3));
}

void Image::blit(const Image& src, int x, int y) {
  for (int sy = 0; sy < src.h; ++sy) {
    const int dy = y + sy;
    if (dy < 0 || dy >= h) continue;
    for (int sx = 0; sx < src.w; ++sx) {
      const int dx = x + sx;
      if (dx < 0 || dx >= w) continue;
      std::copy_n(&src.rgb[(static_cast<std::size_t>(sy) * src.w + sx) * 3], 3, &rgb[(static_cast<std::size_t>(dy) * w + dx) * 3]);
    }
  }
}

namespace {

// 5x7 glyphs, one byte per row, bit 4 = leftmost column. Unknown characters draw as '?'.
const unsigned char* glyph(char ch) {
  static const unsigned char digits[10][7] = {
      {14, 17, 19, 21, 25, 17, 14}, {4, 12, 4, 4, 4, 4, 14},    {14, 17, 1, 2, 4, 8, 31},
      {31, 2, 4, 2, 1, 17, 14},     {2, 6, 10, 18, 31, 2, 2},   {31, 16, 30, 1, 1, 17, 14},
      {6, 8, 16, 30, 17, 17, 14},   {31, 1, 2, 4, 8, 8, 8},     {14, 17, 17, 14, 17, 17, 14},
      {14, 17, 17, 15, 1, 2, 12}};
  static const unsigned char letters[26][7] = {
      {0, 0, 14, 1, 15, 17, 15},  {16, 16, 22, 25, 17, 17, 30}, {0, 0, 14, 16, 16, 17, 14}, {1, 1, 13, 19, 17, 17, 15},
      {0, 0, 14, 17, 31, 16, 14}, {6, 9, 8, 28, 8, 8, 8},       {0, 15, 17, 17, 15, 1, 14}, {16, 16, 22, 25, 17, 17, 17},
      {4, 0, 12, 4, 4, 4, 14},    {2, 0, 6, 2, 2, 18, 12},      {16, 16, 18, 20, 24, 20, 18}, {12, 4, 4, 4, 4, 4, 14},
      {0, 0, 26, 21, 21, 17, 17}, {0, 0, 22, 25, 17, 17, 17},   {0, 0, 14, 17, 17, 17, 14}, {0, 0, 30, 17, 30, 16, 16},
      {0, 0, 13, 19, 15, 1, 1},   {0, 0, 22, 25, 16, 16, 16},   {0, 0, 14, 16, 14, 1, 30},  {8, 8, 28, 8, 8, 9, 6},
      {0, 0, 17, 17, 17, 19, 13}, {0, 0, 17, 17, 17, 10, 4},    {0, 0, 17, 17, 21, 21, 10}, {0, 0, 17, 10, 4, 10, 17},
      {0, 0, 17, 17, 15, 1, 14},  {0, 0, 31, 2, 4, 8, 31}};
  static const unsigned char space[7] = {0, 0, 0, 0, 0, 0, 0}, colon[7] = {0, 12, 12, 0, 12, 12, 0},
                             dash[7] = {0, 0, 0, 31, 0, 0, 0}, dot[7] = {0, 0, 0, 0, 0, 12, 12},
                             slash[7] = {1, 1, 2, 4, 8, 16, 16}, paren_l[7] = {2, 4, 8, 8, 8, 4, 2},
                             paren_r[7] = {8, 4, 2, 2, 2, 4, 8}, question[7] = {14, 17, 1, 2, 4, 0, 4};
  if (ch >= '0' && ch <= '9') return digits[ch - '0'];
  const char lc = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lc >= 'a' && lc <= 'z') return letters[lc - 'a'];
  switch (ch) {
    case ' ': return space;
    case ':': return colon;
    case '-': return dash;
    case '.': return dot;
    case '/': return slash;
    case '(': return paren_l;
    case ')': return paren_r;
    default: return question;
  }
}

void put_u32(std::string& s, std::uint32_t v) {
  for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}

void chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  out += body;
  put_u32(out, static_cast<std::uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

}  // namespace

int text_width(const std::string& s, int scale) { return static_cast<int>(s.size()) * 6 * scale; }

void Image::text(int x, int y, const std::string& s, Rgb c, int scale) {
  for (std::size_t n = 0; n < s.size(); ++n) {
    const unsigned char* g = glyph(s[n]);
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col)
        if (g[row] & (16 >> col)) rect(x + static_cast<int>(n) * 6 * scale + col * scale, y + row * scale, scale, scale, c);
  }
}

void write_png(const std::string& path, const Image& img) {
  // Raw scanlines, each prefixed by filter type 0 (none).
  std::string raw;
  raw.reserve(static_cast<std::size_t>(img.h) * (img.w * 3 + 1));
  for (int y = 0; y < img.h; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(&img.rgb[static_cast<std::size_t>(y) * img.w * 3]), static_cast<std::size_t>(img.w) * 3);
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zlen, '\0');
  if (compress2(reinterpret_cast<Bytef*>(&z[0]), &zlen, reinterpret_cast<const Bytef*>(raw.data()),
                static_cast<uLong>(raw.size()), 6) != Z_OK)
    throw Error("PNG compression failed for '" + path + "'");
  z.resize(zlen);
  std::string ihdr;
  put_u32(ihdr, static_cast<std::uint32_t>(img.w));
  put_u32(ihdr, static_cast<std::uint32_t>(img.h));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit, truecolour, deflate, no filter, no interlace
  std::string png("\x89PNG\r\n\x1a\n", 8);
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", "");
  write_file_atomic(path, png);
}

}  // namespace mmphate::view
