#!/usr/bin/env bash
# Training slowdown of a README-style user program (bench/readme_loop.cpp: a 2-layer char-LSTM
# LM, default-config Monitors, none of the demo's process tuning) with 0, 1 and 2 monitors.
# Each round runs the three in a rotating order; prints each run's training wall and CPU time,
# then the median over rounds of the per-round ratios (1 monitor / none, 2 / none), one JSON line.
#   bench/bench_readme_slowdown.sh [ROUNDS] [readme_loop flags...]    (default 3 rounds)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
prog="${MMPHATE_BUILD_DIR:-$root/build}/bench/readme_loop"
rounds="${1:-3}"
shift || true
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
r1=() r2=() c1=() c2=()
run() {  # prints "<training seconds> <training thread cpu seconds> <frames>"
  "$prog" --runs "$work/runs" "$@" 2>/dev/null |
    awk '/^training took/ {t = $3} /^training thread cpu/ {c = $4} /^frames/ {f = $2} END {print t, c, f + 0}'
}
for ((i = 0; i < rounds; i++)); do
  declare -A t c f
  order=(0 1 2)
  for ((k = 0; k < i % 3; k++)); do order=("${order[@]:1}" "${order[0]}"); done
  for m in "${order[@]}"; do read -r t[$m] c[$m] f[$m] < <(run --monitors "$m" "$@"); done
  r1+=("$(awk -v a="${t[1]}" -v b="${t[0]}" 'BEGIN {printf "%.4f", a / b}')")
  r2+=("$(awk -v a="${t[2]}" -v b="${t[0]}" 'BEGIN {printf "%.4f", a / b}')")
  c1+=("$(awk -v a="${c[1]}" -v b="${c[0]}" 'BEGIN {printf "%.4f", a / b}')")
  c2+=("$(awk -v a="${c[2]}" -v b="${c[0]}" 'BEGIN {printf "%.4f", a / b}')")
  echo "round $i: none ${t[0]} s (cpu ${c[0]}), 1 monitor ${t[1]} s (cpu ${c[1]}, ${f[1]} frames), 2 monitors ${t[2]} s (cpu ${c[2]}, ${f[2]} frames); ratios ${r1[-1]}, ${r2[-1]}" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
printf '{"rounds": %d, "ratio_1": [%s], "ratio_2": [%s], "median_ratio_1": %s, "median_ratio_2": %s, "median_cpu_ratio_1": %s, "median_cpu_ratio_2": %s, "nproc": %d}\n' \
  "$rounds" "$(IFS=,; echo "${r1[*]}")" "$(IFS=,; echo "${r2[*]}")" "$(median "${r1[@]}")" "$(median "${r2[@]}")" \
  "$(median "${c1[@]}")" "$(median "${c2[@]}")" "$(nproc)"
