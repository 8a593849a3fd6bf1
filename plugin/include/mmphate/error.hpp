/// @file
/// Error type thrown by every mmphate API on bad input or failed I/O.
/// Messages are one line and name the offending field, value and what is allowed,
/// so a CLI can print them verbatim.
#pragma once
#include <stdexcept>
#include <string>

namespace mmphate {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace mmphate
