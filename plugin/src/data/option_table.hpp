// The CLI's view of the engine's key table (detail::option_keys(), data/options.cpp): the
// flags (--name VALUE) and JSON config files ({"name": value}) both go through it, so a new
// field is added once. Unknown names are errors that list the valid ones.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmphate/options.hpp"

namespace mmphate::cli {

struct Flag {
  std::string name;
  std::string help;
  std::function<void(Options&, const std::string&)> set;
  std::function<std::string(const Options&)> get;
};

const std::vector<Flag>& option_flags();

// Applies one option flag; returns false if `name` is not an option flag.
bool apply_option(Options& opt, const std::string& name, const std::string& value);

// "  --knn N   help (default: 5)" lines for --help, with defaults taken from `defaults`.
std::string option_help(const Options& defaults);

// Applies a JSON object {"knn": 5, "mds_solver": "smacof", "normalize": true, ...} to opt.
// Throws mmphate::Error naming the key and the valid keys for an unknown key, and the key and
// value for a value of the wrong type. `source` names the file in messages.
void apply_options_json(Options& opt, const nlohmann::json& config, const std::string& source);

// Reads a JSON config file and applies it (see apply_options_json).
void apply_options_file(Options& opt, const std::string& path);

// Every field as JSON (numbers as numbers, enums as strings).
nlohmann::json options_to_json(const Options& opt);

}  // namespace mmphate::cli
