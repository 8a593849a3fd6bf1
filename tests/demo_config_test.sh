#!/usr/bin/env bash
# The demo with --config plus explicit flags: the command line wins (the config file says
# runs/mmphate, 1000 landmarks by default, max_cpu_share unset) and the demo says where each
# value came from. Usage: demo_config_test.sh DEMO_BINARY DATA_DIR CONFIG_JSON WORK_DIR
set -u
demo="$1"; data="$2"; config="$3"; work="$4"
rm -rf "$work"; mkdir -p "$work/cwd"
fail=0
(cd "$work/cwd" && "$demo" --config "$config" --run-root "$work/X" --run-name Y --epochs 1 --train-samples 500 \
   --hidden 8 --landmarks 300 --monitor-share 0.5 --data "$data" --quiet) >"$work/out" 2>"$work/err"; rc=$?
run="$work/X/Y/version_0"
[ "$rc" -eq 0 ] || { echo "FAIL demo exited $rc"; cat "$work/out" "$work/err"; fail=1; }
[ -s "$run/frames.jsonl" ] || { echo "FAIL no frames under --run-root/--run-name ($run)"; find "$work" -maxdepth 4; fail=1; }
[ ! -e "$work/cwd/runs" ] || { echo "FAIL the config's run.root was used: $(find "$work/cwd/runs" -maxdepth 2)"; fail=1; }
for want in "run.root = $work/X (--run-root)" "run.name = Y (--run-name)" "updater.max_cpu_share = 0.5 (--monitor-share)" \
            "embedding.n_landmark = 300 (--landmarks)"; do
  grep -qF "$want" "$work/out" || { echo "FAIL the demo did not report: $want"; cat "$work/out"; fail=1; }
done
python3 - "$run/config.json" <<'PY' || fail=1
import json, sys
c = json.load(open(sys.argv[1]))
got = (c["run"]["name"], c["updater"]["max_cpu_share"], c["embedding"]["n_landmark"])
if got != ("Y", 0.5, 300):
    print("FAIL run config.json holds run.name, max_cpu_share, n_landmark =", got); sys.exit(1)
PY
# Without the flags, the config's values are used and named as such.
(cd "$work/cwd" && "$demo" --config "$config" --run-root "$work/X" --run-name Z --epochs 1 --train-samples 500 \
   --hidden 8 --data "$data" --quiet) >"$work/out2" 2>"$work/err2" || { echo "FAIL second run"; cat "$work/err2"; fail=1; }
for key in updater.max_cpu_share embedding.n_landmark; do
  grep -oE "$key = [^ ,]+ \([^)]*\)" "$work/out2" | grep -qF "(--config $config)" ||
    { echo "FAIL the demo did not report $key as from $config"; cat "$work/out2"; fail=1; }
done
# A config's run.path (which outranks root/name) gives way to explicit --run-root/--run-name.
echo "{\"run\": {\"path\": \"$work/from_config\"}}" >"$work/path.json"
(cd "$work/cwd" && "$demo" --config "$work/path.json" --run-root "$work/X" --run-name W --epochs 1 --train-samples 500 \
   --hidden 8 --data "$data" --quiet) >"$work/out3" 2>"$work/err3" || { echo "FAIL third run"; cat "$work/err3"; fail=1; }
[ -s "$work/X/W/version_0/frames.jsonl" ] && [ ! -e "$work/from_config" ] && grep -qF "run.path '$work/from_config'" "$work/out3" ||
  { echo "FAIL run.path from the config was not replaced by --run-root/--run-name"; cat "$work/out3"; fail=1; }
echo "demo flags over --config: $([ "$fail" -eq 0 ] && echo passed || echo FAILED)"
[ "$fail" -eq 0 ]
