// Crash-safe whole-file writes: the bytes go to `<target>.tmp`, which is then renamed over
// `target`, so a reader (or a resumed run) never sees a half-written file. Used for the
// snapshot index, the run directory's config / node index, the coordinate sidecars, .npy
// outputs and the CLI's summaries and figures.
//
// What the output path may be:
//  * a new path or a regular file: written atomically;
//  * a symbolic link (chains too): the link stays; its final target is written, atomically
//    when that is a regular file or does not exist yet (a dangling link creates its target);
//  * a character device (/dev/null, a terminal): written in place, not atomically (renaming a
//    file over the device node would replace the device);
//  * a FIFO, socket, block device or directory: refused with an Error naming the path and
//    its kind (a FIFO blocks without a reader; the others are not output files).
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace mmphate {

// Where a write to `path` goes (see above). Throws mmphate::Error for refused kinds.
struct WriteTarget {
  std::string path;       // the resolved destination
  bool in_place = false;  // a character device: opened and written directly
};
WriteTarget resolve_write_target(const std::string& path);

// Throws mmphate::Error naming the path when the file cannot be written or moved.
void write_file_atomic(const std::string& path, const std::string& bytes);

// The same, with the content streamed by `fill` (large arrays need no copy in memory).
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& fill);

// Fails early, before any computation, when write_file_atomic(path, ...) could not create
// its output (missing directory, no permission, refused kind). Leaves nothing behind.
void require_writable(const std::string& path);

}  // namespace mmphate
