// mmphate export --tensorboard RUN_DIR OUT_DIR: TensorBoard files of a run.
//   OUT_DIR/frame_<N>/tensors.tsv    one present node per row, its coordinates
//   OUT_DIR/frame_<N>/metadata.tsv   header + epoch, time step, unit, layer, direction, class
//   OUT_DIR/projector_config.pbtxt   one `embeddings` entry per exported frame
//   OUT_DIR/events.out.tfevents.*    metric / diagnostics / phase curves (run_scalars.hpp)
// Open with: tensorboard --logdir OUT_DIR (Scalars and Projector tabs).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "colors.hpp"
#include "util/atomic_file.hpp"
#include "mmphate/error.hpp"
#include "mmphate/run/frame_reader.hpp"
#include "mmphate/log.hpp"
#include "run_scalars.hpp"
#include "tfevents.hpp"
#include "view_commands.hpp"

namespace mmphate::view {
namespace {

const char* kHelp =
    "usage: mmphate export --tensorboard RUN_DIR OUT_DIR [--frames SPEC]\n\n"
    "Writes TensorBoard files of a monitored run into OUT_DIR (created with its parents):\n"
    "  Scalars: OUT_DIR/events.out.tfevents.<start>.<host>.mmphate, one point per quantity per\n"
    "    epoch of every embedding frame (step = epoch, wall time = when the frame was written):\n"
    "    metrics/<name> (on_epoch_end metrics, coalesced epochs included), diagnostics/<name>\n"
    "    (e.g. diagnostics/intra_step_entropy), phase/code (0 unknown, 1 information_processing,\n"
    "    2 compression, 3 stable) and progress/global_step. Null (NaN/Inf) values are left out.\n"
    "  Projector, for the chosen embedding frames: OUT_DIR/frame_<N>/tensors.tsv, metadata.tsv\n"
    "    (epoch, time step, unit, layer, direction, most active class) and\n"
    "    OUT_DIR/projector_config.pbtxt. Absent nodes are left out.\n"
    "  --frames SPEC   projector frames: all (default), first, last, frame numbers '3,5' or\n"
    "                  epochs 'e:2,4' (the scalars always cover the whole run)\n"
    "  --quiet         no progress on stderr\n"
    "View with: tensorboard --logdir OUT_DIR (Scalars and Projector tabs; docs/VIEWER.md).\n";

// This machine's name for the event file's name, as TensorFlow's writers do.
std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// Metadata cells come from untrusted node_index.json (layer names). A tab or line break would
// shift columns or rows; other control characters are invisible: all are written as visible
// escapes (\t, \n, \r, \xNN; a backslash as \\). The projector shows cells in a web page:
// '<', '>' and '&' become &lt; &gt; &amp;, so markup in a name can never run as HTML (names
// from real modules, [A-Za-z0-9_.], are unchanged).
std::string cell(const std::string& s) {
  if (s.empty()) return "-";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += ch;  // printable ASCII and UTF-8 (the JSON parser has checked it)
        }
    }
  }
  return out;
}

void write_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

}  // namespace

int cmd_export(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"frames"}, {"tensorboard", "quiet"});
  if (a.has("help")) { std::cout << kHelp; return 0; }
  if (!a.has("tensorboard")) throw UsageError("export needs a format: --tensorboard (see mmphate export --help)");
  if (a.positional.size() != 2) throw UsageError("export needs RUN_DIR and OUT_DIR (see mmphate export --help)");
  if (!a.has("quiet")) logger()->set_level(spdlog::level::info);
  RunData run = read_run(a.positional[0]);
  const std::string out = a.positional[1];
  make_dirs(out);
  const std::vector<int> groups = unit_groups(run.layout);
  std::ostringstream config;
  // As in render: a frame with an unreadable sidecar is skipped with a warning; the command
  // fails only when no frame could be exported.
  FrameLoader loader(run);
  std::size_t exported = 0;
  for (std::size_t id : select_frames(run, a.get("frames", "all"))) {
    Frame* fp = loader.get(id);
    if (!fp) continue;
    Frame& f = *fp;
    char name[32];
    std::snprintf(name, sizeof name, "frame_%06lld", static_cast<long long>(f.frame));
    const std::string dir = out + "/" + name;
    make_dirs(dir);
    std::ostringstream tensors, meta;
    tensors.precision(7);
    meta << "epoch\ttime_step\tunit\tlayer\tdirection\tunit_in_direction\tclass\tlabel\n";
    std::int64_t rows = 0;
    for (std::int64_t i = 0; i < f.n_nodes; ++i) {
      if (!f.present(i)) continue;
      for (int k = 0; k < f.n_components; ++k)
        tensors << (k ? "\t" : "") << f.coords[static_cast<std::size_t>(i * f.n_components + k)];
      tensors << "\n";
      const int u = f.node_unit(i), sp = f.node_step_pos(i);
      const int step = sp < static_cast<int>(run.layout.step_index.size()) ? run.layout.step_index[static_cast<std::size_t>(sp)] : sp;
      UnitMeta m;
      if (u < static_cast<int>(run.layout.units_meta.size())) m = run.layout.units_meta[static_cast<std::size_t>(u)];
      const int cls = f.most_active_class.empty() ? -1 : f.most_active_class[static_cast<std::size_t>(i)];
      meta << f.node_epoch(i) << '\t' << step << '\t' << u << '\t' << cell(m.layer) << '\t' << m.direction << '\t'
           << m.unit << '\t' << cls << '\t' << "e" << f.node_epoch(i) << " t" << step << " u" << u << "\n";
      ++rows;
    }
    write_atomic(dir + "/tensors.tsv", tensors.str());
    write_atomic(dir + "/metadata.tsv", meta.str());
    config << "embeddings {\n  tensor_name: \"epoch " << f.epoch << " (frame " << f.frame << ")\"\n  tensor_shape: " << rows
           << "\n  tensor_shape: " << f.n_components << "\n  tensor_path: \"" << name << "/tensors.tsv\"\n  metadata_path: \""
           << name << "/metadata.tsv\"\n}\n";
    loader.release(id);
    ++exported;
    std::cout << dir << "\n";
  }
  if (exported == 0)
    throw Error("nothing exported: no chosen frame has readable coordinates (" + std::to_string(loader.skipped()) +
                " skipped, see the warnings above)");
  if (loader.skipped() > 0)
    logger()->warn("{} frame(s) skipped (unreadable coordinates, see above); {} exported", loader.skipped(), exported);
  write_atomic(out + "/projector_config.pbtxt", config.str());
  std::cout << out << "/projector_config.pbtxt\n";
  // Scalars of every embedding frame, whatever --frames chose: curves are wanted whole. The
  // name depends on the run and the host only, so exporting again replaces the file instead
  // of adding a second copy of every curve.
  const RunScalars scalars = run_scalars(run);
  const std::string events = out + "/" + tb::event_file_name(scalars.start_wall_time, host_name());
  write_atomic(events, tb::event_file(scalars.points, scalars.start_wall_time, scalars.descriptions));
  logger()->info("scalars: {} tags, step = epoch", scalars.descriptions.size());
  std::cout << events << "\n";
  return 0;
}

}  // namespace mmphate::view
