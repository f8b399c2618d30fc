#!/usr/bin/env bash
# Error of the reuse product against r_c, per hash family and conv layer, on
# real Fashion-MNIST activations through CifarNet (one batch of 128):
# writes experiments/results/reuse_sweep/{reuse_sweep.csv, <layer>_L<L>.png}.
# Usage: experiments/reuse_sweep.sh [build-dir]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
out=experiments/results/reuse_sweep
mkdir -p "$out"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$build/bin/reuse_sweep" \
  --config configs/cifarnet.json --out "$out/reuse_sweep.csv" 2> "$out/reuse_sweep.log"
for layer in $(tail -n +2 "$out/reuse_sweep.csv" | cut -d, -f2 | sort -u); do
  for L in $(tail -n +2 "$out/reuse_sweep.csv" | awk -F, -v l="$layer" '$2 == l {print $3}' | sort -un); do
    plots=()
    for family in sign qproj signnorm pca; do
      data="$out/.${layer}_${L}_${family}.dat"
      awk -F, -v l="$layer" -v L="$L" -v f="$family" '$2 == l && $3 == L && $1 == f {print $6, $7}' \
        "$out/reuse_sweep.csv" | sort -g > "$data"
      if [ -s "$data" ]; then plots+=("\"$data\" with linespoints title \"$family\""); fi
    done
    plot_list=$(IFS=,; echo "${plots[*]}")
    gnuplot <<GP
set terminal pngcairo size 800,560 noenhanced
set output "$out/${layer}_L${L}.png"
set title "CifarNet ${layer}, L = ${L}: relative error of Y vs remaining ratio (H, width vary)"
set xlabel "r_c (product clusters / sub-vectors)"
set ylabel "||Y - Y_dense|| / ||Y_dense||"
set logscale x
set key top right
set grid
plot ${plot_list}
GP
    rm -f "$out"/.${layer}_${L}_*.dat
  done
done
echo "wrote $out"
