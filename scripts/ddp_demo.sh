#!/usr/bin/env bash
# Data-parallel training with the monitor on (docs/DISTRIBUTED.md): N ranks of
# examples/ddp_monitor on this machine, Gloo over the loopback interface, rendezvous through a
# FileStore in a fresh temporary file. Rank 0 writes <run-root>/ddp/version_<n>/ (default
# runs/); the other ranks write nothing and stop when rank 0 stops.
# Usage: scripts/ddp_demo.sh [--world N] [--build DIR] [ddp_monitor flags ...]
#   e.g. scripts/ddp_demo.sh --epochs 20 --early-stop
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build"
world=2
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --world) world="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
bin="$build/examples/ddp_monitor"
[ -x "$bin" ] || { echo "ddp_demo: $bin not found: build it first (ninja -C $build ddp_monitor)"; exit 2; }
[[ "$world" =~ ^[1-9][0-9]*$ ]] || { echo "ddp_demo: --world must be a positive integer, got '$world'"; exit 2; }

store="$(mktemp -u "${TMPDIR:-/tmp}/mmphate_ddp_store.XXXXXX")"  # FileStore creates it
pids=()
# Ctrl-C or SIGTERM: one SIGTERM to each rank this script started (background ranks ignore the
# terminal's SIGINT), then wait: rank 0 writes its pending frames and `finished` first.
stop_ranks() {
  echo "ddp_demo: stopping the ranks"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait
  exit 130
}
trap 'rm -f "$store"' EXIT
trap stop_ranks INT TERM

echo "ddp_demo: $world rank(s), FileStore $store"
for ((r = 0; r < world; ++r)); do
  RANK=$r WORLD_SIZE=$world "$bin" --store "$store" "${args[@]}" &
  pids+=($!)
done
status=0
for ((r = 0; r < world; ++r)); do
  wait "${pids[$r]}"
  rc=$?
  [ "$rc" = 0 ] || { echo "ddp_demo: rank $r exited with status $rc"; status=1; }
done
pids=()
[ "$status" = 0 ] && echo "ddp_demo: every rank finished; rank 0's run: see 'run written to' above" \
  "(check it: python3 $root/tools/validate_frames.py RUN_DIR; view it: mmphate serve RUN_DIR)"
exit "$status"
