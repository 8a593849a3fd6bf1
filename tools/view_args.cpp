#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "view_commands.hpp"

namespace mmphate::view {

double Args::number(const std::string& k, double def) const {
  if (!has(k)) return def;
  const std::string& s = values.at(k);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) throw UsageError("--" + k + " expects a finite number, got '" + s + "'");
  return v;
}

Args parse_args(int argc, char** argv, const std::vector<std::string>& valued, const std::vector<std::string>& switches) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "-h") s = "--help";
    if (s.rfind("--", 0) != 0 || s.size() == 2) { a.positional.push_back(s); continue; }
    std::string name = s.substr(2), value;
    const auto eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) { value = name.substr(eq + 1); name = name.substr(0, eq); }
    std::replace(name.begin(), name.end(), '_', '-');  // --contact_sheet == --contact-sheet
    if (std::find(switches.begin(), switches.end(), name) != switches.end() || name == "help") {
      a.values[name] = "1";
    } else if (std::find(valued.begin(), valued.end(), name) != valued.end()) {
      if (!inline_value) {
        if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
        value = argv[++i];
      }
      a.values[name] = value;
    } else {
      std::string known;
      for (const auto& v : valued) known += " --" + v;
      for (const auto& v : switches) known += " --" + v;
      throw UsageError("unknown option --" + name + " (valid:" + known + " --help)");
    }
  }
  return a;
}

Frame* FrameLoader::get(std::size_t id) {
  if (bad_.count(id)) return nullptr;
  Frame& f = run_.frames[id];
  try {
    load_coords(run_, f);
    return &f;
  } catch (const Error& e) {  // write errors are not caught here: a full disk still stops the command
    logger()->warn("skipping epoch {}: {}", f.epoch, e.what());
    bad_.insert(id);
    return nullptr;
  }
}

void FrameLoader::release(std::size_t id) {
  Frame& f = run_.frames[id];
  if (!f.coords_file.empty()) f.coords = {};
}

}  // namespace mmphate::view
