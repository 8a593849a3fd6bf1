// A small RGB raster for `mmphate render`: filled discs, a built-in pixel font, PNG output
// (zlib; no image library needed).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "colors.hpp"

namespace mmphate::view {

struct Image {
  int w = 0, h = 0;
  std::vector<unsigned char> rgb;  // row-major, 3 bytes per pixel

  Image(int width, int height, Rgb fill);
  // Disc of radius r (pixels) centred at (x, y), blended with opacity `alpha`.
  void disc(double x, double y, double r, Rgb c, double alpha = 1.0);
  void rect(int x, int y, int rw, int rh, Rgb c);
  void blit(const Image& src, int x, int y);
  // Text in a 5x7 pixel font (digits, letters, a few signs) scaled by `scale`.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 2);
};

int text_width(const std::string& s, int scale = 2);

// Writes an 8-bit RGB PNG (temp file + rename). Throws Error on I/O failure.
void write_png(const std::string& path, const Image& img);

}  // namespace mmphate::view
