#!/usr/bin/env bash
# Installs what deja needs from Debian packages (only what is missing; silent
# when everything is present), then configures and builds into build/.
# Usage: scripts/setup.sh [--no-build]   (run as root on Debian 12)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake make pkg-config libopenblas-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
          libcxxopts-dev doctest-dev libstb-dev zlib1g-dev dataset-fashion-mnist gnuplot-nox)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[[ ${1:-} == --no-build ]] && exit 0
jobs=$(nproc 2>/dev/null || echo 2)
# Configure every time (cheap when nothing changed): a configure that failed
# earlier, e.g. before a package was installed, leaves a cache but no Makefile.
build_type=()
[[ -f build/CMakeCache.txt ]] || build_type=(-DCMAKE_BUILD_TYPE=Release)
cmake -S . -B build "${build_type[@]}" >/dev/null
cmake --build build -j "$jobs" 2>&1 | grep -E "error|warning|Error" || true
# Fail loudly if the build failed (grep above only filters the noise).
cmake --build build -j "$jobs" >/dev/null
