// Unit tests of Options: defaults, validate() naming the offending field, and the parsers.
#include "data/option_table.hpp"
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>

#include "mmphate/error.hpp"
#include "mmphate/monitor/config.hpp"
#include "mmphate/options.hpp"
#include "test_util.hpp"

using namespace mmphate;

namespace {

// validate() must throw mmphate::Error whose message names the field and its value.
void expect_invalid(const std::function<void(Options&)>& mutate, const std::string& field,
                    const std::string& value) {
  Options o;
  mutate(o);
  try {
    o.validate();
    ADD_FAILURE() << "validate() accepted " << field << " = " << value;
  } catch (const Error& e) {
    const std::string what = e.what();
    const std::string needle = "option " + field + " = " + value;
    EXPECT_NE(what.find(needle), std::string::npos) << "message '" << what << "' lacks '" << needle << "'";
    EXPECT_NE(what.find("allowed"), std::string::npos) << what;
  }
}

}  // namespace

TEST(Options, DefaultsAreValidAndMatchPlainPhate) {
  const Options o;
  EXPECT_NO_THROW(o.validate());
  EXPECT_EQ(o.knn, 5);
  EXPECT_EQ(o.decay, 40.0);
  EXPECT_EQ(o.gamma, 1.0);
  EXPECT_EQ(o.n_landmark, 2000);
  EXPECT_EQ(o.n_pca, 100);
  EXPECT_EQ(o.mds_solver, MdsSolver::sgd);
  EXPECT_EQ(o.n_components, 2);
  const Options p = Options::phate();
  EXPECT_EQ(p.decay, o.decay);
  EXPECT_EQ(p.gamma, o.gamma);
  EXPECT_EQ(p.n_landmark, o.n_landmark);
}

TEST(Options, MphateDefaultsFollowTheReference) {
  const Options o = Options::mphate();
  EXPECT_NO_THROW(o.validate());
  EXPECT_EQ(o.intraslice_knn, 2);
  EXPECT_EQ(o.interslice_knn, 25);
  EXPECT_EQ(o.decay, 5.0);
  EXPECT_EQ(o.n_landmark, 4000);
  EXPECT_EQ(o.n_svd, 100);
  EXPECT_EQ(o.t, 0);
  EXPECT_EQ(o.t_max, 100);
  EXPECT_EQ(o.gamma, 0.0);
  EXPECT_TRUE(o.normalize);
  EXPECT_EQ(o.mds, MdsMethod::metric);
  EXPECT_EQ(o.mds_solver, MdsSolver::smacof);
  EXPECT_EQ(o.n_components, 2);
}

TEST(Options, ValidateNamesEachInvalidField) {
  expect_invalid([](Options& o) { o.knn = 0; }, "knn", "0");
  expect_invalid([](Options& o) { o.decay = -1; }, "decay", "-1");
  expect_invalid([](Options& o) { o.gamma = 2; }, "gamma", "2");
  expect_invalid([](Options& o) { o.n_components = 4; }, "n_components", "4");
  expect_invalid([](Options& o) { o.t = -1; }, "t", "-1");
  expect_invalid([](Options& o) { o.thresh = 1; }, "thresh", "1");
  expect_invalid([](Options& o) { o.threads = -1; }, "threads", "-1");
}

