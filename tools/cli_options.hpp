// Command-line flags for every field of mmphate::Options, shared by the CLI subcommands.
// Each flag is --name VALUE; unknown flags are errors that list the valid ones.
#pragma once
#include <functional>
#include <string>
#include <vector>

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

}  // namespace mmphate::cli
