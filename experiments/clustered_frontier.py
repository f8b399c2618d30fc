#!/usr/bin/python3
"""Speed of the clustered engine against its remaining ratio, with the ceiling.

Usage: experiments/clustered_frontier.py CONFIG --widths W1,W2,... --out DIR
           [--hash qproj] [--L 50] [--H 8] [--runs 1] [bench args ...]

For each bucket width, runs `build/bin/bench --config CONFIG --json` with the
model-wide reuse setting {"hash", "L", "H", "width"} (every layer the config
enables reuse on takes it) and reports, summed over the reuse-enabled layers:
r_c (the mean over those layers), err_y, dense and reuse ms (forward +
backward), the speedup, the engine's phases, and a ceiling: the speedup the
layers would reach if grouping, centroid sums, gathers, segment sums and the
dX scatter cost nothing. What stays in the ceiling is what no clustered step
can skip: the cluster products (r_c times the dense layer's flops, counted at
the dense layer's own speed, lowering aside: a generous bound, since the
per-block cluster products are smaller GEMMs than dense's), the hashing of
every row, and the lowering that dense does too. Read it with the accuracy each r_c
keeps after training (docs/perf-notes.md, Round 21): a width whose ceiling is
below a speed target cannot meet it with any engine of this kind.

Writes DIR/frontier.csv and DIR/width_<w>.json (bench's JSON per run).
Timings are taken without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (design.md
section 2). Not a test: no assertions.
"""
import csv
import json
import os
import statistics
import sys

from bench_run import bench_json

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "bin", "bench")


def take(argv, flag, default):
    if flag in argv:
        i = argv.index(flag)
        value = argv[i + 1]
        del argv[i:i + 2]
        return value
    return default


def summarize(report):
    layers = [l for l in report["layers"] if l.get("reuse")]
    if not layers:
        sys.exit("clustered_frontier: the config enables reuse on no layer")
    dense = sum(l["dense_ms"] for l in layers)
    reuse = sum(l["reuse_ms"] for l in layers)
    phase = {k: sum(l["overhead_ms"][k] for l in layers)
             for k in ("hash", "cluster", "gemm", "scatter", "lowering")}
    products = sum(l["r_c"] * (l["dense_ms"] - l["overhead_ms"]["lowering"]) for l in layers)
    floor = products + phase["hash"] + phase["lowering"]
    return {
        "r_c": statistics.mean(l["r_c"] for l in layers),
        "err_y": statistics.mean(l["err_y"] for l in layers),
        "dense_ms": dense,
        "reuse_ms": reuse,
        "speedup": report["reuse_layers_speedup"],
        "hash_ms": phase["hash"],
        "cluster_ms": phase["cluster"],
        "gemm_ms": phase["gemm"],
        "scatter_ms": phase["scatter"],
        "lowering_ms": phase["lowering"],
        "engine_share": report["engine_share"],
        "floor_ms": floor,
        "ceiling_speedup": dense / floor,
    }


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    config, extra = argv[0], argv[1:]
    widths = take(extra, "--widths", None)
    out_dir = take(extra, "--out", None)
    if widths is None or out_dir is None:
        print(__doc__.strip())
        return 2
    family = take(extra, "--hash", "qproj")
    block = int(take(extra, "--L", "50"))
    bits = int(take(extra, "--H", "8"))
    runs = int(take(extra, "--runs", "1"))
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for run in range(1, runs + 1):
        for width in [float(w) for w in widths.split(",")]:
            setting = {"hash": family, "L": block, "H": bits, "width": width}
            report = bench_json(BENCH, ["--config", config, "--set", "model.reuse=" + json.dumps(setting)] + extra,
                                "clustered_frontier")
            with open(os.path.join(out_dir, f"width_{width:g}_run{run}.json"), "w") as f:
                json.dump(report, f, indent=1)
            row = {"run": run, "hash": family, "L": block, "H": bits, "width": width}
            row.update(summarize(report))
            rows.append(row)
            print(f"run {run} width {width:g}: r_c {row['r_c']:.3f} err_y {row['err_y']:.3f} "
                  f"dense {row['dense_ms']:.1f} ms reuse {row['reuse_ms']:.1f} ms "
                  f"{row['speedup']:.2f}x (ceiling {row['ceiling_speedup']:.2f}x), "
                  f"engine {100 * row['engine_share']:.1f}%", flush=True)
    with open(os.path.join(out_dir, "frontier.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for row in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
