#!/usr/bin/env bash
# Set up, build, and run every test (doctest executables through ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure --timeout 900
