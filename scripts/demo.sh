#!/usr/bin/env bash
# The main job. Until the live training demo lands, this runs the offline embed CLI on the
# shipped example trace (a 1-layer LSTM-16 trained 8 epochs on sequential Fashion-MNIST,
# 8 epochs x 28 steps x 16 units x 20 probes) and writes runs/example/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/build.sh"
out="${1:-runs/example}"
mkdir -p "$(dirname "$out")"
"$root/build/tools/mmphate" embed "$root/examples/data/lstm16_8epochs_trace.npy" "$out" --threads 0 > /dev/null
echo "demo: embedding written to $out/embedding.npy (node index: $out/nodes.npy, summary: $out/summary.json)"
