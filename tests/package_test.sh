#!/usr/bin/env bash
# The CMake package from a user's side (CTest `package.consumer`, label `package`):
#  1. cmake --install the build tree into a prefix inside it, check the tree (headers, libraries,
#     config files without paths into the source or build tree, CLI, viewer, configs);
#  2. configure examples/consumer against it (-DCMAKE_PREFIX_PATH), build it and run it:
#     consumer_core always, consumer_torch (2 monitored epochs, frames validated) with torch;
#     the consumer's own code must not inherit -march=native, and must get Eigen's alignment pin;
#  3. the installed CLI's `serve` finds the installed viewer;
#  4. examples/consumer configured with mmphate as a subproject (add_subdirectory, configure
#     only): no tests, benchmarks or install rules, no ccache launcher, no -march=native for
#     the parent's code, mmphate::torch usable from the parent.
# Usage: package_test.sh BUILD_DIR WORK_DIR SOURCE_DIR HAVE_TORCH(ON|OFF) NATIVE(ON|OFF) GENERATOR CXX
set -euo pipefail
build=$1 work=$2 src=$3 have_torch=$4 native=$5 generator=$6 cxx=$7
prefix=$work/prefix
is_on() { case "${1^^}" in ON|1|TRUE|YES|Y) return 0 ;; *) return 1 ;; esac; }
fail() { echo "package_test: FAIL: $*" >&2; exit 1; }
t0=$SECONDS
phase() { echo "== [$((SECONDS - t0)) s] $*"; }
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

rm -rf "$work"
mkdir -p "$work"

phase "install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
expect=(include/mmphate/mmphate.hpp include/mmphate/phate.hpp include/mmphate/monitor/monitor.hpp
        include/mmphate/snapshot_store.hpp lib/libmmphate_base.a lib/libmmphate_engine.a lib/libmmphate_store.a
        lib/libmmphate_monitor.a
        lib/cmake/mmphate/mmphateConfig.cmake lib/cmake/mmphate/mmphateConfigVersion.cmake
        lib/cmake/mmphate/mmphateCoreTargets.cmake bin/mmphate share/mmphate/viewer/index.html
        share/mmphate/configs/monitor_default.json)
torch_files=(include/mmphate/torch.hpp include/mmphate/torch/recorder.hpp include/mmphate/torch/monitor_attach.hpp
             include/mmphate/torch/tapped_rnn.hpp lib/libmmphate_torch.a lib/cmake/mmphate/mmphateTorchTargets.cmake)
for f in "${expect[@]}"; do [ -e "$prefix/$f" ] || fail "missing $f in the install tree"; done
# Only public headers are installed: the private ones live in plugin/src/ (docs/ARCHITECTURE.md).
for f in include/mmphate/knn.hpp include/mmphate/parallel.hpp include/mmphate/engine include/mmphate/util; do
  [ ! -e "$prefix/$f" ] || fail "$f (private) installed"
done
for f in "${torch_files[@]}"; do
  if is_on "$have_torch"; then [ -e "$prefix/$f" ] || fail "missing $f in the install tree";
  else [ ! -e "$prefix/$f" ] || fail "$f installed although the torch layer was not built"; fi
done
# Relocatable: nothing in the package points back into the source or build tree.
if grep -rn -F -e "$src" -e "$build" "$prefix/lib/cmake/mmphate"; then
  fail "the installed CMake files name the source or build tree"
fi
(cd "$prefix" && find . -type f ! -path './share/mmphate/viewer/*' | sort) >"$work/install-tree.txt"
echo "installed $(wc -l <"$work/install-tree.txt") files (+ viewer); listing in $work/install-tree.txt"

phase "configure examples/consumer against the prefix"
consumer=$work/consumer
cmake -S "$src/examples/consumer" -B "$consumer" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_COMPILER="$cxx" "${launcher[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
      -DCONSUMER_WITH_TORCH="$have_torch" >"$work/consumer-configure.log" ||
  { cat "$work/consumer-configure.log"; fail "the consumer does not configure"; }
grep -q "mmphate_DIR:PATH=$prefix/lib/cmake/mmphate" "$consumer/CMakeCache.txt" ||
  fail "the consumer found another mmphate: $(grep mmphate_DIR "$consumer/CMakeCache.txt")"

phase "build the consumer"
cmake --build "$consumer" --parallel "${MMPHATE_PACKAGE_TEST_JOBS:-1}" >"$work/consumer-build.log" ||
  { cat "$work/consumer-build.log"; fail "the consumer does not build"; }
