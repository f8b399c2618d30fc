#!/usr/bin/env bash
# Deep reuse at inference: test accuracy and speed of a trained checkpoint with
# one layer's product clustered, per hash family and bucket width, against the
# dense evaluation of the same checkpoint.
# Usage: experiments/deep_reuse_inference.sh CHECKPOINT [--layer INDEX] [--L N] [--H N]
#          [--points family:width,...] [--out DIR]
#   CHECKPOINT  a checkpoint file or run folder (e.g. from experiments/reproduce_training.sh)
#   --layer     index of the layer in the config's model.layers (default 4: CifarNet's conv2)
#   --points    default qproj:0.5,qproj:0.35,qproj:0.25,pca:1.0,pca:0.7,pca:0.5
# Writes DIR/inference.csv (family,width,r_c,accuracy,images_per_s) and DIR/inference.md.
# Speeds are taken with the OpenBLAS AVX-512 kernels (design.md section 2).
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoint="" layer=4 L=50 H=8 out=runs/deep_reuse_inference
points="qproj:0.5,qproj:0.35,qproj:0.25,pca:1.0,pca:0.7,pca:0.5"
while (($#)); do
  case $1 in
    --layer) layer=$2; shift 2 ;;
    --L) L=$2; shift 2 ;;
    --H) H=$2; shift 2 ;;
    --points) points=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "deep_reuse_inference.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) checkpoint=$1; shift ;;
  esac
done
[ -n "$checkpoint" ] || { echo "deep_reuse_inference.sh: name a checkpoint (see --help)" >&2; exit 2; }
[ -e "$checkpoint" ] || { echo "deep_reuse_inference.sh: no such checkpoint: $checkpoint" >&2; exit 2; }
eval_bin=${DEJA_EVAL:-build/bin/eval}
[ -x "$eval_bin" ] || { echo "deep_reuse_inference.sh: $eval_bin not built (run scripts/quickstart.sh or cmake)" >&2; exit 2; }
mkdir -p "$out"
fast=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
# One eval: prints "layer_name r_c accuracy images_per_s" from eval's JSON.
run_eval() {
  "${fast[@]}" "$eval_bin" --checkpoint "$checkpoint" --json "$@" | python3 -c '
import json, sys
d = json.load(sys.stdin)
reused = [(n, l) for n, l in d["layers"].items() if l.get("product", "dense") != "dense"]
name, layer = reused[0] if reused else ("-", {"r_c": 1.0})
print(name, layer.get("r_c", 1.0), d["accuracy"], d.get("images_per_s", 0))'
}
echo "family,width,r_c,accuracy,images_per_s" > "$out/inference.csv"
read -r _ rc acc ips < <(run_eval)
echo "dense,0,$rc,$acc,$ips" >> "$out/inference.csv"
dense_acc=$acc
IFS=, read -ra items <<< "$points"
for item in "${items[@]}"; do
  family=${item%%:*} width=${item##*:}
  settings="{\"enabled\":true,\"hash\":\"$family\",\"L\":$L,\"H\":$H,\"width\":$width}"
  read -r name rc acc ips < <(run_eval --set "model.layers.$layer.reuse=$settings")
  echo "$family,$width,$rc,$acc,$ips" >> "$out/inference.csv"
  echo "$name $family width $width: r_c $rc, accuracy $acc, $ips images/s"
done
python3 - "$out" "$dense_acc" "$checkpoint" "$layer" "$L" "$H" <<'PY'
import csv, sys
out, dense, checkpoint, layer, L, H = sys.argv[1:]
rows = list(csv.DictReader(open(f"{out}/inference.csv")))
with open(f"{out}/inference.md", "w") as f:
    f.write(f"Deep reuse at inference, {checkpoint}, model.layers[{layer}] clustered (L={L}, H={H})\n\n")
    f.write("| hash | width | r_c | test accuracy | difference (points) | images/s |\n|---|---:|---:|---:|---:|---:|\n")
    for r in rows:
        diff = 100 * (float(r["accuracy"]) - float(dense))
        f.write(f"| {r['family']} | {r['width']} | {float(r['r_c']):.4f} | {100 * float(r['accuracy']):.2f}% "
                f"| {diff:+.2f} | {float(r['images_per_s']):.0f} |\n")
PY
cat "$out/inference.md"
