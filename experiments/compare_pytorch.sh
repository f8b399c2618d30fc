#!/usr/bin/env bash
# Side-by-side training-step time, deja dense vs PyTorch CPU (Debian's
# python3-torch at its best settings here), same network (built from the same
# config), batch and threads, in one run.
# Usage: experiments/compare_pytorch.sh [--out DIR] [--threads N] [--repeats N] [net ...]
# Writes DIR/compare.csv and DIR/compare.md. Speed figures are taken with the
# OpenBLAS AVX-512 kernels (OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for these
# commands only: design.md section 2).
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/compare_pytorch threads=2 repeats=15 nets=()
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) nets+=("$1"); shift ;;
  esac
done
((${#nets[@]})) || nets=(cifarnet alexnet vgg19)
bash scripts/setup.sh
dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed" || {
  echo "installing python3-torch (PyTorch CPU, for the comparison)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch >/dev/null
}
mkdir -p "$out"
fast=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
torch_env=(ATEN_CPU_CAPABILITY=avx512 MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824)
echo "net,batch,threads,deja_ms,pytorch_ms,speedup,openblas_core" > "$out/compare.csv"
for net in "${nets[@]}"; do
  for batch in 64 128; do
    deja=$("${fast[@]}" build/bin/bench --config "configs/$net.json" --batch "$batch" \
             --threads "$threads" --repeats "$repeats" --step-only --json)
    deja_ms=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["step_ms"])' <<<"$deja")
    core=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["openblas_core"])' <<<"$deja")
    torch=$("${fast[@]}" "${torch_env[@]}" /usr/bin/python3 experiments/torch_step.py \
              --config "configs/$net.json" --batch "$batch" --threads "$threads" --steps "$repeats")
    torch_ms=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])' <<<"$torch")
    speedup=$(/usr/bin/python3 -c "print(f'{$torch_ms/$deja_ms:.2f}')")
    printf '%s,%s,%s,%.1f,%.1f,%s,%s\n' "$net" "$batch" "$threads" "$deja_ms" "$torch_ms" "$speedup" "$core" \
      | tee -a "$out/compare.csv"
  done
done
{
  echo "| net | batch | threads | deja dense ms/step | PyTorch ms/step | deja speedup | OpenBLAS core |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  tail -n +2 "$out/compare.csv" | while IFS=, read -r n b t d p s c; do
    echo "| $n | $b | $t | $d | $p | ${s}x | $c |"
  done
} > "$out/compare.md"
cat "$out/compare.md"
