// The mutation engine: byte-level edits, dictionary words, hostile numbers and literals,
// deep nesting, long strings, NUL bytes, line edits and, for JSON formats, edits of the parsed
// document (a value replaced, a key renamed or dropped, an array grown or emptied).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "util/config_json.hpp"  // json_deeper_than
#include "fuzz.hpp"

namespace mmphate::fuzz {

using nlohmann::json;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("fuzz: cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("fuzz: cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void make_dirs(const std::string& path) { std::filesystem::create_directories(path); }

std::uint64_t uniform(Rng& rng, std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); }

namespace {

// Numbers at the edges of every integer and floating type a reader may convert to, and
// literals that are not JSON (NaN, Infinity) or not numbers at all.
const std::vector<std::string> kNumbers = {
    "-1", "0", "-0", "1", "2", "3", "255", "65535", "65536", "2147483647", "2147483648", "-2147483648",
    "-2147483649", "4294967295", "4294967296", "4294967297", "9007199254740993", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551615",
    "18446744073709551616", "340282366920938463463374607431768211456", "1e308", "1.7976931348623157e308", "1e309",
    "-1e309", "3.5e38", "-3.5e38", "4.9e-324", "1e-400", "0.5", "-0.5", "1e3", "1.0", "NaN", "-NaN", "nan",
    "Infinity", "-Infinity", "inf", "-inf", "0x10", "1e", "-", ".", "00", "1.", "+1"};

const std::vector<std::string> kLiterals = {"null", "true", "false", "\"\"", "[]", "{}", "[", "]", "{", "}", ",", ":",
                                            "\"", "\\", "\\u0000", "\"\\ud800\"", "\"\\u00e9\"", "\xc3\x28", "\xff",
                                            "\r\n", "\n", " ", "\t", "'", "(", ")"};

const char kInteresting[] = {0, 1, 0x7f, static_cast<char>(0x80), static_cast<char>(0xff), '\n', '"', '\\', ',',
                             ':', '[', ']', '{', '}', '0', '9', '-', '.', 'e', ' '};

std::size_t pos_in(const std::string& s, Rng& rng) { return static_cast<std::size_t>(uniform(rng, s.size() + 1)); }

// Nesting depths from harmless to far beyond any recursion a reader could afford.
std::size_t nesting_depth(Rng& rng) {
  static const std::size_t depths[] = {8, 64, 600, 5000, 100000};
  return depths[uniform(rng, std::size(depths))];
}

std::string nested(std::size_t depth, bool object, const std::string& inner) {
  std::string s;
  const std::string open = object ? "{\"k\":" : "[", close = object ? "}" : "]";
  s.reserve(depth * (open.size() + 1) + inner.size());
  for (std::size_t i = 0; i < depth; ++i) s += open;
  s += inner;
  for (std::size_t i = 0; i < depth; ++i) s += close;
  return s;
}

// Long strings: beyond 64 KiB now and then (a 16-bit length field), rarely beyond 256 KiB
// (they make the input slow to mutate and parse, and find nothing the shorter ones miss).
std::size_t long_length(Rng& rng) {
  static const std::size_t lengths[] = {256, 4096, 70000};
  return uniform(rng, 16) == 0 ? 400000 : lengths[uniform(rng, std::size(lengths))];
}

const std::string& pick(const std::vector<std::string>& v, Rng& rng) { return v[uniform(rng, v.size())]; }

void line_edit(std::string& s, Rng& rng) {
  std::vector<std::string> lines;
  std::stringstream ss(s);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  if (lines.empty()) return;
  const std::size_t a = uniform(rng, lines.size()), b = uniform(rng, lines.size());
  switch (uniform(rng, 4)) {
    case 0: lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(a), lines[a]); break;
    case 1: lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(a)); break;
    case 2: std::swap(lines[a], lines[b]); break;
    default: lines[a].clear(); break;
  }
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) out += lines[i] + (i + 1 < lines.size() || s.back() == '\n' ? "\n" : "");
  s = std::move(out);
}

