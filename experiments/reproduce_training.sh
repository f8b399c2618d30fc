#!/usr/bin/env bash
# Reproduces the adaptive-deep-reuse training-time experiment: for each network
# trains the dense config (configs/<net>.json) and its reuse twin
# (configs/<net>_adr.json) with the same seed, data order and threads, one
# after the other on the same machine, then writes DIR/results.csv,
# DIR/results.md and DIR/<net>/loss_accuracy.png (loss and test accuracy
# against wall time, dense vs reuse).
# Usage: experiments/reproduce_training.sh [network ...] [--out DIR] [--epochs N]
#          [--subset N] [--threads N] [--set KEY=VALUE ...] [--set-reuse KEY=VALUE ...]
#          [--quick] [--configs DIR] [--summarize-only]
#   networks: cifarnet alexnet vgg19 (default: all three), vgg19_bn, smoke (CI, seconds)
#   --epochs N      override the configs' epochs (both runs)
#   --subset N      train on the first N training images (--set data.subset=N)
#   --threads N     override the configs' threads (both runs)
#   --set KEY=VALUE override any config field in both runs (repeatable), e.g.
#                   --set lr_schedule='{"type":"multistep","milestones":[3]}'
#   --set-reuse KEY=VALUE  the same for the reuse run only (its reuse_schedule)
#   --quick         2 epochs and a 4096-image subset (smoke: 2 epochs, no subset)
#   --configs DIR   read <net>.json and <net>_adr.json from DIR (default configs)
#   --summarize-only  re-make the CSV, table and plots from existing runs in DIR
# Full runs (configs' own epochs, all of Fashion-MNIST, 2 threads): see
# docs/reuse-schedule.md for the expected times. Timed runs use the OpenBLAS
# AVX-512 kernels (OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for the training
# commands only: design.md section 2). DEJA_TRAIN=path replaces build/bin/train
# (another build directory, or a stand-in when testing this script).
set -euo pipefail
cd "$(dirname "$0")/.."

out=runs/reproduce_training configs=configs epochs="" subset="" threads="" quick=0 summarize_only=0 nets=() sets=() reuse_sets=()
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --subset) subset=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --set-reuse) reuse_sets+=(--set "$2"); shift 2 ;;
    --quick) quick=1; shift ;;
    --summarize-only) summarize_only=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    -*) echo "reproduce_training: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) nets+=("$1"); shift ;;
  esac
done
((${#nets[@]})) || nets=(cifarnet alexnet vgg19)
for net in "${nets[@]}"; do
  case $net in
    cifarnet|alexnet|vgg19|vgg19_bn|smoke) ;;
    *) echo "reproduce_training: unknown network '$net' (cifarnet, alexnet, vgg19, vgg19_bn, smoke)" >&2; exit 2 ;;
  esac
done
for value in "$epochs" "$subset" "$threads"; do
  [[ -z $value || $value =~ ^[1-9][0-9]*$ ]] || { echo "reproduce_training: '$value' is not a positive integer" >&2; exit 2; }
done

# gnuplot for the plots, installed quietly when missing.
if ! command -v gnuplot >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "reproduce_training: gnuplot is missing and installing it needs root (apt-get install gnuplot-nox)" >&2
    exit 1
  fi
  echo "reproduce_training: installing gnuplot-nox (for the plots)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null; }
fi

mkdir -p "$out"
failed=0
if ((!summarize_only)); then
  train=${DEJA_TRAIN:-build/bin/train}
  [[ -x $train ]] || bash scripts/setup.sh
  fast=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
  for net in "${nets[@]}"; do
    net_epochs=$epochs net_subset=$subset
    if ((quick)); then
      net_epochs=${epochs:-2}
      [[ $net == smoke ]] || net_subset=${subset:-4096}
    fi
    for mode in dense reuse; do
      config=$configs/$net.json
      [[ $mode == reuse ]] && config=$configs/${net}_adr.json
      if [[ ! -f $config ]]; then
        echo "reproduce_training: $config is missing" >&2
        failed=1
        continue
      fi
      args=(--config "$config" --out "$out/$net/$mode" --quiet)
      [[ -n $net_epochs ]] && args+=(--epochs "$net_epochs")
      [[ -n $net_subset ]] && args+=(--set "data.subset=$net_subset")
      [[ -n $threads ]] && args+=(--set "threads=$threads")
      args+=("${sets[@]}")
      [[ $mode == reuse ]] && args+=("${reuse_sets[@]}")
      rm -rf "${out:?}/$net/$mode"  # a fresh run, never a resume of an old one
      mkdir -p "$out/$net/$mode"
      echo "== $net $mode: $train ${args[*]}"
      if ! "${fast[@]}" "$train" "${args[@]}" > "$out/$net/$mode/train.log" 2>&1; then
        echo "reproduce_training: $net $mode failed; last lines of $out/$net/$mode/train.log:" >&2
        tail -n 20 "$out/$net/$mode/train.log" >&2
        failed=1
      fi
    done
  done
fi

echo "== summary ($out/results.csv, $out/results.md)"
/usr/bin/python3 experiments/summarize_runs.py "$out" "${nets[@]}" || failed=1
for net in "${nets[@]}"; do
  [[ -f $out/$net/plot_dense.dat && -f $out/$net/plot_reuse.dat ]] || continue
  if gnuplot -e "dir='$out/$net'; net='$net'" experiments/plot_runs.gp 2> "$out/$net/gnuplot.log"; then
    echo "plot: $out/$net/loss_accuracy.png"
  else
    echo "reproduce_training: plotting $net failed:" >&2
    cat "$out/$net/gnuplot.log" >&2
    failed=1
  fi
done
exit "$failed"
