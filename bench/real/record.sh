#!/usr/bin/env bash
# Records the suite of real training runs that bench_live replays (README.md beside this
# file): builds the recorder, trains each network on its task and caches its hidden-state
# traces in bench/real/cache/<run>/ (trace.npy, labels.npy, meta.json). A run already cached
# is kept; --force records again. About 5 minutes on 2 cores.
# Usage: bench/real/record.sh [--force] [--only NAME[,NAME]] [--epochs-scale X]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${MMPHATE_BUILD_DIR:-$root/build}"
cache="${MMPHATE_REAL_RUNS:-$root/bench/real/cache}"
force=0
args=()
only_runs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --only) shift; IFS=, read -r -a only_runs <<< "$1" ;;
    *) args+=("$1") ;;
  esac
  shift
done
"$root/scripts/build.sh" "$build" >/dev/null
cmake --build "$build" --target record_real_runs >/dev/null
runs=(lstm32_fmnist gru32_fmnist rnn32_fmnist bilstm16_fmnist charlm_lstm2x48_l0 hopf_ramp)
# --only: those runs (lstm256_fmnist, the 256-unit layer of the scale benchmarks, is only
# recorded when named: ~11 minutes).
if [ ${#only_runs[@]} -gt 0 ]; then runs=("${only_runs[@]}"); fi
todo=()
for r in "${runs[@]}"; do
  if [ "$force" = 1 ] || [ ! -f "$cache/$r/trace.npy" ]; then todo+=("$r"); fi
done
if [ ${#todo[@]} -eq 0 ]; then echo "record: every run is cached in $cache"; exit 0; fi
only=$(IFS=,; echo "${todo[*]}")
"$build/bench/record_real_runs" --out "$cache" --data "$build/data/fashion-mnist" --only "$only" ${args[@]+"${args[@]}"}
