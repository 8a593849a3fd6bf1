#!/usr/bin/env bash
# Training slowdown with the monitor on vs off: the demo (same seed, same data, same flags)
# run alternately with and without the monitor, PAIRS times each; prints each run's training
# wall time and its training thread's CPU time, the frames the monitored run wrote, the median of the per-pair ratios (robust to
# the host's drift between pairs) and the ratio of the medians, as one JSON line. Extra
# arguments go to the demo.
#   bench/bench_monitor_slowdown.sh [PAIRS] [demo flags...]     (default: 2 pairs, demo defaults)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
demo="${MMPHATE_BUILD_DIR:-$root/build}/examples/fashion_mnist_monitor"
pairs="${1:-2}"
shift || true
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
on=() off=() ratios=() cpu_ratios=() frames=()
run() {  # prints "<training seconds> <training thread cpu seconds> <frames>" of one run
  (cd "$work" && "$demo" --data "$root/build/data/fashion-mnist" --quiet "$@") |
    awk '/^training took/ {t = $3} /^training thread cpu/ {c = $4} /^mmphate: [0-9]+ frames/ {f = $2}
         END {print t, c, f + 0}'
}
for ((i = 0; i < pairs; i++)); do
  if ((i % 2 == 0)); then
    read -r t_off c_off _ < <(run --no-monitor "$@"); read -r t_on c_on n_frames < <(run "$@")
  else
    read -r t_on c_on n_frames < <(run "$@"); read -r t_off c_off _ < <(run --no-monitor "$@")
  fi
  off+=("$t_off"); on+=("$t_on"); frames+=("$n_frames")
  ratios+=("$(awk -v a="$t_on" -v b="$t_off" 'BEGIN {printf "%.4f", a / b}')")
  cpu_ratios+=("$(awk -v a="$c_on" -v b="$c_off" 'BEGIN {printf "%.4f", a / b}')")
  echo "pair $i: off $t_off s (cpu $c_off), on $t_on s (cpu $c_on, $n_frames frames), ratio ${ratios[-1]}, cpu ratio ${cpu_ratios[-1]}" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m_on="$(median "${on[@]}")"; m_off="$(median "${off[@]}")"
printf '{"pairs": %d, "off_s": [%s], "on_s": [%s], "frames": [%s], "pair_ratios": [%s], "median_pair_ratio": %s, "pair_cpu_ratios": [%s], "median_pair_cpu_ratio": %s, "median_off_s": %s, "median_on_s": %s, "ratio_of_medians": %s, "threads_nproc": %d}\n' \
  "$pairs" "$(IFS=,; echo "${off[*]}")" "$(IFS=,; echo "${on[*]}")" "$(IFS=,; echo "${frames[*]}")" \
  "$(IFS=,; echo "${ratios[*]}")" "$(median "${ratios[@]}")" "$(IFS=,; echo "${cpu_ratios[*]}")" \
  "$(median "${cpu_ratios[@]}")" "$m_off" "$m_on" \
  "$(awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "%.4f", a / b}')" "$(nproc)"