TEST(Options, ValidateRejectsOtherOutOfRangeFields) {
  expect_invalid([](Options& o) { o.decay = 0; }, "decay", "0");
  expect_invalid([](Options& o) { o.decay = std::numeric_limits<double>::quiet_NaN(); }, "decay", "nan");
  expect_invalid([](Options& o) { o.gamma = -1.5; }, "gamma", "-1.5");
  expect_invalid([](Options& o) { o.thresh = -0.1; }, "thresh", "-0.1");
  expect_invalid([](Options& o) { o.n_components = 1; }, "n_components", "1");
  expect_invalid([](Options& o) { o.n_pca = -1; }, "n_pca", "-1");
  expect_invalid([](Options& o) { o.intraslice_knn = 0; }, "intraslice_knn", "0");
  expect_invalid([](Options& o) { o.interslice_knn = 0; }, "interslice_knn", "0");
  expect_invalid([](Options& o) { o.n_landmark = 1; }, "n_landmark", "1");
  expect_invalid([](Options& o) { o.n_svd = 0; }, "n_svd", "0");
  expect_invalid([](Options& o) { o.t_max = 2; }, "t_max", "2");
  expect_invalid([](Options& o) { o.mds_max_iter = 0; }, "mds_max_iter", "0");
  expect_invalid([](Options& o) { o.mds_tol = -1; }, "mds_tol", "-1");
  expect_invalid([](Options& o) { o.sgd_epochs = 0; }, "sgd_epochs", "0");
  expect_invalid([](Options& o) { o.sgd_eps = 0; }, "sgd_eps", "0");
  expect_invalid([](Options& o) { o.sgd_eps = 1.5; }, "sgd_eps", "1.5");
}

TEST(Options, BoundaryValuesAreAccepted) {
  Options o;
  o.knn = 1;
  o.thresh = 0;
  o.gamma = -1;
  o.n_components = 3;
  o.t = 1;
  o.threads = 0;
  o.n_landmark = 0;
  o.n_pca = 0;
  o.t_max = 3;
  o.sgd_eps = 1;
  EXPECT_NO_THROW(o.validate());
  o.gamma = 1;
  o.n_landmark = 2;
  EXPECT_NO_THROW(o.validate());
}

TEST(Options, ParseMdsSolverRejectsUnknownNamingAllowedValues) {
  EXPECT_EQ(parse_mds_solver("smacof"), MdsSolver::smacof);
  EXPECT_EQ(parse_mds_solver("sgd"), MdsSolver::sgd);
  try {
    parse_mds_solver("foo");
    ADD_FAILURE() << "parse_mds_solver accepted 'foo'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("foo"), std::string::npos) << what;
    EXPECT_NE(what.find("smacof"), std::string::npos) << what;
    EXPECT_NE(what.find("sgd"), std::string::npos) << what;
  }
}

TEST(Options, ParseMdsMethodAndKnnMethod) {
  EXPECT_EQ(parse_mds_method("classic"), MdsMethod::classic);
  EXPECT_EQ(parse_mds_method("metric"), MdsMethod::metric);
  EXPECT_EQ(parse_knn_method("auto"), KnnMethod::automatic);
  EXPECT_EQ(parse_knn_method("exact"), KnnMethod::exact);
  EXPECT_EQ(parse_knn_method("kdtree"), KnnMethod::kdtree);
  try {
    parse_mds_method("nonmetric");
    ADD_FAILURE();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("nonmetric"), std::string::npos) << what;
    EXPECT_NE(what.find("classic"), std::string::npos) << what;
    EXPECT_NE(what.find("metric'"), std::string::npos) << what;
  }
  try {
    parse_knn_method("balltree");
    ADD_FAILURE();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("balltree"), std::string::npos) << what;
    EXPECT_NE(what.find("kdtree"), std::string::npos) << what;
  }
  // parsing is exact: no case folding or trimming
  EXPECT_THROW(parse_mds_solver("SGD"), Error);
  EXPECT_THROW(parse_knn_method(" exact"), Error);
}

TEST(Options, ToStringRoundTripsThroughParse) {
  for (auto m : {MdsMethod::classic, MdsMethod::metric}) EXPECT_EQ(parse_mds_method(to_string(m)), m);
  for (auto s : {MdsSolver::smacof, MdsSolver::sgd}) EXPECT_EQ(parse_mds_solver(to_string(s)), s);
  for (auto k : {KnnMethod::automatic, KnnMethod::exact, KnnMethod::kdtree})
    EXPECT_EQ(parse_knn_method(to_string(k)), k);
}

// ---------------------------------------------------------------- JSON configs

