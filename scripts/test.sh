#!/usr/bin/env bash
# Builds mmphate and runs every test (CTest, two at a time). Exits non-zero on any failure.
# Usage: scripts/test.sh [extra ctest arguments]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${MMPHATE_BUILD_DIR:-$root/build}"
"$root/scripts/build.sh" "$build"
cd "$build"
ctest --output-on-failure --parallel 2 "$@"
