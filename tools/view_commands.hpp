// The viewing subcommands of the mmphate CLI: render (PNG/SVG figures), export (TensorBoard
// projector files) and serve (loopback HTTP server for the web viewer).
#pragma once
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "mmphate/run/frame_reader.hpp"

namespace mmphate::view {

// Wrong command line: the CLI prints it and exits with status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Flags of one subcommand: `valued` take a value (--name V or --name=V), `switches` do not.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  bool has(const std::string& k) const { return values.count(k) != 0; }
  std::string get(const std::string& k, const std::string& def) const { return has(k) ? values.at(k) : def; }
  double number(const std::string& k, double def) const;
};
Args parse_args(int argc, char** argv, const std::vector<std::string>& valued, const std::vector<std::string>& switches);

// Loads the coordinates of embedding frames for render and export. A frame whose sidecar
// cannot be read (missing, truncated, wrong size, outside the run) costs that frame only: one
// warning naming it and the reason, then it is left out of every figure or export.
class FrameLoader {
 public:
  explicit FrameLoader(RunData& run) : run_(run) {}
  Frame* get(std::size_t id);      // nullptr when the frame is skipped
  void release(std::size_t id);    // frees sidecar coordinates (inline ones stay)
  std::size_t skipped() const { return bad_.size(); }

 private:
  RunData& run_;
  std::set<std::size_t> bad_;
};

// Creates `path` and its missing parents (mkdir -p); an Error names the level that failed.
void make_dirs(const std::string& path);

int cmd_render(int argc, char** argv);
int cmd_export(int argc, char** argv);
int cmd_serve(int argc, char** argv);

}  // namespace mmphate::view