// Replaces the first run of digits at or after a random position by a hostile number.
void replace_number(std::string& s, Rng& rng) {
  const std::size_t start = pos_in(s, rng);
  std::size_t a = start;
  while (a < s.size() && !(s[a] >= '0' && s[a] <= '9')) ++a;
  if (a == s.size()) return;
  std::size_t b = a;
  while (b < s.size() && ((s[b] >= '0' && s[b] <= '9') || s[b] == '.' || s[b] == 'e' || s[b] == 'E')) ++b;
  if (a > 0 && s[a - 1] == '-') --a;
  s.replace(a, b - a, pick(kNumbers, rng));
}

void mutate_bytes(std::string& s, const std::vector<std::string>& pool, const Target& t, Rng& rng) {
  switch (uniform(rng, 14)) {
    case 0:  // flip one bit
      if (!s.empty()) s[uniform(rng, s.size())] ^= static_cast<char>(1u << uniform(rng, 8));
      break;
    case 1:  // set a byte to a value that parsers care about
      if (!s.empty()) s[uniform(rng, s.size())] = kInteresting[uniform(rng, sizeof kInteresting)];
      break;
    case 2: {  // insert random bytes
      std::string r(1 + uniform(rng, 8), '\0');
      for (auto& c : r) c = static_cast<char>(uniform(rng, 256));
      s.insert(pos_in(s, rng), r);
      break;
    }
    case 3:  // delete a range
      if (!s.empty()) {
        const std::size_t a = uniform(rng, s.size());
        s.erase(a, 1 + uniform(rng, std::min<std::size_t>(64, s.size() - a)));
      }
      break;
    case 4:  // truncate
      s.resize(uniform(rng, s.size() + 1));
      break;
    case 5: {  // splice: a prefix of this input and a suffix of another
      const std::string& o = pick(pool, rng);
      s = s.substr(0, pos_in(s, rng)) + o.substr(uniform(rng, o.size() + 1));
      break;
    }
    case 6:  // copy a range elsewhere
      if (!s.empty()) {
        const std::size_t a = uniform(rng, s.size());
        const std::string chunk = s.substr(a, 1 + uniform(rng, std::min<std::size_t>(128, s.size() - a)));
        s.insert(pos_in(s, rng), chunk);
      }
      break;
    case 7:  // a word of the format
      if (!t.dictionary.empty()) s.insert(pos_in(s, rng), pick(t.dictionary, rng));
      break;
    case 8:
      replace_number(s, rng);
      break;
    case 9:  // a hostile number or literal inserted
      s.insert(pos_in(s, rng), uniform(rng, 2) ? pick(kNumbers, rng) : pick(kLiterals, rng));
      break;
    case 10: {  // deep nesting, balanced or not
      const std::size_t d = nesting_depth(rng);
      const bool object = uniform(rng, 2);
      std::string n = nested(d, object, "1");
      if (uniform(rng, 3) == 0) n.resize(n.size() / 2);
      s.insert(pos_in(s, rng), n);
      break;
    }
    case 11: {  // a long string, quoted or bare
      std::string l(long_length(rng), static_cast<char>('a' + uniform(rng, 26)));
      if (uniform(rng, 2)) l = "\"" + l + "\"";
      s.insert(pos_in(s, rng), l);
      break;
    }
    case 12:  // NUL bytes
      s.insert(pos_in(s, rng), std::string(1 + uniform(rng, 4), '\0'));
      break;
    default:
      line_edit(s, rng);
      break;
  }
}

// ---- structure-aware JSON edits -------------------------------------------------------------

