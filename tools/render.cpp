// mmphate render RUN_DIR OUT_DIR: static figures of a run, coloured like the viewer.
//   frame_<N>_<colour>.png|svg per chosen frame, contact_sheet_<colour>.png|svg across epochs,
//   sequence/frame_<k>.png (+ animation.gif or .png when a Debian tool can assemble them).
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "colors.hpp"
#include "image.hpp"
#include "util/atomic_file.hpp"
#include "mmphate/error.hpp"
#include "mmphate/run/frame_reader.hpp"
#include "mmphate/log.hpp"
#include "scatter.hpp"
#include "view_commands.hpp"

namespace mmphate::view {
namespace {

const char* kHelp =
    "usage: mmphate render RUN_DIR OUT_DIR [options]\n\n"
    "Figures of a monitored run (docs/FRAMES.md), coloured like the viewer (docs/VIEWER.md).\n"
    "  --frames SPEC      which embedding frames: last (default), first, all, frame numbers '3,5'\n"
    "                     or epochs 'e:2,4'; one figure each: frame_<N>_<colour>.<format>\n"
    "  --color MODE       epoch (default), step, unit, layer, class\n"
    "  --format F         png (default) or svg\n"
    "  --size PX          plot size in pixels (default 800; contact-sheet tiles: size / 2.5)\n"
    "  --yaw R --pitch R  3-D view in radians (default: the viewer's initial view)\n"
    "  --contact-sheet    also write contact_sheet_<colour>.<format>: every embedding frame\n"
    "  --sequence         also write sequence/frame_<k>.png for every embedding frame, and\n"
    "                     sequence/animation.gif when ImageMagick's convert is installed\n"
    "  --quiet            no progress on stderr\n";

void write_text(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

std::string caption(const Frame& f) {
  return "epoch " + std::to_string(f.epoch) + " (frame " + std::to_string(f.frame) + ")";
}

std::string frame_name(const Frame& f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(f.frame));
  return buf;
}

constexpr int kLegendW = 240;

// `f` has its coordinates loaded (FrameLoader::get).
void render_one(const RunData& run, const Frame& f, ColorMode mode, const View& view, int size, const std::string& fmt,
                const std::string& path) {
  const auto colors = node_colors(run, f, mode);
  const Legend legend = make_legend(run, f, mode);
  if (fmt == "svg") {
    std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(size + kLegendW) + "\" height=\"" +
                    std::to_string(size) + "\">\n<rect width=\"100%\" height=\"100%\" fill=\"rgb(255,255,255)\"/>\n";
    s += svg_scatter(0, 0, size, size, f, colors, view, caption(f));
    s += svg_legend(size + 10, 30, legend);
    write_text(path, s + "</svg>\n");
  } else {
    Image img(size + kLegendW, size, palette().background);
    draw_scatter(img, 0, 0, size, size, f, colors, view, caption(f));
    draw_legend(img, size + 10, 30, legend);
    write_png(path, img);
  }
}

// Tiles of the frames whose coordinates load; false (nothing written) when none does.
bool contact_sheet(RunData& run, FrameLoader& loader, const std::vector<std::size_t>& all, ColorMode mode,
                   const View& view, int size, const std::string& fmt, const std::string& path) {
  std::vector<std::size_t> ids;  // the grid is sized for the readable frames only
  for (std::size_t id : all)
    if (loader.get(id)) {
      ids.push_back(id);
      loader.release(id);
    }
  if (ids.empty()) return false;
  const int n = static_cast<int>(ids.size());
  const int cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int rows = (n + cols - 1) / cols;
  const int tile = std::max(160, static_cast<int>(size / 2.5));
  const int W = cols * tile + kLegendW, H = rows * tile;
  Image img(fmt == "svg" ? 1 : W, fmt == "svg" ? 1 : H, palette().background);
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(W) + "\" height=\"" +
                    std::to_string(H) + "\">\n<rect width=\"100%\" height=\"100%\" fill=\"rgb(255,255,255)\"/>\n";
  for (int k = 0; k < n; ++k) {
    const Frame* fp = loader.get(ids[static_cast<std::size_t>(k)]);
    if (!fp) continue;  // became unreadable since the first pass: an empty tile
    const Frame& f = *fp;
    const auto colors = node_colors(run, f, mode);
    const int x = (k % cols) * tile, y = (k / cols) * tile;
    if (fmt == "svg") {
      svg += svg_scatter(x, y, tile, tile, f, colors, view, caption(f));
      svg += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) + "\" width=\"" + std::to_string(tile) +
             "\" height=\"" + std::to_string(tile) + "\" fill=\"none\" stroke=\"#ddd\"/>\n";
    } else {
      draw_scatter(img, x, y, tile, tile, f, colors, view, caption(f));
      img.rect(x, y, tile, 1, {221, 221, 221});
      img.rect(x, y, 1, tile, {221, 221, 221});
    }
    loader.release(ids[static_cast<std::size_t>(k)]);
  }
  const Legend legend = make_legend(run, run.frames[ids.back()], mode);
  if (fmt == "svg") {
    write_text(path, svg + svg_legend(cols * tile + 10, 30, legend) + "</svg>\n");
  } else {
    draw_legend(img, cols * tile + 10, 30, legend);
    write_png(path, img);
  }
  return true;
}

// Finds an executable on PATH (the assemblers are optional Debian packages).
std::string which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= p.size()) {
    const std::size_t end = p.find(':', start);
    const std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const std::string cand = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

// Runs a program without a shell (file names never reach a command line parser).
bool run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Numbered without gaps over the readable frames; false (nothing written) when none is.
bool sequence(RunData& run, FrameLoader& loader, const std::vector<std::size_t>& ids, ColorMode mode,
              const View& view, int size, const std::string& dir) {
  std::vector<std::string> files;
  for (std::size_t id : ids) {
    const Frame* f = loader.get(id);
    if (!f) continue;
    if (files.empty()) make_dirs(dir);
    char name[32];
    std::snprintf(name, sizeof name, "frame_%04zu.png", files.size());
    files.push_back(dir + "/" + name);
    render_one(run, *f, mode, view, size, "png", files.back());
    loader.release(id);
  }
  if (files.empty()) return false;
  const std::string convert = which("convert");
  if (convert.empty()) {
    logger()->info("numbered PNGs in {} (install imagemagick for animation.gif)", dir);
    return true;
  }
  std::vector<std::string> args{convert, "-delay", "60", "-loop", "0"};
  args.insert(args.end(), files.begin(), files.end());
  args.push_back(dir + "/animation.gif");
  if (!run_program(args)) logger()->warn("convert failed: no animation.gif (the numbered PNGs are written)");
  return true;
}

}  // namespace

