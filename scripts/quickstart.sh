#!/usr/bin/env bash
# Set up, build, and train the default model (CifarNet) on the default data
# (Fashion-MNIST from Debian's dataset-fashion-mnist package) for one epoch.
# Extra arguments go to train, e.g.: scripts/quickstart.sh --epochs 3
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec build/bin/train --config configs/cifarnet.json --out runs/quickstart --epochs 1 "$@"
