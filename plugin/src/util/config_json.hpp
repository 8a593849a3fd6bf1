// Private helpers of the config readers: typed reads whose errors name the source, the key, the
// value and what is allowed, the unknown-key check that lists the valid keys, and KeyTable, the
// one key-table mechanism of every set of options (the engine's Options in data/options.cpp,
// the monitor's sections in monitor/config.cpp, the diagnostics, phases and early_stopping
// options in their own .cpp files). Also the parser
// of untrusted JSON text (config files, node_index.json, frame lines) shared by the readers.
#pragma once
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
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

// True when the brackets of `text` (outside strings) nest deeper than `limit`. Text that is
// not JSON passes or fails here at will: the parser rejects it anyway. (Also the fuzz
// mutator's guard, tests/fuzz/mutate.cpp.)
inline bool json_deeper_than(std::string_view text, int limit) {
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
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// Throws unless the brackets of `text` nest at most kMaxJsonDepth deep.
inline void check_json_depth(std::string_view text) {
  if (json_deeper_than(text, kMaxJsonDepth))
    throw Error("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
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

// v rounded to `digits` significant digits (digits <= 0: unchanged), so that the lines of a
// frame stay short.
inline double round_significant(double v, int digits) {
  if (digits <= 0 || !std::isfinite(v) || v == 0.0) return v;
  const double e = std::floor(std::log10(std::fabs(v)));
  const double scale = std::pow(10.0, digits - 1 - e);
  if (!std::isfinite(scale) || scale == 0.0) return v;
  return std::round(v * scale) / scale;
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

// ---------------------------------------------------------------- key tables

// The keys of one config section over a struct S, each named once with its type (deduced from
// the field), the values it allows (a check plus the text that says so) and how it is written
// back. The default of a key is the struct's own member initializer (S{}), so it is never
// written twice. One table gives:
//  * read(): the unknown-key check (the allowed keys listed in table order), then every key
//    present read with its type; errors name "<prefix><key>" (e.g. "phases.window");
//  * validate(): every allowed-values check, "invalid <what> <prefix><key> = <value>: allowed
//    <allowed>" (the message of require_option);
//  * write(): every key with its effective value, which read() takes back unchanged.
// Each table is a function-local `*new` that is never destroyed: Options::validate() runs in
// every engine call, also on a monitor's updater thread that shutdown_timeout_ms = 0 leaves
// computing while the process exits, and a destroyed table crashed it there.
template <class S>
class KeyTable {
 public:
  struct Entry {
    std::string key;
    std::string allowed;  // what validate() says is allowed; empty: any value of the type
    std::function<void(S&, const nlohmann::json&, const std::string& path, const std::string& src)> read;
    std::function<nlohmann::json(const S&)> write;
    std::function<bool(const S&)> ok;           // null: any value of the type
    std::function<std::string(const S&)> show;  // the value as validate()'s message shows it
    std::string help;                           // one line for a command line's --help
    // A command-line value (--key TEXT) as the JSON value read() takes; null: not a flag.
    std::function<nlohmann::json(const std::string& text)> from_text;
  };

  explicit KeyTable(std::string what) : what_(std::move(what)) {}

  // A bool, int, 64-bit integer, std::uint64_t, double or std::string at get(s) (a member
  // pointer or a lambda returning a reference). `ok` takes the value, or the struct and the
  // value (checks across keys).
  template <class Get, class Ok = std::nullptr_t>
  KeyTable& value(const char* key, Get get, Ok ok = nullptr, std::string allowed = "") {
    using T = std::decay_t<std::invoke_result_t<Get, S&>>;
    Entry e;
    e.key = key;
    e.allowed = std::move(allowed);
    const std::string what = what_, in = e.allowed;
    e.read = [get, what, in](S& s, const nlohmann::json& v, const std::string& path, const std::string& src) {
      std::invoke(get, s) = read_as<T>(v, path, src, what, in);
    };
    e.from_text = [key = e.key, what, in](const std::string& text) { return text_as<T>(text, key, what, in); };
    e.write = [get](const S& s) { return nlohmann::json(std::invoke(get, s)); };
    e.show = [get](const S& s) { return show_value(std::invoke(get, s)); };
    if constexpr (!std::is_null_pointer_v<Ok>) {
      if constexpr (std::is_invocable_r_v<bool, Ok, const S&, const T&>)
        e.ok = [get, ok](const S& s) { return ok(s, std::invoke(get, s)); };
      else
        e.ok = [get, ok](const S& s) { return ok(std::invoke(get, s)); };
    }
    entries_.push_back(std::move(e));
    return *this;
  }

  // A double where JSON null (and NaN) means "not set"; set values must be finite.
  template <class Get>
  KeyTable& optional_number(const char* key, Get get, std::string allowed = "a finite number or null") {
    Entry e;
    e.key = key;
    e.allowed = std::move(allowed);
    e.read = [get](S& s, const nlohmann::json& v, const std::string& path, const std::string& src) {
      std::invoke(get, s) = read_optional_number(v, path, src);
    };
    e.write = [get](const S& s) { return number_or_null(std::invoke(get, s)); };
    e.show = [get](const S& s) { return show_value(std::invoke(get, s)); };
    e.ok = [get](const S& s) {
      const double v = std::invoke(get, s);
      return std::isnan(v) || std::isfinite(v);
    };
    entries_.push_back(std::move(e));
    return *this;
  }

  // A string key with a closed set of values, each naming a value of the field (an enum or a
  // string). `allowed` defaults to the names joined by ", ".
  template <class Get, class T = std::decay_t<std::invoke_result_t<Get, S&>>>
  KeyTable& choice(const char* key, Get get, std::vector<std::pair<std::string, T>> values, std::string allowed = "") {
    if (allowed.empty())
      for (const auto& nv : values) allowed += (allowed.empty() ? "" : ", ") + nv.first;
    Entry e;
    e.key = key;
    e.allowed = allowed;
    const std::string what = what_;
    e.read = [get, values, allowed, what](S& s, const nlohmann::json& v, const std::string& path,
                                          const std::string& src) {
      const std::string name = read_string(v, path, src);
      for (const auto& nv : values)
        if (nv.first == name) {
          std::invoke(get, s) = nv.second;
          return;
        }
      throw invalid(src, path, what, show_value(name), allowed);
    };
    e.from_text = [](const std::string& text) { return nlohmann::json(text); };
    e.write = [get, values](const S& s) {
      for (const auto& nv : values)
        if (nv.second == std::invoke(get, s)) return nlohmann::json(nv.first);
      return nlohmann::json(nullptr);  // validate() refuses it
    };
    e.show = [get, values](const S& s) {
      for (const auto& nv : values)
        if (nv.second == std::invoke(get, s)) return show_value(nv.first);
      if constexpr (std::is_same_v<T, std::string>) return show_value(std::invoke(get, s));
      else return std::string("(a value out of range)");
    };
    e.ok = [get, values](const S& s) {
      for (const auto& nv : values)
        if (nv.second == std::invoke(get, s)) return true;
      return false;
    };
    entries_.push_back(std::move(e));
    return *this;
  }

  // A key read and written by hand (a unit conversion, null meaning empty).
  KeyTable& custom(Entry e) {
    entries_.push_back(std::move(e));
    return *this;
  }

  // The --help line of the key added last.
  KeyTable& help(std::string text) {
    entries_.back().help = std::move(text);
    return *this;
  }

  const std::vector<Entry>& entries() const { return entries_; }

  // The entry of `key`, or null.
  const Entry* find(const std::string& key) const {
    for (const auto& e : entries_)
      if (e.key == key) return &e;
    return nullptr;
  }

  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (const auto& e : entries_) k.push_back(e.key);
    return k;
  }

  // Unknown keys and wrong types throw, naming src and prefix + key. Keys absent keep their value.
  void read(S& s, const nlohmann::json& j, const std::string& prefix, const std::string& src) const {
    if (!j.is_object()) throw Error(src + ": expected a JSON object, got " + j.type_name());
    for (const auto& item : j.items()) {
      bool known = false;
      for (const auto& e : entries_) known = known || e.key == item.key();
      if (!known)
        throw Error(src + ": unknown key '" + prefix + item.key() + "' (allowed keys: " + join_keys(keys()) + ")");
    }
    for (const auto& e : entries_)
      if (j.contains(e.key)) e.read(s, j[e.key], prefix + e.key, src);
  }

  void validate(const S& s, const std::string& prefix = "") const {
    for (const auto& e : entries_)
      if (e.ok && !e.ok(s)) throw Error("invalid " + what_ + " " + prefix + e.key + " = " + e.show(s) + ": allowed " + e.allowed);
  }

  nlohmann::json write(const S& s) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& e : entries_) j[e.key] = e.write(s);
    return j;
  }

  // read() into a copy, validate() it (the error names src), then assign: a failed apply leaves
  // s unchanged.
  void apply(S& s, const nlohmann::json& j, const std::string& src) const {
    S o = s;
    read(o, j, "", src);
    try {
      validate(o);
    } catch (const Error& e) {
      throw Error(src + ": " + e.what());
    }
    s = std::move(o);
  }

 private:
  // "<src>: key '<path>': invalid <what> <path> = <value>: allowed <allowed>" (no src part for
  // a command-line flag, whose src is empty).
  static Error invalid(const std::string& src, const std::string& path, const std::string& what,
                       const std::string& value, const std::string& allowed) {
    const std::string msg = "invalid " + what + " " + path + " = " + value + ": allowed " + allowed;
    return Error(src.empty() ? msg : src + ": key '" + path + "': " + msg);
  }

  // An integer that the field's type cannot hold is refused with the key's allowed values (it
  // used to wrap: {"knn": 4294967301} ran with knn 5).
  template <class T>
  static T read_as(const nlohmann::json& v, const std::string& path, const std::string& src, const std::string& what,
                   const std::string& allowed) {
    if constexpr (std::is_same_v<T, bool>) {
      return read_bool(v, path, src);
    } else if constexpr (std::is_integral_v<T>) {
      static_assert(sizeof(T) >= 4, "KeyTable::value: unsupported integer type");
      bool fits = true;
      if (v.is_number_unsigned()) {
        fits = v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
      } else if (v.is_number_integer()) {
        const std::int64_t x = v.get<std::int64_t>();
        fits = x >= 0 ? static_cast<std::uint64_t>(x) <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())
                      : std::is_signed_v<T> && x >= static_cast<std::int64_t>(std::numeric_limits<T>::min());
      }
      if (!fits && !allowed.empty()) throw invalid(src, path, what, v.dump(), allowed);
      if constexpr (std::is_same_v<T, int>) return read_int32(v, path, src);
      else if constexpr (std::is_signed_v<T>) return read_int(v, path, src);
      else return read_uint(v, path, src);
    } else if constexpr (std::is_same_v<T, double>) {
      return read_number(v, path, src);
    } else if constexpr (std::is_same_v<T, std::string>) {
      return read_string(v, path, src);
    } else {
      static_assert(sizeof(T) == 0, "KeyTable::value: unsupported field type");
    }
  }

  // A command-line value as JSON of the field's type. Syntax errors name the flag; an integer
  // beyond 64 bits is refused with the key's allowed values.
  template <class T>
  static nlohmann::json text_as(const std::string& text, const std::string& key, const std::string& what,
                                const std::string& allowed) {
    if constexpr (std::is_same_v<T, bool>) {
      if (text == "true" || text == "1") return true;
      if (text == "false" || text == "0") return false;
      throw Error("--" + key + " expects true or false, got '" + text + "'");
    } else if constexpr (std::is_integral_v<T>) {
      const bool negative = !text.empty() && text[0] == '-';
      const std::string digits = negative ? text.substr(1) : text;
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
        throw Error("--" + key + " expects an integer, got '" + text + "'");
      errno = 0;
      char* end = nullptr;
      const nlohmann::json v = negative ? nlohmann::json(std::strtoll(text.c_str(), &end, 10))
                                        : nlohmann::json(std::strtoull(text.c_str(), &end, 10));
      if (errno == ERANGE) throw invalid("", key, what, text, allowed.empty() ? "64-bit integers" : allowed);
      return v;
    } else if constexpr (std::is_same_v<T, double>) {
      char* end = nullptr;
      const double x = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0') throw Error("--" + key + " expects a number, got '" + text + "'");
      return x;
    } else {
      return text;
    }
  }

  template <class T>
  static std::string show_value(const T& v) {
    if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
    else if constexpr (std::is_same_v<T, std::string>) return "'" + (v.size() > 80 ? v.substr(0, 77) + "..." : v) + "'";
    else {
      std::ostringstream os;
      os << v;
      return os.str();
    }
  }

  std::string what_;
  std::vector<Entry> entries_;
};

