#!/usr/bin/env bash
# Installs every build/test dependency of mmphate from Debian's packages (bookworm).
# Idempotent: packages already present are skipped. Must run as root (or via sudo).
set -euo pipefail

PACKAGES=(
  # build
  cmake make ninja-build g++ ccache pkg-config
  # numeric core: Eigen for dense/sparse algebra, Spectra for the partial
  # eigen-decomposition used by landmarks (Lanczos; a dense SVD of N x N is not affordable)
  libeigen3-dev libspectra-dev
  # LAPACK (OpenBLAS) for the full symmetric spectrum behind the automatic diffusion time
  libopenblas-dev liblapacke-dev
  # exact-to-approximate kNN for large inputs (see docs/ARCHITECTURE.md)
  libnanoflann-dev
  # config, logging
  nlohmann-json3-dev libspdlog-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # torch-facing layer (capture, monitor, training demo)
  libtorch-dev libopenblas0 libgloo-dev dataset-fashion-mnist
  # the demo decompresses the dataset's gzipped IDX files
  zlib1g-dev
  # tests validate emitted frames against docs/frame.schema.json (tools/validate_frames.py)
  python3 python3-jsonschema
  # end-to-end tests of the web viewer: headless Chromium driven through chromedriver by
  # Debian's python3-selenium (tests/browser/); no npm, nothing downloaded at test time
  chromium chromium-driver python3-selenium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
