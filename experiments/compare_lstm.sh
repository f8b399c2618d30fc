#!/usr/bin/env bash
# Medium LSTM language model, one training window (forward, loss, backward,
# clip, SGD): deja dense vs deja with reuse on the LSTM input projections vs
# PyTorch's CPU nn.LSTM, same sizes and threads. Runs are interleaved in
# rounds (dense, each reuse setting, PyTorch, repeat) because the machine is
# shared: medians over rounds of per-run medians are what the table reports.
# Optionally summarises finished `train` runs of the medium config (tokens/s
# from metrics.jsonl and perplexity per epoch) with --run NAME=DIR.
# Usage: experiments/compare_lstm.sh [--out DIR] [--bin DIR] [--threads N] [--windows N]
#          [--rounds N] [--vocab N] [--reuse JSON]... [--run NAME=DIR]...
# Writes DIR/raw.jsonl, DIR/compare_lstm.csv, DIR/compare_lstm.md (and DIR/runs.csv with --run).
# Speed figures use the OpenBLAS AVX-512 kernels (OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE unset for these commands only) and PyTorch's best settings
# here (experiments/torch_lstm_step.py's docstring).
set -euo pipefail
cd "$(dirname "$0")/.."
out=experiments/results/compare_lstm bin=build/bin threads=2 windows=8 rounds=3 vocab=10000
reuse=() runs=()
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --windows) windows=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --vocab) vocab=$2; shift 2 ;;
    --reuse) reuse+=("$2"); shift 2 ;;
    --run) runs+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "compare_lstm.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
((${#reuse[@]})) || reuse=('{"enabled": true, "L": 20, "H": 6}' '{"enabled": true, "L": 10, "H": 8}')
[[ -x $bin/lstm_bench ]] || { echo "compare_lstm.sh: $bin/lstm_bench not built" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || {
  echo "compare_lstm.sh: /usr/bin/python3 has no torch (apt-get install python3-torch)" >&2; exit 2; }
mkdir -p "$out"
fast=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
torch_env=(ATEN_CPU_CAPABILITY=avx512 OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=10000000000
           MALLOC_TRIM_THRESHOLD_=10000000000)
common=(--threads "$threads" --windows "$windows" --vocab "$vocab")
: > "$out/raw.jsonl"
tag() { /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); j["impl"]=sys.argv[1]; j["round"]=int(sys.argv[2]); print(json.dumps(j))' "$1" "$2"; }
for ((r = 1; r <= rounds; r++)); do
  "${fast[@]}" "$bin/lstm_bench" "${common[@]}" | tag "deja dense" "$r" | tee -a "$out/raw.jsonl"
  for s in "${reuse[@]}"; do
    name=$(/usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print("deja reuse L%s H%s" % (j.get("L", 10), j.get("H", 8)))' "$s")
    "${fast[@]}" "$bin/lstm_bench" "${common[@]}" --reuse "$s" | tag "$name" "$r" | tee -a "$out/raw.jsonl"
  done
  "${fast[@]}" "${torch_env[@]}" /usr/bin/python3 experiments/torch_lstm_step.py "${common[@]}" \
    | tag "pytorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')" "$r" | tee -a "$out/raw.jsonl"
done
/usr/bin/python3 - "$out" "$threads" "$vocab" "${runs[@]}" <<'EOF'
import json, statistics, sys
out, threads, vocab, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows = [json.loads(l) for l in open(f"{out}/raw.jsonl") if l.strip()]
impls = list(dict.fromkeys(r["impl"] for r in rows))
med = lambda xs: statistics.median(xs) if xs else float("nan")
table = []
for impl in impls:
    rs = [r for r in rows if r["impl"] == impl]
    table.append({"impl": impl, "rounds": len(rs), "window_ms": med([r["median_ms"] for r in rs]),
                  "forward_ms": med([r["forward_ms"] for r in rs]), "backward_ms": med([r["backward_ms"] for r in rs]),
                  "tokens_per_s": med([r["tokens_per_s"] for r in rs]),
                  "lstm_input_rc": med([r.get("lstm_input_rc", 1.0) for r in rs]),
                  "best_window_ms": min(r["median_ms"] for r in rs)})
torch_ms = next((t["window_ms"] for t in table if t["impl"].startswith("pytorch")), float("nan"))
with open(f"{out}/compare_lstm.csv", "w") as f:
    f.write("impl,threads,vocab,rounds,window_ms,best_window_ms,forward_ms,backward_ms,tokens_per_s,lstm_input_rc,vs_pytorch\n")
    for t in table:
        f.write(f"{t['impl']},{threads},{vocab},{t['rounds']},{t['window_ms']:.1f},{t['best_window_ms']:.1f},"
                f"{t['forward_ms']:.1f},{t['backward_ms']:.1f},{t['tokens_per_s']:.0f},{t['lstm_input_rc']:.3f},"
                f"{torch_ms / t['window_ms']:.2f}\n")
md = [f"Medium LSTM LM (emb 650, 2 x 650, vocab {vocab}, seq 35, batch 20), {threads} threads, one training window; "
      f"median over {max(t['rounds'] for t in table)} interleaved rounds.", "",
      "| implementation | window ms | best ms | forward ms | backward ms | tokens/s | r_c (LSTM input) | speed vs PyTorch |",
      "|---|---:|---:|---:|---:|---:|---:|---:|"]
for t in table:
    md.append(f"| {t['impl']} | {t['window_ms']:.0f} | {t['best_window_ms']:.0f} | {t['forward_ms']:.0f} | "
              f"{t['backward_ms']:.0f} | {t['tokens_per_s']:.0f} | {t['lstm_input_rc']:.3f} | {torch_ms / t['window_ms']:.2f}x |")
if runs:
    md += ["", "Training runs (`train`, metrics.jsonl):", "",
           "| run | epoch | tokens/s | train ppl | valid ppl | r_c per LSTM layer |", "|---|---:|---:|---:|---:|---|"]
    with open(f"{out}/runs.csv", "w") as f:
        f.write("run,epoch,tokens_per_s,train_perplexity,valid_perplexity,r_c\n")
        for spec in runs:
            name, _, path = spec.partition("=")
            for l in open(f"{path}/metrics.jsonl"):
                e = json.loads(l)
                if e.get("kind") != "epoch":
                    continue
                rc = " ".join(f"{k}={v['r_c']:.3f}" for k, v in e.get("reuse", {}).items())
                f.write(f"{name},{e['epoch']},{e['tokens_per_s']:.1f},{e['train_perplexity']:.2f},"
                        f"{e['test_perplexity']:.2f},{rc}\n")
                md.append(f"| {name} | {e['epoch']} | {e['tokens_per_s']:.0f} | {e['train_perplexity']:.1f} | "
                          f"{e['test_perplexity']:.1f} | {rc} |")
open(f"{out}/compare_lstm.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
