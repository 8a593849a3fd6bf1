#!/usr/bin/env bash
# Crash consistency of a monitored run (docs/RELIABILITY.md). A monitored "training"
# (monitor_run_driver: a recorded LSTM trace pushed at a fixed pace through a default-config
# Monitor with saved snapshots) is
#  - killed with SIGKILL at several points: every line of frames.jsonl must be complete and
#    valid against the schema, every frame's coordinates readable, `mmphate render` must work,
#    and the saved snapshots must resume and hold every epoch pushed more than BOUND seconds
#    before the kill (2 s: milliseconds in practice, slack for a loaded machine);
#  - sent SIGTERM: the process must end as SIGTERM ends it (status 143), within the shutdown
#    timeout, after writing a `finished` event naming the signal and a frame of the newest
#    epoch pushed before the signal;
#  - sent SIGINT twice: the second one ends it at once (status 130).
# Usage: crash_consistency_test.sh DRIVER MMPHATE VALIDATOR TRACE WORKDIR
set -euo pipefail
driver=$1 mmphate=$2 validate=$3 trace=$4 work=$5
bound=2.0  # seconds; the saver writes within milliseconds, the slack is for a loaded CI machine
rm -rf "$work"
mkdir -p "$work"
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.check "$work"/*.err; do [ -f "$f" ] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done
  exit 1
}

# start NAME EPOCHS INTERVAL_MS: runs the driver in the background; sets $pid. (A background
# job of a non-interactive shell starts with SIGINT ignored; a training program started from a
# terminal has it at its default, so that is restored.)
start() {
  env --default-signal=INT "$driver" run "$work/$1" "$trace" "$2" "$3" 60000 > "$work/$1.log" 2> "$work/$1.err" &
  pid=$!
}

# The run folder as a user reads it back.
check_folder() {
  local name=$1 dir=$work/$1
  python3 "$validate" "$dir" --min-frames 0 --require-event started > "$work/$name.validate" 2>&1 ||
    { cat "$work/$name.validate" >&2; fail "$name: frames.jsonl has an invalid line"; }
  "$driver" check "$dir" > "$work/$name.check" || fail "$name: the run folder does not read back"
  if [ "$(awk '/^frames/ {print $2}' "$work/$name.check")" -gt 0 ]; then
    "$mmphate" render "$dir" "$work/$name.render" --frames all --quiet || fail "$name: render failed"
  fi
}

for at in 0.7 2.0 3.5 5.0; do
  name=kill_$at
  start "$name" 60 120
  sleep "$at"
  kill_time=$(date +%s.%N)
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  check_folder "$name"
  # Every epoch pushed BOUND seconds before the kill is among the saved snapshots.
  python3 - "$work/$name.log" "$work/$name.check" "$kill_time" "$bound" <<'PY' || fail "$name: snapshots lost"
import sys
log, check, kill_time, bound = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
pushed = [int(l.split()[1]) for l in open(log) if l.startswith("pushed") and float(l.split()[2]) <= kill_time - bound]
line = [l for l in open(check) if l.startswith("snapshots")][0].split()
saved = set(int(x) for x in line[1].split(",")) if len(line) > 1 else set()
# The store keeps a bounded window: only the epochs it still holds can be asked for.
expected = [e for e in pushed if not saved or e >= min(saved)] if saved else pushed
missing = [e for e in expected if e not in saved]
print(f"pushed {len(pushed)} epochs >= {bound} s before the kill, saved {sorted(saved)[:3]}..{sorted(saved)[-3:] if saved else []}")
sys.exit(1 if missing else 0)
PY
done

# SIGTERM: pending frames written, a finished event naming the signal, then the usual exit.
name=sigterm
start "$name" 400 120  # long enough that training cannot end on its own during the flush
sleep 3
last_pushed=$(awk '/^pushed/ {e=$2} END {print e}' "$work/$name.log")
t0=$(date +%s.%N)
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
t1=$(date +%s.%N)
[ "$status" -eq 143 ] || fail "sigterm: exit status $status, expected 143 (ended by SIGTERM)"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 75 else 1)" || fail "sigterm: took longer than the shutdown timeout (60 s)"
check_folder "$name"
grep -q '^finished SIGTERM' "$work/$name.check" || { cat "$work/$name.check"; fail "sigterm: no finished event naming SIGTERM"; }
last_framed=$(awk '/^last_embedding_epoch/ {print $2}' "$work/$name.check")
[ "$last_framed" -ge "$last_pushed" ] ||
  fail "sigterm: newest frame of epoch $last_framed, but epoch $last_pushed was pushed before the signal"
echo "sigterm: exit 143 after $(python3 -c "print(round($t1 - $t0, 2))") s, newest frame epoch $last_framed (pushed before the signal: $last_pushed)"

# SIGINT twice: the second one does not wait for the flush.
name=sigint_twice
start "$name" 60 120
sleep 2
kill -INT "$pid"
sleep 0.05
kill -INT "$pid" 2>/dev/null || true
status=0
wait "$pid" || status=$?
[ "$status" -eq 130 ] || fail "sigint twice: exit status $status, expected 130 (ended by SIGINT)"
python3 "$validate" "$work/$name" --min-frames 0 > /dev/null || fail "sigint twice: invalid frames.jsonl"
echo "crash consistency: all checks passed"
