/// @file
/// What a frame callback receives: one frame line as JSON, the schema of docs/FRAMES.md
/// (docs/frame.schema.json). Monitor::add_callback takes one; it runs on the updater thread.
#pragma once
#include <functional>

#include <nlohmann/json.hpp>

namespace mmphate {

using FrameCallback = std::function<void(const nlohmann::json& frame)>;

}  // namespace mmphate
