// Fuzz harness of the engine-options reader (plugin/src/data/option_table.cpp, options.cpp): a
// JSON config file read by apply_options_file, validated, then written back with
// options_to_json and read again, which must give the same options.
#include "fuzz.hpp"
#include "mmphate/error.hpp"
#include "data/option_table.hpp"
#include "mmphate/options.hpp"

namespace mmphate::fuzz {
namespace {

std::vector<std::string> seeds() {
  std::vector<std::string> s;
  for (const char* name : {"phate.json", "mmphate_reference.json", "mmphate_scalable.json", "area2_bump_lstm20.json",
                           "uci_har_lstm30_3d.json"})
    s.push_back(read_file(std::string(MMPHATE_SOURCE_DIR) + "/configs/" + name));
  for (const Options& o : {Options::phate(), Options::mphate(), Options::mmphate_scalable()})
    s.push_back(cli::options_to_json(o).dump());
  s.push_back(R"({"knn": 10, "seed": 18446744073709551615, "normalize": "false", "t": "7", "gamma": -1})");
  return s;
}

void run(const std::string& input, const std::string& scratch) {
  const std::string path = scratch + "/options.json";
  write_file(path, input);
  Options o;
  cli::apply_options_file(o, path);
  o.validate();
  const nlohmann::json j = cli::options_to_json(o);
  Options back;
  try {
    cli::apply_options_json(back, j, "round trip");
  } catch (const Error& e) {
    throw Broken(std::string("valid options written by options_to_json are refused: ") + e.what());
  }
  if (cli::options_to_json(back) != j) throw Broken("options_to_json does not round-trip: " + j.dump());
}

}  // namespace

const Target& target() {
  static const Target t{"options", seeds, run, {"\"knn\"", "\"seed\"", "\"t\"", "\"threads\"", ": ", ", "}, true, nullptr, 2000};
  return t;
}

}  // namespace mmphate::fuzz