// Allowed-values checks of KeyTable::value (NaN fails every one).
inline auto at_least(double lo) {
  return [lo](auto v) { return static_cast<double>(v) >= lo; };
}
inline auto between(double lo, double hi) {
  return [lo, hi](auto v) { return static_cast<double>(v) >= lo && static_cast<double>(v) <= hi; };
}
inline auto finite_at_least(double lo) {
  return [lo](double v) { return std::isfinite(v) && v >= lo; };
}
inline auto finite_above(double lo) {
  return [lo](double v) { return std::isfinite(v) && v > lo; };
}
inline auto non_empty() {
  return [](const std::string& v) { return !v.empty(); };
}

}  // namespace mmphate::detail

namespace mmphate {

struct Options;
struct DiagnosticsOptions;
struct PhaseDetectorOptions;
struct EarlyStoppingOptions;

namespace detail {

// The key tables of the option structs, each defined next to its struct's validate(): the
// engine's Options (data/options.cpp), which the CLI's flags, engine config files and the
// monitor config's embedding section read, and the monitor config's diagnostics, phases and
// early_stopping sections.
const KeyTable<Options>& option_keys();
const KeyTable<DiagnosticsOptions>& diagnostics_keys();
const KeyTable<PhaseDetectorOptions>& phase_detector_keys();
const KeyTable<EarlyStoppingOptions>& early_stopping_keys();

}  // namespace detail
}  // namespace mmphate
