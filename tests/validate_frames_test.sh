#!/usr/bin/env bash
# tools/validate_frames.py on hostile lines: each is reported as an invalid line with a
# non-zero exit, never a Python traceback (a NaN literal used to end in a KeyError).
# Usage: validate_frames_test.sh VALIDATE_FRAMES_PY SAMPLE_RUN_DIR
set -u
validate="$1"; sample="$2"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail=0; passed=0
started="$(head -n 1 "$sample/frames.jsonl")"  # a schema-valid 'started' event

check() {  # check NAME WANT_RC PATTERN LINE...: a run whose frames.jsonl is the started event + LINEs
  local name="$1" rc_want="$2" pattern="$3"; shift 3
  rm -rf "$tmp/run"; mkdir -p "$tmp/run"
  { printf '%s\n' "$started"; for l in "$@"; do printf '%s\n' "$l"; done; } >"$tmp/run/frames.jsonl"
  python3 "$validate" "$tmp/run" --min-frames 0 >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" -ne "$rc_want" ] || grep -q Traceback "$tmp/err" || ! grep -q -- "$pattern" "$tmp/out"; then
    echo "FAIL $name: rc=$rc (want $rc_want)"; cat "$tmp/out" "$tmp/err"; fail=$((fail + 1))
  else
    passed=$((passed + 1))
  fi
}

check valid 0 "0 error(s)"
check nan-literal 1 "line 2: not JSON: NaN literal" '{"schema_version":1,"type":"embedding","frame":1,"epoch":0,"loss":NaN}'
check infinity-literal 1 "line 2: not JSON: -Infinity literal" '{"schema_version":1,"type":"event","frame":1,"x":-Infinity}'
check missing-keys 1 "line 2:" '{"schema_version":1,"type":"embedding","frame":1}'
check not-an-object 1 "line 2: expected a JSON object" '[1, 2, 3]'
check frame-not-a-number 1 "line 2:" '{"schema_version":1,"type":"embedding","frame":"one"}'
check bad-utf8 1 "line 2: not JSON" $'{"frame": "\xff"}'
mkdir -p "$tmp/empty"
python3 "$validate" "$tmp/empty" >"$tmp/out" 2>"$tmp/err"
if [ $? -ne 0 ] && ! grep -q Traceback "$tmp/err" && grep -q "cannot read frames.jsonl" "$tmp/out"; then
  passed=$((passed + 1)); else echo "FAIL missing frames.jsonl"; cat "$tmp/out" "$tmp/err"; fail=$((fail + 1)); fi

echo "validate_frames: $passed passed, $fail failed"
[ "$fail" -eq 0 ]
