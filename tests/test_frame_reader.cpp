// Reader of run directories (docs/FRAMES.md) on the recorded sample runs in tests/data, and
// the static-figure helpers that must agree with the viewer (palette, PNG writer).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <functional>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "colors.hpp"
#include "image.hpp"
#include "mmphate/error.hpp"
#include "mmphate/run/frame_reader.hpp"

using namespace mmphate;
using nlohmann::json;

namespace {

const std::string kData = std::string(MMPHATE_SOURCE_DIR) + "/tests/data/";

json embedding_line() {
  return json::parse(R"({"schema_version":1,"type":"embedding","run_id":"r","frame":1,"epoch":0,"global_step":10,
    "wall_time":1.0,"n_nodes":4,"n_present":3,"n_components":2,"window":{"epochs":[0],"steps":2,"units":2},
    "coords":[0,0, 1,0, null,null, 0,1],"most_active_class":[1,2,-1,0],"t":5,"update":"full",
    "timings_s":{},"metrics":{"loss":0.5,"acc":null},"diagnostics":{"h":1.5}})");
}

std::string tmp_dir(const std::string& name) {
  const std::string d = testing::TempDir() + "/mmphate_fr_" + name;
  std::string cmd = "rm -rf '" + d + "' && mkdir -p '" + d + "/frames'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return d;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

TEST(FrameReader, ReadsSampleRun) {
  const RunData run = read_run(kData + "sample_run");
  EXPECT_TRUE(run.warnings.empty());
  EXPECT_EQ(run.layout.steps, 8);
  EXPECT_EQ(run.layout.units, 16);
  EXPECT_EQ(run.layout.step_index.back(), 27);
  EXPECT_EQ(run.layout.units_meta[9].direction, 1);
  EXPECT_EQ(run.layout.units_meta[9].unit, 1);
  EXPECT_EQ(run.frames.size(), 12u);
  const auto emb = run.embeddings();
  ASSERT_EQ(emb.size(), 8u);
  EXPECT_EQ(run.frames.front().event, "started");
  EXPECT_EQ(run.min_epoch(), 0);
  EXPECT_EQ(run.max_epoch(), 7);
  const Frame& f = *emb[5];  // epoch 5, window 2..5
  EXPECT_EQ(f.window_epochs, (std::vector<std::int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(f.n_nodes, 4 * 8 * 16);
  EXPECT_EQ(f.node_epoch(0), 2);
  EXPECT_EQ(f.node_epoch(f.n_nodes - 1), 5);
  EXPECT_EQ(f.node_step_pos(16 * 3 + 5), 3);
  EXPECT_EQ(f.node_unit(16 * 3 + 5), 5);
  std::int64_t present = 0;
  for (std::int64_t i = 0; i < f.n_nodes; ++i) present += f.present(i);
  EXPECT_EQ(present, f.n_present);
  EXPECT_EQ(f.most_active_class.size(), static_cast<std::size_t>(f.n_nodes));
  bool has_null_metric = false;
  for (const auto* e : emb)
    for (const auto& [k, v] : e->metrics) has_null_metric |= (k == "val_acc" && std::isnan(v));
  EXPECT_TRUE(has_null_metric);  // null metric -> NaN
}

TEST(FrameReader, LoadsSidecarCoordinates) {
  RunData run = read_run(kData + "sample_run");
  Frame& last = run.frames[select_frames(run, "last")[0]];
  ASSERT_FALSE(last.coords_file.empty());
  EXPECT_FALSE(last.coords_loaded());
  load_coords(run, last);
  ASSERT_EQ(last.coords.size(), static_cast<std::size_t>(last.n_nodes * 2));
  std::int64_t present = 0;
  for (std::int64_t i = 0; i < last.n_nodes; ++i) present += last.present(i);
  EXPECT_EQ(present, last.n_present);
}

TEST(FrameReader, SkipsTruncatedLastLineWithWarning) {
  const RunData run = read_run(kData + "sample_run_truncated");
  ASSERT_EQ(run.warnings.size(), 1u);
  EXPECT_NE(run.warnings[0].find("incomplete last line"), std::string::npos);
  EXPECT_EQ(run.skipped_lines, 1u);
  EXPECT_EQ(run.embeddings().back()->epoch, 6);
}

TEST(FrameReader, ThreeDimensionalRun) {
  RunData run = read_run(kData + "sample_run_3d");
  const auto emb = run.embeddings();
  ASSERT_EQ(emb.size(), 5u);
  EXPECT_EQ(emb.back()->n_components, 3);
  EXPECT_EQ(emb.back()->window_epochs.size(), 3u);
}

TEST(FrameReader, SkipsMalformedLinesAndKeepsTheRest) {
  RunData run;
  const std::string good = embedding_line().dump();
  parse_frames_text(good + "\n{not json\n\n[1,2]\n" + good + "\n{\"schema_version\":1", run);
  EXPECT_EQ(run.frames.size(), 2u);
  EXPECT_EQ(run.skipped_lines, 3u);  // bad JSON, not an object, truncated tail
  EXPECT_EQ(run.frames[1].line, 5u);
  EXPECT_NE(run.warnings[0].find("line 2"), std::string::npos);
}

TEST(FrameReader, ParsesInlineFrame) {
  const Frame f = parse_frame(embedding_line());
  EXPECT_TRUE(f.is_embedding());
  EXPECT_TRUE(f.present(0));
  EXPECT_FALSE(f.present(2));
  EXPECT_EQ(f.most_active_class[1], 2);
  EXPECT_DOUBLE_EQ(f.diagnostics["h"].get<double>(), 1.5);
}

TEST(FrameReader, RejectsInconsistentFrames) {
  auto bad = [](const std::function<void(json&)>& edit) {
    json j = embedding_line();
    edit(j);
    return j;
  };
  EXPECT_THROW(parse_frame(bad([](json& j) { j["n_nodes"] = 5; })), Error);
  EXPECT_THROW(parse_frame(bad([](json& j) { j["coords"].erase(0); })), Error);
  EXPECT_THROW(parse_frame(bad([](json& j) { j["coords"][0] = "x"; })), Error);
  EXPECT_THROW(parse_frame(bad([](json& j) { j["n_components"] = 4; })), Error);
  EXPECT_THROW(parse_frame(bad([](json& j) { j["type"] = "other"; })), Error);
  EXPECT_THROW(parse_frame(bad([](json& j) { j["schema_version"] = 2; })), Error);
  EXPECT_THROW(parse_frame(bad([](json& j) { j.erase("coords"); })), Error);
  EXPECT_THROW(parse_frame(bad([](json& j) { j["n_nodes"] = 1LL << 40; })), Error);
  EXPECT_THROW(parse_frame(bad([](json& j) { j["window"]["epochs"] = json::array(); })), Error);
  EXPECT_THROW(parse_frame(bad([](json& j) { j["most_active_class"] = {1}; })), Error);
  EXPECT_THROW(parse_frame(json::array()), Error);
}

// Found by fuzzing (tests/fuzz): node_index steps 2^31 - 1 allocated 8 GB of step_index,
// units 2^32 + 1 were narrowed to 1, a window of 2^62 + 1 steps overflowed the node count
// check (UB), and a 40 000-deep diagnostics block overflowed the stack when copied.
TEST(FrameReader, HugeLayoutsWindowsAndDeepLinesAreRefused) {
  EXPECT_THROW(parse_node_layout(json{{"steps", 2147483647}, {"units", 2}}, "ni"), Error);
  EXPECT_THROW(parse_node_layout(json{{"steps", 1}, {"units", 4294967297LL}}, "ni"), Error);
  EXPECT_THROW(parse_node_layout(json{{"steps", 100000}, {"units", 100000}}, "ni"), Error);
  EXPECT_EQ(parse_node_layout(json{{"steps", 1000}, {"units", 1000}}, "ni").units_meta.size(), 1000u);
  json j = embedding_line();
  j["window"] = {{"epochs", {0, 1, 2, 3}}, {"steps", (1LL << 62) + 1}, {"units", 1}};
  EXPECT_THROW(parse_frame(j), Error);
  RunData run;
  std::string deep = embedding_line().dump();
  deep.insert(deep.size() - 1, ",\"data\":" + std::string(40000, '[') + std::string(40000, ']'));
  parse_frames_text(deep + "\n" + embedding_line().dump() + "\n", run);
  EXPECT_EQ(run.frames.size(), 1u);
  ASSERT_EQ(run.warnings.size(), 1u);
  EXPECT_NE(run.warnings[0].find("nested deeper than 100 levels"), std::string::npos) << run.warnings[0];
}

TEST(FrameReader, SidecarMustStayInsideTheRunAndMatchItsShape) {
  const std::string d = tmp_dir("sidecar");
  write(d + "/node_index.json", R"({"schema_version":1,"steps":2,"units":2})");
  json j = embedding_line();
  j.erase("coords");
  std::string lines;
  for (const char* path : {"../escape.f32", "/etc/passwd", "frames/short.f32", "frames/ok.f32"}) {
    j["coords_file"] = {{"path", path}, {"dtype", "<f4"}, {"shape", {4, 2}}};
    lines += j.dump() + "\n";
  }
  write(d + "/frames.jsonl", lines);
  write(d + "/frames/short.f32", std::string(12, '\0'));
  const float v[8] = {0, 0, 1, 0, NAN, NAN, 0, 1};
  write(d + "/frames/ok.f32", std::string(reinterpret_cast<const char*>(v), sizeof v));
  RunData run = read_run(d);
  ASSERT_EQ(run.frames.size(), 4u);
  EXPECT_THROW(load_coords(run, run.frames[0]), Error);
  EXPECT_THROW(load_coords(run, run.frames[1]), Error);
  EXPECT_THROW(load_coords(run, run.frames[2]), Error);
  load_coords(run, run.frames[3]);
  EXPECT_FALSE(run.frames[3].present(2));
  EXPECT_TRUE(run.frames[3].present(3));
}

// A symbolic link inside frames/ (or frames/ itself a link) must not carry the reader out of
// the run directory; a link that stays inside is fine. A FIFO is refused without blocking.
TEST(FrameReader, SidecarLinkLeavingTheRunIsRefused) {
  const std::string d = tmp_dir("sidecar_link"), outside = tmp_dir("sidecar_link_outside");
  write(d + "/node_index.json", R"({"schema_version":1,"steps":2,"units":2})");
  const float v[8] = {0, 0, 1, 0, NAN, NAN, 0, 1};
  const std::string bytes(reinterpret_cast<const char*>(v), sizeof v);
  write(outside + "/secret.f32", bytes);  // the right size: only the location is wrong
  write(d + "/frames/ok.f32", bytes);
  const std::string cmd = "ln -s '" + outside + "/secret.f32' '" + d + "/frames/out.f32' && ln -s ok.f32 '" + d +
                          "/frames/alias.f32' && ln -s '" + outside + "' '" + d + "/linked' && mkfifo '" + d +
                          "/frames/fifo.f32'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  json j = embedding_line();
  j.erase("coords");
  std::string lines;
  for (const char* path : {"frames/out.f32", "linked/secret.f32", "frames/fifo.f32", "frames/alias.f32"}) {
    j["coords_file"] = {{"path", path}, {"dtype", "<f4"}, {"shape", {4, 2}}};
    lines += j.dump() + "\n";
  }
  write(d + "/frames.jsonl", lines);
  RunData run = read_run(d);
  ASSERT_EQ(run.frames.size(), 4u);
  for (std::size_t i : {0u, 1u, 2u}) {
    try {
      load_coords(run, run.frames[i]);
      ADD_FAILURE() << run.frames[i].coords_file << " was read";
    } catch (const Error& e) {
      const std::string why = e.what();
      EXPECT_NE(why.find(i == 2 ? "not a regular file" : "outside the run directory"), std::string::npos) << why;
      EXPECT_NE(why.find(run.frames[i].coords_file), std::string::npos) << why;
    }
    EXPECT_FALSE(run.frames[i].coords_loaded());
  }
  load_coords(run, run.frames[3]);
  EXPECT_TRUE(run.frames[3].present(3));
}

TEST(FrameReader, MissingFilesAreErrors) {
  EXPECT_THROW(read_run(kData + "no_such_run"), Error);
  const std::string d = tmp_dir("missing");
  EXPECT_THROW(read_run(d), Error);  // no node_index.json
  write(d + "/node_index.json", "{\"steps\": 0}");
  write(d + "/frames.jsonl", "");
  EXPECT_THROW(read_run(d), Error);
  write(d + "/node_index.json", "{\"steps\": 2, \"units\": 3}");
  EXPECT_NO_THROW(read_run(d));
  EXPECT_THROW(select_frames(read_run(d), "last"), Error);  // no embedding frames
}

TEST(FrameReader, SelectsFrames) {
  const RunData run = read_run(kData + "sample_run");
  EXPECT_EQ(select_frames(run, "all").size(), 8u);
  EXPECT_EQ(run.frames[select_frames(run, "first")[0]].epoch, 0);
  EXPECT_EQ(run.frames[select_frames(run, "last")[0]].epoch, 7);
  EXPECT_EQ(run.frames[select_frames(run, "e:3")[0]].epoch, 3);
  EXPECT_EQ(run.frames[select_frames(run, "5")[0]].frame, 5);
  EXPECT_EQ(select_frames(run, "e:1,2,3").size(), 3u);
  EXPECT_THROW(select_frames(run, "0"), Error);  // frame 0 is an event
  EXPECT_THROW(select_frames(run, "e:99"), Error);
  EXPECT_THROW(select_frames(run, "x"), Error);
}

// The viewer and `mmphate render` colour alike: the C++ palette mirrors viewer/js/palette.js.
TEST(ViewerPalette, MatchesTheViewersTable) {
  std::ifstream in(std::string(MMPHATE_SOURCE_DIR) + "/viewer/js/palette.js");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string js = ss.str();
  const auto a = js.find("/*PALETTE-JSON*/"), b = js.find("/*END-PALETTE*/");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  const json p = json::parse(js.substr(a + 16, b - a - 16));
  const auto& P = view::palette();
  auto rgb = [](const view::Rgb& c) { return json::array({c[0], c[1], c[2]}); };
  EXPECT_EQ(p["background"], rgb(P.background));
  EXPECT_EQ(p["unknown"], rgb(P.unknown));
  ASSERT_EQ(p["ramp"].size(), P.ramp.size());
  for (std::size_t i = 0; i < P.ramp.size(); ++i) EXPECT_EQ(p["ramp"][i], rgb(P.ramp[i]));
  ASSERT_EQ(p["categorical"].size(), P.categorical.size());
  for (std::size_t i = 0; i < P.categorical.size(); ++i) EXPECT_EQ(p["categorical"][i], rgb(P.categorical[i]));
  EXPECT_DOUBLE_EQ(p["unit_hue_step"].get<double>(), P.unit_hue_step);
  EXPECT_DOUBLE_EQ(p["unit_saturation"].get<double>(), P.unit_saturation);
  EXPECT_DOUBLE_EQ(p["unit_lightness"].get<double>(), P.unit_lightness);
  EXPECT_DOUBLE_EQ(p["view3d"]["yaw"].get<double>(), P.yaw);
  EXPECT_DOUBLE_EQ(p["view3d"]["pitch"].get<double>(), P.pitch);
  // Values palette.js gives for the same inputs (MM.ramp, MM.unitColor): same arithmetic.
  EXPECT_EQ(rgb(view::ramp(0.5)), json::array({30, 160, 150}));
  EXPECT_EQ(rgb(view::ramp(0.3)), json::array({38, 112, 166}));
  EXPECT_EQ(rgb(view::ramp(1.0)), json::array({245, 210, 50}));
  EXPECT_EQ(rgb(view::unit_color(0)), json::array({210, 45, 45}));
  EXPECT_EQ(rgb(view::unit_color(5)), json::array({210, 134, 45}));
  EXPECT_EQ(rgb(view::categorical(-1)), rgb(P.unknown));
}

TEST(ViewerPng, WritesAValidPng) {
  view::Image img(7, 5, {255, 255, 255});
  img.rect(2, 1, 3, 2, {10, 20, 30});
  const std::string path = testing::TempDir() + "/mmphate_fr_test.png";
  view::write_png(path, img);
  std::ifstream in(path, std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(png.size(), 8u + 25 + 12);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  // Inflate IDAT and compare with the pixels (filter byte 0 before each row).
  const std::size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  const auto* q = reinterpret_cast<const unsigned char*>(png.data() + idat - 4);
  const uLong zlen = (uLong(q[0]) << 24) | (uLong(q[1]) << 16) | (uLong(q[2]) << 8) | q[3];
  std::string raw(5 * (7 * 3 + 1), '\0');
  uLongf rlen = raw.size();
  ASSERT_EQ(uncompress(reinterpret_cast<Bytef*>(&raw[0]), &rlen, reinterpret_cast<const Bytef*>(png.data() + idat + 4), zlen), Z_OK);
  ASSERT_EQ(rlen, raw.size());
  const std::size_t px = 1 * (7 * 3 + 1) + 1 + 3 * 3;  // row 1, x = 3
  EXPECT_EQ(static_cast<unsigned char>(raw[px]), 10);
  EXPECT_EQ(static_cast<unsigned char>(raw[px + 2]), 30);
  EXPECT_EQ(static_cast<unsigned char>(raw[1]), 255);
}
