#!/usr/bin/env bash
# The monitor's cost to a README-style training loop measured inside one run, where the host's
# drift (identical runs minutes apart differ by 10-30 % on shared VMs) cancels out.
# bench/readme_loop (default config, a frame every epoch) times each batch and tags it busy
# when the process's other threads (the updaters) ran for half of it or more, idle when under
# 5 %. Per epoch: busy / idle mean batch time (the updater's concurrent cost) and the share of
# the epoch's batches that were busy; the on_epoch_end calls (the probe pass and the push, on the
# training thread) are timed apart. Estimated slowdown of the run:
#   ratio = 1 + median over epochs of (busy / idle - 1) x busy share + median hook / epoch time.
# It misses what outlasts a batch, e.g. a heap the monitor fragments; bench_readme_slowdown.sh
# measures whole runs against each other and catches that, at the host's noise.
#   bench/bench_readme_interference.sh [MONITORS] [readme_loop flags...]   (default 1, 15 epochs)
# Prints one JSON line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
prog="${MMPHATE_BUILD_DIR:-$root/build}/bench/readme_loop"
monitors="${1:-1}"
shift || true
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$prog" --runs "$work/runs" --monitors "$monitors" --epochs 15 "$@" 2>/dev/null > "$work/out.txt"
python3 - "$work/out.txt" "$monitors" <<'EOF'
import json, statistics, sys
rows = []
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[0] == "epoch":
        rows.append({"epoch": int(f[1]), **dict(zip(f[2::2], map(float, f[3::2])))})
per_epoch = []
for r in rows[1:]:  # epoch 0: nothing to embed yet
    if r["busy_n"] >= 5 and r["idle_n"] >= 5:
        share = r["busy_n"] / (r["busy_n"] + r["idle_n"])
        per_epoch.append({"ratio": r["busy_batch"] / r["idle_batch"], "share": share,
                          "cost": (r["busy_batch"] / r["idle_batch"] - 1) * share})
if not per_epoch:
    sys.exit("bench_readme_interference: no epoch with both busy and idle batches")
hook = statistics.median(r["hook"] for r in rows[1:])
epoch_s = statistics.median(r["wall"] for r in rows[1:])
concurrent = statistics.median(p["cost"] for p in per_epoch)
print(json.dumps({"monitors": int(sys.argv[2]), "epochs": len(per_epoch),
                  "busy_over_idle_batch": round(statistics.median(p["ratio"] for p in per_epoch), 4),
                  "busy_share": round(statistics.median(p["share"] for p in per_epoch), 3),
                  "concurrent_cost": round(concurrent, 4), "hook_s": round(hook, 4), "epoch_s": round(epoch_s, 3),
                  "estimated_ratio": round(1 + concurrent + hook / epoch_s, 4),
                  "per_epoch_busy_over_idle": [round(p["ratio"], 3) for p in per_epoch]}))
EOF