python3 - "$consumer/compile_commands.json" "$prefix" "$src" <<'PY' || fail "consumer compile flags"
import json, sys
cmds, prefix, src = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
for c in cmds:
    line = c["command"]
    assert "-march=native" not in line, "mmphate's -march=native reached the consumer: " + line
    assert "-DEIGEN_MAX_ALIGN_BYTES=64" in line, "no Eigen alignment pin on the consumer: " + line
    assert prefix + "/include" in line, "the installed headers are not used: " + line
    assert src + "/plugin" not in line, "the source tree's headers are used: " + line
print("consumer flags ok:", len(cmds), "files")
PY

phase "run consumer_core"
"$consumer/consumer_core" | tee "$work/consumer_core.out"
grep -q '^embedding 360 x 2' "$work/consumer_core.out" || fail "consumer_core output"
if is_on "$have_torch"; then
  [ -x "$consumer/consumer_torch" ] || fail "consumer_torch was not built although mmphate::torch is installed"
  phase "run consumer_torch (installed monitor_default.json)"
  "$consumer/consumer_torch" "$work/run" "$prefix/share/mmphate/configs/monitor_default.json" |
    tee "$work/consumer_torch.out"
  python3 "$src/tools/validate_frames.py" "$work/run" --min-frames 1 --require-event started \
          --require-event finished
fi

phase "installed CLI: serve finds the installed viewer"
"$prefix/bin/mmphate" phate --help >/dev/null
"$prefix/bin/mmphate" serve "$src/tests/data/sample_run" --port 0 >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^http://' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(head -n1 "$work/serve.out")
[ -n "$url" ] || { cat "$work/serve.err"; fail "serve printed no address"; }
grep -qF "viewer $(cd "$prefix/share/mmphate/viewer" && pwd -P)" "$work/serve.err" ||
  { cat "$work/serve.err"; fail "serve does not use the installed viewer"; }
python3 -c 'import sys, urllib.request; r = urllib.request.urlopen(sys.argv[1] + "viewer/index.html", timeout=10); assert r.status == 200 and b"<html" in r.read().lower()' "$url" ||
  fail "GET /viewer/index.html"
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
trap - EXIT
echo "serve: $url with the installed viewer"

phase "subproject: configure examples/consumer with add_subdirectory(mmphate)"
sub=$work/subproject
cmake -S "$src/examples/consumer" -B "$sub" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_COMPILER="$cxx" -DMMPHATE_SOURCE_DIR="$src" -DCONSUMER_WITH_TORCH="$have_torch" \
      -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$work/subproject-configure.log" ||
  { cat "$work/subproject-configure.log"; fail "mmphate does not configure as a subproject"; }
for v in MMPHATE_BUILD_TESTS MMPHATE_BUILD_BENCH MMPHATE_BUILD_EXAMPLES MMPHATE_INSTALL; do
  grep -q "^$v:BOOL=OFF" "$sub/CMakeCache.txt" || fail "$v is not OFF in a subproject"
done
python3 - "$sub/compile_commands.json" "$native" "$have_torch" <<'PY' || fail "subproject compile flags"
import json, sys
cmds = json.load(open(sys.argv[1]))
native, torch = (a.upper() in ("ON", "1", "TRUE", "YES", "Y") for a in sys.argv[2:4])
files = {c["file"].rsplit("/", 1)[-1]: c["command"] for c in cmds}
assert "test_parity.cpp" not in files and "bench_engine.cpp" not in files, "tests or benchmarks in a subproject"
assert "-march=native" not in files["core_main.cpp"], "-march=native reached the parent project"
assert "-Wextra" not in files["core_main.cpp"], "mmphate's warnings reached the parent"
assert ("-march=native" in files["phate.cpp"]) == native, "MMPHATE_NATIVE not applied to mmphate's own code"
if torch:  # LibTorch's targets must be usable from the parent (root CMakeLists.txt: GLOBAL)
    assert "-march=native" not in files["torch_main.cpp"], "-march=native reached the parent project"
    assert "torch/csrc/api/include" in files["torch_main.cpp"], "no LibTorch include path for the parent"
print("subproject flags ok:", len(cmds), "files")
PY
# The launcher is in the generated build rules, not in compile_commands.json.
if grep -rl ccache "$sub" --include='*.ninja' --include=build.make; then
  fail "mmphate set a compiler launcher (ccache) as a subproject"
fi
phase "package test passed"
