#include "data/option_table.hpp"

#include <fstream>
#include <iterator>
#include <sstream>

#include "util/config_json.hpp"
#include "mmphate/error.hpp"

namespace mmphate::cli {
namespace {

// A JSON value as a flag's text: strings bare, numbers and booleans as JSON writes them.
std::string as_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

// The flags are the engine's key table (detail::option_keys(), data/options.cpp): a flag's
// text becomes the JSON value a config file would hold and is read by the same code.
const std::vector<Flag>& option_flags() {
  static const std::vector<Flag>& flags = *new std::vector<Flag>([] {
    std::vector<Flag> out;
    for (const auto& e : detail::option_keys().entries()) {
      if (!e.from_text) continue;
      out.push_back(Flag{e.key, e.help,
                         [&e](Options& o, const std::string& text) { e.read(o, e.from_text(text), e.key, ""); },
                         [&e](const Options& o) { return as_text(e.write(o)); }});
    }
    return out;
  }());
  return flags;
}

bool apply_option(Options& opt, const std::string& name, const std::string& value) {
  for (const auto& f : option_flags())
    if (f.name == name) {
      f.set(opt, value);
      return true;
    }
  return false;
}

std::string option_help(const Options& defaults) {
  std::ostringstream os;
  for (const auto& f : option_flags()) {
    std::string left = "  --" + f.name + " V";
    left.resize(std::max<std::size_t>(left.size() + 1, 24), ' ');
    os << left << f.help << " (default: " << f.get(defaults) << ")\n";
  }
  return os.str();
}

void apply_options_json(Options& opt, const nlohmann::json& config, const std::string& source) {
  detail::option_keys().read(opt, config, "", source);
}

void apply_options_file(Options& opt, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open config '" + path + "'");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Not only parse_error: a number beyond double (1e999) is json's out_of_range, which leaked.
  apply_options_json(opt, detail::parse_untrusted_json(text, path), path);
}

nlohmann::json options_to_json(const Options& opt) { return detail::option_keys().write(opt); }

}  // namespace mmphate::cli
