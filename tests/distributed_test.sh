#!/usr/bin/env bash
# Two ranks of examples/ddp_monitor (Gloo over loopback, FileStore rendezvous in a fresh temp
# file), data-parallel training with the monitor on (docs/DISTRIBUTED.md).
# Usage: distributed_test.sh MODE DDP_MONITOR VALIDATE_FRAMES_PY WORK_DIR
#   train        rank 0 writes one valid run, rank 1 nothing; both train every epoch to the same weights
#   early_stop   early stopping on a metric only rank 0 has stops both ranks at the same epoch
#   rank0_exit   rank 0 _exit()s before its on_epoch_end: rank 1 stops at once with a clear error
#   rank0_hang   rank 0 stops answering: rank 1 stops after the monitor's timeout, clear error
set -uo pipefail
mode="$1" bin="$2" validate="$3" work="$4"
rm -rf "$work" && mkdir -p "$work"
store="$(mktemp "$work/filestore.XXXXXX")" && rm -f "$store"  # FileStore creates it
fail() { echo "FAIL ($mode): $*"; for r in 0 1; do echo "--- rank $r:"; cat "$work/rank$r.log" 2>/dev/null; done; exit 1; }

common=(--world 2 --store "$store" --run-root "$work/runs" --epochs 6 --samples 400 --hidden 8 --quiet
        --timeout-s 3)
extra0=() extra1=()
case "$mode" in
  train) ;;
  early_stop)
    # val_loss is computed on rank 0 only: rank 1 can only stop because rank 0 told it to.
    cat > "$work/config.json" <<'EOF'
{"embedding": {"n_landmark": 200},
 "early_stopping": {"enabled": true, "monitor": "val_loss", "stopping_threshold": 50, "start_from_epoch": 3}}
EOF
    common+=(--config "$work/config.json") ;;
  rank0_exit) extra0=(--fault-rank0 exit@2) ;;
  rank0_hang) extra0=(--fault-rank0 hang@2) common+=(--monitor-timeout-ms 1000) ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac

start=$(date +%s.%N)
# `timeout` turns a hang into a failure instead of a stuck CTest (--foreground: a kill reaches
# the rank once, not also through the process group, which would be a second signal).
timeout --foreground 60 "$bin" --rank 0 "${common[@]}" "${extra0[@]}" > "$work/rank0.log" 2>&1 &
pid0=$!
timeout --foreground 60 "$bin" --rank 1 "${common[@]}" "${extra1[@]}" > "$work/rank1.log" 2>&1
rc1=$?
took1=$(echo "$(date +%s.%N) - $start" | bc)
if [ "$mode" = rank0_hang ]; then kill "$pid0" 2>/dev/null; fi  # ours, still asleep
wait "$pid0"
rc0=$?
echo "$mode: rank 0 exit $rc0, rank 1 exit $rc1 after ${took1} s"

runs=$(ls "$work/runs/ddp" 2>/dev/null | tr '\n' ' ')
[ "$runs" = "version_0 " ] || fail "expected exactly one run folder (rank 0's), found: '$runs'"
grep -q "rank 1/2: no run folder on this rank" "$work/rank1.log" || fail "rank 1 did not finish cleanly"
[ "$rc1" = 0 ] || fail "rank 1 exited with $rc1"

case "$mode" in
  train|early_stop)
    [ "$rc0" = 0 ] || fail "rank 0 exited with $rc0"
    sum0=$(grep -o "weights checksum .*" "$work/rank0.log") sum1=$(grep -o "weights checksum .*" "$work/rank1.log")
    [ -n "$sum0" ] && [ "$sum0" = "$sum1" ] || fail "weights differ between ranks: '$sum0' vs '$sum1'"
    events=(--require-event started --require-event finished)
    if [ "$mode" = train ]; then
      grep -q "trained 6 epoch(s)" "$work/rank0.log" && grep -q "trained 6 epoch(s)" "$work/rank1.log" ||
        fail "a rank did not train all 6 epochs"
      ! grep -q "stopped at" "$work/rank0.log" "$work/rank1.log" || fail "a rank stopped early"
    else
      grep -q "rank 0/2: stopped at epoch 3: stopping threshold reached: val_loss" "$work/rank0.log" ||
        fail "rank 0 did not stop at epoch 3"
      grep -q "rank 1/2: stopped at epoch 3: rank 0 decided to stop at epoch 3" "$work/rank1.log" ||
        fail "rank 1 did not stop at rank 0's epoch"
      events+=(--require-event early_stop)
    fi
    python3 "$validate" "$work/runs/ddp/version_0" --min-frames 1 "${events[@]}" || fail "rank 0's run is not valid"
    ;;
  rank0_exit|rank0_hang)
    if [ "$mode" = rank0_exit ]; then
      [ "$rc0" = 7 ] || fail "rank 0 should have _exit(7)ed, exit $rc0"
      want="stopped at epoch 2: monitor (rank 1 of 2): the stop decision's collective failed at epoch 2: the gloo broadcast failed: "
      limit=15
    else
      want="stopped at epoch 2: monitor (rank 1 of 2): the stop decision's collective failed at epoch 2: rank 0's decision did not arrive within 1000 ms"
      limit=20  # the monitor's 1 s, then the exit waits for Gloo's own 3 s timeout of the broadcast in flight
    fi
    grep -qF "rank 1/2: $want" "$work/rank1.log" || fail "rank 1 did not stop with the expected reason"
    [ "$(grep -c "collective failed" "$work/rank1.log")" = 2 ] || fail "expected one error log line and one stop line"
    (( $(echo "$took1 < $limit" | bc) )) || fail "rank 1 took ${took1} s (limit $limit s)"
    # What rank 0 wrote before it died is whole, valid lines; killed while hung, it still
    # finishes its run (SIGTERM path).
    events=(--require-event started)
    [ "$mode" = rank0_hang ] && events+=(--require-event finished)
    python3 "$validate" "$work/runs/ddp/version_0" --min-frames 0 "${events[@]}" || fail "rank 0's run is not valid"
    ;;
esac
echo "PASS ($mode)"