// A value that is hostile for some reader: extreme numbers, wrong types, long or odd strings.
json hostile_value(Rng& rng, const json& current) {
  switch (uniform(rng, 12)) {
    case 0: return INT64_MAX;
    case 1: return INT64_MIN;
    case 2: return UINT64_MAX;
    case 3: {
      static const std::int64_t edges[] = {-1, 0, 1, 2, 3, INT32_MAX, std::int64_t(INT32_MAX) + 1, INT32_MIN,
                                           std::int64_t(INT32_MIN) - 1, std::int64_t(1) << 32, (std::int64_t(1) << 53) + 1,
                                           std::int64_t(1) << 28, (std::int64_t(1) << 28) + 1, 1000000, 1000001};
      return edges[uniform(rng, std::size(edges))];
    }
    case 4: {
      static const double reals[] = {1e308, -1e308, 5e-324, 0.5, -0.0, 1e-9, 3.5e38, 2.5, 1e19, -1e19, 0.999999, 1.000001};
      return reals[uniform(rng, std::size(reals))];
    }
    case 5: {
      static const char* strings[] = {"", "NaN", "Infinity", "-inf", "auto", "../x", "/etc/passwd", "a/b", "frames/f.f32",
                                      "frames/missing.f32", "<f4", "<f8", "embedding", "event", "..", ".", "\xc3\xa9"};
      return strings[uniform(rng, std::size(strings))];
    }
    case 6: return std::string(long_length(rng), 'x');
    case 7: return std::string("a\0b", 3);
    case 8: return nullptr;
    case 9: return static_cast<bool>(uniform(rng, 2));
    case 10: return uniform(rng, 2) ? json::array() : json::object();
    default:  // nudge a number
      if (current.is_number_integer())  // unsigned arithmetic: wraps instead of overflowing
        return static_cast<std::int64_t>(current.get<std::uint64_t>() * (uniform(rng, 2) ? UINT64_MAX : 2u) + 1u);
      if (current.is_number()) return current.get<double>() * (uniform(rng, 2) ? -1.0 : 1e6);
      return json::array({current.is_array() || current.is_object() ? json(0) : current});
  }
}

// Every node of j (iteratively, at most `cap`); false when j is deeper than max_depth, which
// the recursive dump() of nlohmann::json could not write back.
bool collect(json& j, std::vector<json*>& out, std::size_t cap, std::size_t max_depth) {
  std::vector<std::pair<json*, std::size_t>> stack{{&j, 0}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    if (depth > max_depth) return false;
    if (out.size() < cap) out.push_back(node);
    if (node->is_array() || node->is_object())
      for (auto& child : *node) stack.emplace_back(&child, depth + 1);
  }
  return true;
}

void keys_of(const json& j, std::vector<std::string>& keys) {
  std::vector<const json*> stack{&j};
  while (!stack.empty() && keys.size() < 4096) {
    const json* node = stack.back();
    stack.pop_back();
    if (node->is_object())
      for (const auto& [k, v] : node->items()) {
        keys.push_back(k);
        stack.push_back(&v);
      }
    else if (node->is_array())
      for (const auto& v : *node) stack.push_back(&v);
  }
}

// Placeholder replaced after dump() by text that json cannot hold (deep nesting, NaN).
const std::string kHole = "\"@@fuzz-hole@@\"";

