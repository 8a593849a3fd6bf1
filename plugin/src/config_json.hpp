// Private helpers for the small JSON option blocks of the diagnostics, the phase detector and
// early stopping: typed reads whose errors name the source, the key, the value and what is
// allowed, and the unknown-key check that lists the valid keys. Also the parser of untrusted
// JSON text (config files, node_index.json, frame lines) shared by the readers.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmphate/error.hpp"

namespace mmphate::detail {

inline std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// Throws unless `config` is an object whose keys are all in `allowed`.
inline void check_keys(const nlohmann::json& config, const std::vector<std::string>& allowed,
                       const std::string& source) {
  if (!config.is_object()) throw Error(source + ": expected a JSON object, got " + config.type_name());
  for (const auto& item : config.items()) {
    bool known = false;
    for (const auto& a : allowed) known = known || a == item.key();
    if (!known)
      throw Error(source + ": unknown key '" + item.key() + "' (allowed keys: " + join_keys(allowed) + ")");
  }
}

// Nesting depth beyond which JSON text is refused: nlohmann::json copies and dumps recurse
// once per level, so a hostile file of 100 000 '[' overflowed the stack of a reader. mmphate's
// own files nest at most 5 levels.
constexpr int kMaxJsonDepth = 100;

// Throws unless the brackets of `text` (outside strings) nest at most kMaxJsonDepth deep.
// Text that is not JSON passes or fails here at will: the parser rejects it anyway.
inline void check_json_depth(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw Error("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// Parses untrusted JSON text. Too deep nesting and every error of nlohmann::json (syntax, and
// out_of_range for a number beyond double such as 1e999) become one Error naming the source.
inline nlohmann::json parse_untrusted_json(std::string_view text, const std::string& source) {
  try {
    check_json_depth(text);
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": invalid JSON: " + e.what());
  } catch (const Error& e) {
    throw Error(source + ": invalid JSON: " + e.what());
  }
}

// A value as JSON text for a message, cut to 80 characters so that a huge value keeps the
// message one short line (and invalid UTF-8 in a string built by a caller cannot throw).
inline std::string brief_json(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

inline Error type_error(const std::string& source, const std::string& key, const nlohmann::json& v,
                        const std::string& expected) {
  return Error(source + ": key '" + key + "' = " + brief_json(v) + ": expected " + expected);
}

inline bool read_bool(const nlohmann::json& v, const std::string& key, const std::string& source) {
  if (!v.is_boolean()) throw type_error(source, key, v, "true or false");
  return v.get<bool>();
}

inline std::int64_t read_int(const nlohmann::json& v, const std::string& key, const std::string& source) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_unsigned() && v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.get<std::uint64_t>());
  throw type_error(source, key, v, "an integer");
}

inline std::uint64_t read_uint(const nlohmann::json& v, const std::string& key, const std::string& source) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v.get<std::int64_t>());
  throw type_error(source, key, v, "a non-negative integer");
}

inline double read_number(const nlohmann::json& v, const std::string& key, const std::string& source) {
  if (!v.is_number()) throw type_error(source, key, v, "a number");
  return v.get<double>();
}

// A number, or null meaning "not set" (stored as NaN).
inline double read_optional_number(const nlohmann::json& v, const std::string& key, const std::string& source) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!v.is_number()) throw type_error(source, key, v, "a number or null");
  return v.get<double>();
}

inline std::string read_string(const nlohmann::json& v, const std::string& key, const std::string& source) {
  if (!v.is_string()) throw type_error(source, key, v, "a string");
  return v.get<std::string>();
}

// int fields: range-checked so that a huge JSON integer is not silently truncated.
inline int read_int32(const nlohmann::json& v, const std::string& key, const std::string& source) {
  const std::int64_t x = read_int(v, key, source);
  if (x < INT32_MIN || x > INT32_MAX) throw type_error(source, key, v, "a 32-bit integer");
  return static_cast<int>(x);
}

// JSON number, or null for NaN/Inf (JSON has no NaN).
inline nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// Throws "invalid <what> <key> = <value>: allowed <allowed>" unless ok: the one message shape
// of every options struct's validate().
template <typename T>
void require_option(bool ok, const char* what, const std::string& key, const T& value, const std::string& allowed) {
  if (ok) return;
  std::ostringstream os;
  os << "invalid " << what << " " << key << " = " << value << ": allowed " << allowed;
  throw Error(os.str());
}

// Validates options read from `source`, naming the source in the error.
template <class Options>
void validate_from(const Options& o, const std::string& source) {
  try {
    o.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
}

}  // namespace mmphate::detail
