// The run directory a Monitor writes into: <root>/<name>/version_<n>/ or run.path.
#pragma once
#include <string>

#include "mmphate/monitor/config.hpp"

namespace mmphate {

// Creates and returns the run directory: run.path if set, else <root>/<name>/version_<n> with
// n one above the highest existing version. Throws mmphate::Error naming the path when it
// cannot be created or written.
std::string create_run_directory(const RunSettings& run);

}  // namespace mmphate
