#!/usr/bin/env bash
# The main job: builds mmphate and runs the training demo — an LSTM learning sequential
# Fashion-MNIST while the monitor writes live MM-PHATE frames to runs/fashion_mnist/version_<n>/
# under the current directory (about two minutes on 2 cores). Extra arguments go to the demo
# (e.g. --epochs 30 --train-samples 60000 --cell gru; --help lists them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/build.sh"
exec "$root/build/examples/fashion_mnist_monitor" --data "$root/build/data/fashion-mnist" "$@"