int cmd_render(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"frames", "color", "colour", "format", "size", "yaw", "pitch"},
                            {"contact-sheet", "sequence", "quiet"});
  if (a.has("help")) { std::cout << kHelp; return 0; }
  if (a.positional.size() != 2) throw UsageError("render needs RUN_DIR and OUT_DIR (see mmphate render --help)");
  if (!a.has("quiet")) logger()->set_level(spdlog::level::info);
  const ColorMode mode = parse_color_mode(a.get("color", a.get("colour", "epoch")));
  const std::string fmt = a.get("format", "png");
  if (fmt != "png" && fmt != "svg") throw UsageError("invalid --format '" + fmt + "': allowed png, svg");
  const double size_d = a.number("size", 800);
  if (!(size_d >= 64 && size_d <= 8192) || size_d != static_cast<int>(size_d))
    throw UsageError("invalid --size " + a.get("size", "") + ": allowed integers from 64 to 8192 (pixels)");
  const int size = static_cast<int>(size_d);
  View view{a.number("yaw", palette().yaw), a.number("pitch", palette().pitch)};

  RunData run = read_run(a.positional[0]);
  const std::string out = a.positional[1];
  make_dirs(out);
  const std::vector<std::size_t> chosen = select_frames(run, a.get("frames", "last"));
  // A frame with an unreadable sidecar is skipped (one warning each), the others rendered;
  // the command fails only when nothing could be drawn (docs/VIEWER.md "render").
  FrameLoader loader(run);
  std::vector<std::string> written;
  for (std::size_t id : chosen) {
    const Frame* f = loader.get(id);
    if (!f) continue;
    const std::string path = out + "/frame_" + frame_name(*f) + "_" + to_string(mode) + "." + fmt;
    render_one(run, *f, mode, view, size, fmt, path);
    loader.release(id);
    written.push_back(path);
  }
  const std::vector<std::size_t> all = select_frames(run, "all");
  if (a.has("contact-sheet")) {
    const std::string path = out + "/contact_sheet_" + std::string(to_string(mode)) + "." + fmt;
    if (contact_sheet(run, loader, all, mode, view, size, fmt, path)) written.push_back(path);
  }
  if (a.has("sequence") && sequence(run, loader, all, mode, view, size, out + "/sequence"))
    written.push_back(out + "/sequence/");
  for (const auto& w : written) std::cout << w << "\n";
  if (written.empty())
    throw Error("nothing rendered: no chosen frame has readable coordinates (" + std::to_string(loader.skipped()) +
                " skipped, see the warnings above)");
  if (loader.skipped() > 0)
    logger()->warn("{} frame(s) skipped (unreadable coordinates, see above); the other figures are written",
                   loader.skipped());
  return 0;
}

}  // namespace mmphate::view