namespace {

mmphate::Options load_config(const std::string& name, mmphate::Options base) {
  mmphate::cli::apply_options_file(base, std::string(MMPHATE_SOURCE_DIR) + "/configs/" + name);
  return base;
}

bool same_options(const mmphate::Options& a, const mmphate::Options& b) {
  return mmphate::cli::options_to_json(a) == mmphate::cli::options_to_json(b);
}

}  // namespace

TEST(OptionsJson, ShippedPresetsRoundTrip) {
  using mmphate::Options;
  // Loading a preset file onto any base yields the preset (every field is in the file).
  EXPECT_TRUE(same_options(load_config("phate.json", Options::mphate()), Options::phate()));
  EXPECT_TRUE(same_options(load_config("mmphate_reference.json", Options::phate()), Options::mphate()));
  EXPECT_TRUE(same_options(load_config("mmphate_scalable.json", Options::phate()), Options::mmphate_scalable()));
  const Options har = load_config("uci_har_lstm30_3d.json", Options::phate());
  EXPECT_EQ(har.n_components, 3);
  EXPECT_EQ(har.multislice_mode, mmphate::MultisliceMode::scalable);
  EXPECT_NO_THROW(har.validate());
  EXPECT_NO_THROW(load_config("area2_bump_lstm20.json", Options::phate()).validate());
}

TEST(OptionsJson, UnknownKeyAndWrongTypeAreNamed) {
  mmphate::Options o;
  try {
    mmphate::cli::apply_options_json(o, nlohmann::json{{"knnn", 5}}, "cfg.json");
    FAIL() << "unknown key accepted";
  } catch (const mmphate::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'knnn'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("intraslice_knn"), std::string::npos) << msg;  // lists the valid keys
  }
  try {
    mmphate::cli::apply_options_json(o, nlohmann::json{{"knn", nlohmann::json::array({1, 2})}}, "cfg.json");
    FAIL() << "array value accepted";
  } catch (const mmphate::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'knn'"), std::string::npos) << e.what();
  }
  try {
    mmphate::cli::apply_options_json(o, nlohmann::json{{"mds_solver", "fast"}}, "cfg.json");
    FAIL() << "bad enum accepted";
  } catch (const mmphate::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'smacof', 'sgd'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(mmphate::cli::apply_options_json(o, nlohmann::json::array(), "cfg.json"), mmphate::Error);
}

TEST(OptionsJson, ValuesApplyWithTheirTypes) {
  mmphate::Options o;
  mmphate::cli::apply_options_json(
      o, nlohmann::json{{"knn", 7}, {"gamma", 0.25}, {"normalize", false}, {"nan_policy", "drop-node"}, {"seed", 9}},
      "cfg.json");
  EXPECT_EQ(o.knn, 7);
  EXPECT_DOUBLE_EQ(o.gamma, 0.25);
  EXPECT_FALSE(o.normalize);
  EXPECT_EQ(o.nan_policy, mmphate::NanPolicy::drop_node);
  EXPECT_EQ(o.seed, 9u);
}

// Size-like fields are bounded (t_max = 2^31 - 1 drove a 96-node embedding to 15 GB); the
// message names the field, the value and the range.
TEST(Options, ValidateBoundsSizeLikeFields) {
  expect_invalid([](Options& o) { o.t_max = 2147483647; }, "t_max", "2147483647");
  expect_invalid([](Options& o) { o.t = 10001; }, "t", "10001");
  expect_invalid([](Options& o) { o.knn = 100001; }, "knn", "100001");
  expect_invalid([](Options& o) { o.threads = 1025; }, "threads", "1025");
  expect_invalid([](Options& o) { o.n_svd = 10001; }, "n_svd", "10001");
  expect_invalid([](Options& o) { o.sgd_epochs = 100001; }, "sgd_epochs", "100001");
  expect_invalid([](Options& o) { o.mds_max_iter = 1000001; }, "mds_max_iter", "1000001");
  expect_invalid([](Options& o) { o.n_landmark = 1000001; }, "n_landmark", "1000001");
  expect_invalid([](Options& o) { o.interslice_edges = 100001; }, "interslice_edges", "100001");
  expect_invalid([](Options& o) { o.n_pca = 100001; }, "n_pca", "100001");
  Options o;
  o.t_max = 2147483647;
  EXPECT_NE(mmphate::testing::error_of([&] { o.validate(); }).find("allowed integers in [3, 10000]"), std::string::npos);
  o.t_max = 10000;
  o.t = 10000;
  o.threads = 1024;
  EXPECT_NO_THROW(o.validate());
}