bool mutate_document(json& doc, const std::vector<std::string>& keys, Rng& rng, std::string& hole_text) {
  std::vector<json*> nodes;
  if (!collect(doc, nodes, 20000, 200)) return false;
  json& node = *nodes[uniform(rng, nodes.size())];
  switch (uniform(rng, 9)) {
    case 0:
    case 1:
    case 2:
      node = hostile_value(rng, node);
      break;
    case 3:  // drop a member or element
      if (node.is_object() && !node.empty()) {
        auto it = node.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(uniform(rng, node.size())));
        node.erase(it);
      } else if (node.is_array() && !node.empty()) {
        node.erase(node.begin() + static_cast<std::ptrdiff_t>(uniform(rng, node.size())));
      }
      break;
    case 4:  // grow an array (repeat its elements) or truncate it
      if (node.is_array() && !node.empty()) {
        if (uniform(rng, 2) && node.size() <= 2000) {
          const std::size_t n = node.size() * (2 + uniform(rng, 3));
          for (std::size_t i = node.size(); i < n; ++i) node.push_back(json(node[i % node.size()]));
        } else {
          node.erase(node.begin() + static_cast<std::ptrdiff_t>(uniform(rng, node.size())), node.end());
        }
      }
      break;
    case 5: {  // a key of the format (the seeds hold them all) with a hostile value
      if (!node.is_object()) break;
      const std::string key = keys.empty() || uniform(rng, 4) == 0 ? "unknown_key" : pick(keys, rng);
      node[key] = hostile_value(rng, json());
      break;
    }
    case 6: {  // rename a key
      if (!node.is_object() || node.empty()) break;
      auto it = node.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(uniform(rng, node.size())));
      json v = std::move(it.value());
      const std::string k = it.key();
      node.erase(it);
      node[k + (uniform(rng, 2) ? "_" : "")] = std::move(v);
      break;
    }
    case 7: {  // deep nesting or a non-JSON literal where a value was
      static const char* literals[] = {"NaN", "-Infinity", "Infinity", "nan", "1e999", "-0", "01", "1.e5"};
      hole_text = uniform(rng, 2) ? nested(nesting_depth(rng), uniform(rng, 2), "1")
                                  : std::string(literals[uniform(rng, std::size(literals))]);
      node = kHole.substr(1, kHole.size() - 2);
      break;
    }
    default:  // wrap the value
      node = uniform(rng, 2) ? json::array({node}) : json::object({{"k", node}});
      break;
  }
  return true;
}

std::string dump_with_hole(const json& doc, const std::string& hole_text) {
  std::string text = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  if (!hole_text.empty()) {
    const auto at = text.find(kHole);
    if (at != std::string::npos) text.replace(at, kHole.size(), hole_text);
  }
  return text;
}

// Edits the whole input when it is one JSON document, else one of its lines that is.
bool mutate_json(std::string& s, const std::vector<std::string>& keys, Rng& rng) {
  // Deeper text is not parsed for structured edits: they could not dump it back.
  if (detail::json_deeper_than(s, 200)) return false;
  std::string hole;
  json doc = json::parse(s, nullptr, false);
  if (!doc.is_discarded()) {
    if (!mutate_document(doc, keys, rng, hole)) return false;
    s = dump_with_hole(doc, hole);
    return true;
  }
  std::vector<std::string> lines;
  std::stringstream ss(s);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  if (lines.empty()) return false;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const std::size_t i = uniform(rng, lines.size());
    json line = json::parse(lines[i], nullptr, false);
    if (line.is_discarded() || !mutate_document(line, keys, rng, hole)) continue;
    lines[i] = dump_with_hole(line, hole);
    std::string out;
    for (std::size_t k = 0; k < lines.size(); ++k) out += lines[k] + (k + 1 < lines.size() || s.back() == '\n' ? "\n" : "");
    s = std::move(out);
    return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> json_keys(const std::vector<std::string>& inputs) {
  std::vector<std::string> keys;
  auto add = [&](const std::string& text) {
    const json doc = json::parse(text, nullptr, false);
    if (!doc.is_discarded()) keys_of(doc, keys);
  };
  for (const auto& in : inputs) {
    add(in);
    std::stringstream ss(in);
    for (std::string line; std::getline(ss, line);) add(line);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

std::string mutate(const std::string& input, const std::vector<std::string>& pool, const std::vector<std::string>& keys,
                   const Target& t, Rng& rng, std::size_t max_len) {
  std::string s = input;
  if (t.generate && uniform(rng, 8) == 0) s = t.generate(rng);
  // Mostly few edits: an input far from any valid one only meets the first check of a reader.
  const std::size_t steps = 1 + (uniform(rng, 4) == 0 ? uniform(rng, 8) : uniform(rng, 2));
  for (std::size_t i = 0; i < steps; ++i) {
    if (t.json && uniform(rng, 2) && mutate_json(s, keys, rng)) continue;
    mutate_bytes(s, pool, t, rng);
  }
  if (s.size() > max_len) s.resize(max_len);
  return s;
}

}  // namespace mmphate::fuzz
