#!/usr/bin/env bash
# Optional: coverage-guided fuzzing of tools/http_request with libFuzzer (Debian clang), beyond
# the seeded CTest harness (HttpFuzz.*). Usage: run_libfuzzer.sh WORK_DIR [SECONDS]
# A crash leaves crash-* in WORK_DIR: add it to tests/test_http_request.cpp as a regression case.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"; src="$here/.."
work="$1"; secs="${2:-60}"
command -v clang++ >/dev/null || { echo "clang++ not installed: skipped"; exit 77; }
mkdir -p "$work/corpus"
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -I"$src/tools" \
  "$here/fuzz_http_request.cpp" "$src/tools/http_request.cpp" -o "$work/fuzz_http_request"
# Seeds: a request head (first byte even) and a Range value (first byte odd).
printf '\0GET /run/frames.jsonl HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nRange: bytes=2-11\r\n\r\n' >"$work/corpus/head"
printf '\1bytes=50-10' >"$work/corpus/range"
cd "$work" && ./fuzz_http_request -max_total_time="$secs" -max_len=20000 corpus
