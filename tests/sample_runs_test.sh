#!/usr/bin/env bash
# The recorded runs in tests/data/ against docs/frame.schema.json, and against their generator:
# the committed files must be what make_sample_run.py writes today (they drifted once: the
# generator's old phase words 'fitting'/'rising'/'falling' are not the PhaseDetector's).
# Usage: sample_runs_test.sh VALIDATE_FRAMES_PY DATA_DIR
set -u
validate="$1"; data="$2"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check RUN_NAME GENERATOR_ARGS...
  local name="$1"; shift
  if ! python3 "$validate" "$data/$name" >"$tmp/out" 2>&1 || ! grep -q " 0 error(s)" "$tmp/out"; then
    echo "FAIL $name: not valid against the schema"; cat "$tmp/out"; fail=$((fail + 1))
  fi
  python3 "$data/make_sample_run.py" "$tmp/$name" "$@"
  for f in frames.jsonl node_index.json config.json; do
    if ! cmp -s "$tmp/$name/$f" "$data/$name/$f"; then
      echo "FAIL $name: $f differs from make_sample_run.py $*"; fail=$((fail + 1))
    fi
  done
}
check sample_run --sidecar-above 6
check sample_run_truncated --sidecar-above 6 --truncate
check sample_run_3d --dims 3 --seed 11 --window 3 --epochs 5 --decimals 3
echo "sample runs: $fail failure(s)"
[ "$fail" -eq 0 ]