// Integers that do not fit the field are refused with the option, the value and the range
// (they wrapped: --knn 4294967297 ran with knn 1, {"knn": 4294967301} with 5); a negative
// seed was read as 2^64 - 1 and then failed with a bare "stoll".
TEST(OptionsJson, IntegersNeverWrap) {
  using mmphate::cli::apply_option;
  using mmphate::cli::apply_options_json;
  Options o;
  auto flag_error = [&](const std::string& name, const std::string& value) {
    return mmphate::testing::error_of([&] { apply_option(o, name, value); });
  };
  EXPECT_NE(flag_error("knn", "4294967297").find("option knn = 4294967297: allowed integers in [1, 100000]"),
            std::string::npos);
  EXPECT_NE(flag_error("threads", "4294967298").find("threads = 4294967298: allowed integers in [0, 1024]"),
            std::string::npos);
  EXPECT_NE(flag_error("t_max", "99999999999999999999").find("t_max = 99999999999999999999"), std::string::npos);
  EXPECT_NE(flag_error("seed", "-1").find("seed = -1: allowed integers in [0, 18446744073709551615]"),
            std::string::npos);
  EXPECT_NE(flag_error("seed", "18446744073709551616").find("seed = 18446744073709551616"), std::string::npos);
  EXPECT_NE(flag_error("knn", "5x").find("expects an integer"), std::string::npos);
  EXPECT_EQ(o.knn, 5);
  EXPECT_EQ(o.seed, 42u);

  const std::string js = mmphate::testing::error_of([&] {
    apply_options_json(o, nlohmann::json::parse(R"({"knn": 4294967301})"), "cfg.json");
  });
  EXPECT_NE(js.find("cfg.json: key 'knn': invalid option knn = 4294967301"), std::string::npos) << js;
  EXPECT_NE(mmphate::testing::error_of([&] {
              apply_options_json(o, nlohmann::json::parse(R"({"seed": -1})"), "cfg.json");
            }).find("seed = -1"),
            std::string::npos);
  apply_options_json(o, nlohmann::json::parse(R"({"seed": 18446744073709551615})"), "cfg.json");
  EXPECT_EQ(o.seed, 18446744073709551615ull);
  const nlohmann::json back = mmphate::cli::options_to_json(o);  // threw "stoll" before
  EXPECT_EQ(back["seed"].get<std::uint64_t>(), 18446744073709551615ull);
}

// The monitor config's embedding section goes through the same checks.
TEST(OptionsJson, MonitorConfigEmbeddingIsBounded) {
  mmphate::MonitorConfig cfg;
  const std::string e = mmphate::testing::error_of([&] {
    mmphate::apply_monitor_json(cfg, nlohmann::json::parse(R"({"embedding": {"t_max": 2147483647}})"), "mon.json");
  });
  EXPECT_NE(e.find("t_max = 2147483647: allowed integers in [3, 10000]"), std::string::npos) << e;
  const std::string w = mmphate::testing::error_of([&] {
    mmphate::apply_monitor_json(cfg, nlohmann::json::parse(R"({"embedding": {"knn": 4294967301}})"), "mon.json");
  });
  EXPECT_NE(w.find("knn = 4294967301"), std::string::npos) << w;
}

