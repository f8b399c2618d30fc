#!/usr/bin/python3
"""Compare two builds of `bench` on the reuse-enabled layers, runs alternating.

Usage: experiments/bench_ab.py RUNS CONFIG BENCH_A BENCH_B [--out FILE] [bench args ...]

Runs `BENCH_A --config CONFIG --json`, then BENCH_B, RUNS times in turn (so both
see the same machine load; on a shared VM single runs of one build spread
2.3-2.8x), and prints per run and per build the summed dense and reuse ms of the
layers with reuse enabled, the speedup of the medians and the median of the
per-run speedups. Timings are taken without OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE (docs: design.md section 2). --out also writes the per-run
figures as CSV. Not a test: no assertions.
"""
import csv
import statistics
import sys

from bench_run import bench_json


def reuse_layers_ms(binary, config, extra):
    report = bench_json(binary, ["--config", config] + extra, "bench_ab")
    layers = [l for l in report["layers"] if l.get("reuse")]
    if not layers:
        sys.exit(f"bench_ab: {config} enables reuse on no layer")
    return sum(l["dense_ms"] for l in layers), sum(l["reuse_ms"] for l in layers)


def main(argv):
    if len(argv) < 4 or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    runs, config, builds, extra = int(argv[0]), argv[1], argv[2:4], argv[4:]
    out_file = None
    if "--out" in extra:
        i = extra.index("--out")
        out_file = extra[i + 1]
        extra = extra[:i] + extra[i + 2:]
    rows = []
    for run in range(1, runs + 1):
        for build in builds:
            dense, reuse = reuse_layers_ms(build, config, extra)
            rows.append((run, build, dense, reuse))
            print(f"run {run} {build}: dense {dense:.1f} ms, reuse {reuse:.1f} ms, {dense / reuse:.2f}x", flush=True)
    for build in builds:
        mine = [r for r in rows if r[1] == build]
        dense = statistics.median(r[2] for r in mine)
        reuse = statistics.median(r[3] for r in mine)
        per_run = statistics.median(r[2] / r[3] for r in mine)
        print(f"{build}: dense {dense:.1f} ms, reuse {reuse:.1f} ms (medians of {len(mine)}): "
              f"{dense / reuse:.2f}x, per-run median {per_run:.2f}x")
    if out_file:
        with open(out_file, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["run", "build", "dense_ms", "reuse_ms", "speedup"])
            for run, build, dense, reuse in rows:
                w.writerow([run, build, f"{dense:.3f}", f"{reuse:.3f}", f"{dense / reuse:.4f}"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
