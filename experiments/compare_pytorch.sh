#!/usr/bin/env bash
# Side-by-side training-step time, deja dense vs PyTorch CPU (Debian's
# python3-torch at its best settings here), same network (built from the same
# config), batch and threads, in one run.
# Usage: experiments/compare_pytorch.sh [--out DIR] [--threads N] [--repeats N] [--rounds N] [net ...]
# Writes DIR/compare.csv and DIR/compare.md. Speed figures are taken with the
# OpenBLAS AVX-512 kernels (OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for these
# commands only: design.md section 2).
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/compare_pytorch threads=2 repeats=15 rounds=3 nets=()
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
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
# The machine's speed drifts by up to 2x over minutes (a shared VM): runs are
# interleaved (deja, PyTorch, next shape, ...) in rounds, and the table gives
# per implementation the median over rounds, and the median of the per-round
# ratios (each ratio from two runs taken seconds apart).
: > "$out/raw.csv"
for ((r = 1; r <= rounds; r++)); do
  for net in "${nets[@]}"; do
    for batch in 64 128; do
      deja=$("${fast[@]}" build/bin/bench --config "configs/$net.json" --batch "$batch" \
               --threads "$threads" --repeats "$repeats" --step-only --json)
      deja_ms=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["step_ms"])' <<<"$deja")
      core=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["openblas_core"])' <<<"$deja")
      torch=$("${fast[@]}" "${torch_env[@]}" /usr/bin/python3 experiments/torch_step.py \
                --config "configs/$net.json" --batch "$batch" --threads "$threads" --steps "$repeats")
      torch_ms=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])' <<<"$torch")
      echo "$r,$net,$batch,$threads,$deja_ms,$torch_ms,$core" | tee -a "$out/raw.csv"
    done
  done
done
/usr/bin/python3 - "$out" <<'PY'
import csv, statistics, sys
out = sys.argv[1]
rows = list(csv.reader(open(f"{out}/raw.csv")))
keys = list(dict.fromkeys((r[1], int(r[2]), r[3]) for r in rows))
med = statistics.median
with open(f"{out}/compare.csv", "w") as f:
    f.write("net,batch,threads,rounds,deja_ms,pytorch_ms,speedup,openblas_core\n")
    table = []
    for net, batch, threads in keys:
        sel = [r for r in rows if (r[1], int(r[2]), r[3]) == (net, batch, threads)]
        d, p = med(float(r[4]) for r in sel), med(float(r[5]) for r in sel)
        ratio = med(float(r[5]) / float(r[4]) for r in sel)
        f.write(f"{net},{batch},{threads},{len(sel)},{d:.1f},{p:.1f},{ratio:.2f},{sel[0][6]}\n")
        table.append(f"| {net} | {batch} | {threads} | {d:.1f} | {p:.1f} | {ratio:.2f}x | {sel[0][6]} |")
with open(f"{out}/compare.md", "w") as f:
    f.write(f"Training step (forward + loss + backward + SGD), medians over {len(set(r[0] for r in rows))} "
            "interleaved rounds; speedup = median of per-round PyTorch ms / deja ms.\n\n")
    f.write("| net | batch | threads | deja dense ms/step | PyTorch ms/step | deja speedup | OpenBLAS core |\n")
    f.write("|---|---:|---:|---:|---:|---:|---|\n")
    f.write("\n".join(table) + "\n")
PY
cat "$out/compare.md"