// Found by fuzzing (tests/fuzz): a number beyond double (1e999) is nlohmann's out_of_range,
// which leaked past the handler of parse_error; nesting deeper than any config is refused
// before anything recurses over it.
TEST(OptionsJson, NumberBeyondDoubleAndDeepNestingAreCleanErrors) {
  const std::string path = ::testing::TempDir() + "/mmphate_options_" + std::to_string(::getpid()) + ".json";
  auto file_error = [&](const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    mmphate::Options o;
    return mmphate::testing::error_of([&] { mmphate::cli::apply_options_file(o, path); });
  };
  std::string e = file_error(R"({"knn": 5, "decay": 1e999})");
  EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("1e999"), std::string::npos) << e;
  e = file_error("{\"knn\": " + std::string(50000, '[') + std::string(50000, ']') + "}");
  EXPECT_NE(e.find("nested deeper than 100 levels"), std::string::npos) << e;
  std::remove(path.c_str());
}

// One key table (detail::option_keys) serves the CLI flags, engine config files and the
// monitor config's embedding section: a flag, a file and the monitor config read the same
// value the same way, config.json writes every field back, and every integer key (not only
// the engine's) refuses a value beyond its type with the key's allowed values.
TEST(OptionsJson, FlagsFilesAndMonitorConfigShareOneTable) {
  using mmphate::cli::apply_option;
  Options flag, file;
  EXPECT_TRUE(apply_option(flag, "normalize", "0"));
  EXPECT_TRUE(apply_option(flag, "mds_solver", "sgd"));
  EXPECT_TRUE(apply_option(flag, "gamma", "-0.5"));
  EXPECT_TRUE(apply_option(flag, "seed", "18446744073709551615"));
  EXPECT_FALSE(apply_option(flag, "preset", "scalable"));  // a CLI flag of its own, not an option
  mmphate::cli::apply_options_json(
      file, nlohmann::json{{"normalize", false}, {"mds_solver", "sgd"}, {"gamma", -0.5}, {"seed", 18446744073709551615ull}},
      "cfg.json");
  EXPECT_EQ(mmphate::cli::options_to_json(flag), mmphate::cli::options_to_json(file));
  EXPECT_NE(mmphate::testing::error_of([&] { apply_option(flag, "normalize", "yes"); }).find("--normalize expects true or false"),
            std::string::npos);
  EXPECT_NE(mmphate::testing::error_of([&] { apply_option(flag, "gamma", "0.5x"); }).find("--gamma expects a number"),
            std::string::npos);
  // A file's value of the wrong JSON type is refused (a string was once taken as a number's text).
  EXPECT_NE(mmphate::testing::error_of([&] {
              mmphate::cli::apply_options_json(file, nlohmann::json{{"knn", "5"}}, "cfg.json");
            }).find("key 'knn' = \"5\": expected an integer"),
            std::string::npos);

  mmphate::MonitorConfig cfg;
  mmphate::apply_monitor_json(cfg, nlohmann::json::parse(R"({"embedding": {"preset": "reference", "knn": 7}})"), "mon.json");
  EXPECT_EQ(cfg.embedding.knn, 7);
  EXPECT_EQ(cfg.embedding.multislice_mode, mmphate::MultisliceMode::faithful);
  const nlohmann::json written = mmphate::monitor_config_to_json(cfg)["embedding"];
  EXPECT_EQ(written, mmphate::cli::options_to_json(cfg.embedding));
  EXPECT_EQ(written.size(), mmphate::cli::option_flags().size());
  const std::string typo = mmphate::testing::error_of([&] {
    mmphate::apply_monitor_json(cfg, nlohmann::json::parse(R"({"embedding": {"knnn": 7}})"), "mon.json");
  });
  EXPECT_NE(typo.find("unknown key 'embedding.knnn'"), std::string::npos) << typo;
  const std::string wide = mmphate::testing::error_of([&] {
    mmphate::apply_monitor_json(cfg, nlohmann::json::parse(R"({"capture": {"every_n_epochs": 99999999999}})"), "mon.json");
  });
  EXPECT_NE(wide.find("invalid monitor config capture.every_n_epochs = 99999999999: allowed >= 1"), std::string::npos)
      << wide;
}
