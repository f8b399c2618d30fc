"""Running `bench --json` for the experiment scripts (bench_ab.py, clustered_frontier.py).

Timings are taken without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, so OpenBLAS
picks its AVX-512 kernels (design.md section 2). Not a script of its own.
"""
import json
import os
import subprocess
import sys


def avx512_env():
    """This process's environment without the variables that force slower OpenBLAS kernels."""
    return {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}


def bench_json(binary, args, caller):
    """bench's JSON report for `binary --json ARGS`; exits naming `caller` if bench fails."""
    out = subprocess.run([binary, "--json"] + args, env=avx512_env(), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{caller}: {binary} failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout[out.stdout.index("{"):])
