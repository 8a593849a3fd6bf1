#!/usr/bin/env bash
# Training slowdown with the monitor on vs off: the demo (same seed, same data, same flags)
# run alternately with and without the monitor, PAIRS times each; prints each run's training
# wall time and the median ratio as one JSON line. Extra arguments go to the demo.
#   bench/bench_monitor_slowdown.sh [PAIRS] [demo flags...]     (default: 2 pairs, demo defaults)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
demo="${MMPHATE_BUILD_DIR:-$root/build}/examples/fashion_mnist_monitor"
pairs="${1:-2}"
shift || true
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
on=() off=()
run() {  # prints the training seconds of one run
  (cd "$work" && "$demo" --data "$root/build/data/fashion-mnist" --quiet "$@") | sed -n 's/^training took \([0-9.]*\) s$/\1/p'
}
for ((i = 0; i < pairs; i++)); do
  if ((i % 2 == 0)); then
    off+=("$(run --no-monitor "$@")"); on+=("$(run "$@")")
  else
    on+=("$(run "$@")"); off+=("$(run --no-monitor "$@")")
  fi
  echo "pair $i: off ${off[-1]} s, on ${on[-1]} s" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m_on="$(median "${on[@]}")"; m_off="$(median "${off[@]}")"
printf '{"pairs": %d, "off_s": [%s], "on_s": [%s], "median_off_s": %s, "median_on_s": %s, "ratio": %s, "threads_nproc": %d}\n' \
  "$pairs" "$(IFS=,; echo "${off[*]}")" "$(IFS=,; echo "${on[*]}")" "$m_off" "$m_on" \
  "$(awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "%.4f", a / b}')" "$(nproc)"
