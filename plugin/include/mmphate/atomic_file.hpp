// Crash-safe whole-file writes: the bytes go to `<path>.tmp`, which is then renamed over
// `path`, so a reader (or a resumed run) never sees a half-written file. Used for the
// snapshot index, the run directory's config / node index and the coordinate sidecars.
#pragma once
#include <string>

namespace mmphate {

// Throws mmphate::Error naming the path when the file cannot be written or moved.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace mmphate
