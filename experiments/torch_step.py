#!/usr/bin/python3
"""Times PyTorch's CPU training step (forward + backward + SGD momentum) for a
deja config's model, built layer by layer from the same JSON, so deja and
PyTorch run the identical network. Prints one JSON line: {"net", "batch",
"threads", "median_ms", "images_per_s"}.

Run it at PyTorch's best settings here (experiments/compare_pytorch.sh does):
ATEN_CPU_CAPABILITY=avx512, MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ raised,
OpenBLAS AVX-512 kernels (env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE).
Uses Debian's python3-torch (/usr/bin/python3)."""
import argparse, json, statistics, sys, time

import torch
import torch.nn as nn


def pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


def build(model_cfg):
    shape = list(model_cfg["input"])
    layers = []
    for spec in model_cfg["layers"]:
        t = spec["type"]
        if t == "conv2d":
            k, s, p = pair(spec["kernel"]), pair(spec.get("stride", 1)), pair(spec.get("padding", 0))
            layers.append(nn.Conv2d(shape[0], spec["out_channels"], k, s, p, bias=spec.get("bias", True)))
            shape = [spec["out_channels"], (shape[1] + 2 * p[0] - k[0]) // s[0] + 1,
                     (shape[2] + 2 * p[1] - k[1]) // s[1] + 1]
        elif t == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif t in ("maxpool2d", "avgpool2d"):
            k = pair(spec["kernel"]); s = pair(spec.get("stride", spec["kernel"])); p = pair(spec.get("padding", 0))
            ceil = spec.get("ceil_mode", False)
            layers.append(nn.MaxPool2d(k, s, p, ceil_mode=ceil) if t == "maxpool2d" else nn.AvgPool2d(k, s, p, ceil_mode=ceil))
            f = (lambda n, kk, ss, pp: -(-(n + 2 * pp - kk) // ss) + 1) if ceil else (lambda n, kk, ss, pp: (n + 2 * pp - kk) // ss + 1)
            shape = [shape[0], f(shape[1], k[0], s[0], p[0]), f(shape[2], k[1], s[1], p[1])]
        elif t == "lrn":
            layers.append(nn.LocalResponseNorm(spec.get("size", 5), spec.get("alpha", 1e-4), spec.get("beta", 0.75), spec.get("k", 1.0)))
        elif t == "batchnorm2d":
            layers.append(nn.BatchNorm2d(shape[0], eps=spec.get("eps", 1e-5), momentum=spec.get("momentum", 0.1)))
        elif t == "batchnorm1d":
            layers.append(nn.BatchNorm1d(shape[0], eps=spec.get("eps", 1e-5), momentum=spec.get("momentum", 0.1)))
        elif t == "dropout":
            layers.append(nn.Dropout(spec.get("p", 0.5)))
        elif t == "flatten":
            layers.append(nn.Flatten())
            n = 1
            for d in shape:
                n *= d
            shape = [n]
        elif t == "linear":
            layers.append(nn.Linear(shape[0], spec["out_features"], bias=spec.get("bias", True)))
            shape = [spec["out_features"]]
        else:
            sys.exit(f"torch_step.py: layer type {t} not supported here")
    return nn.Sequential(*layers), model_cfg["input"], shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = json.load(open(args.config))
    net, in_shape, classes = build(cfg["model"])
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(args.batch, *in_shape)
    y = torch.randint(0, classes, (args.batch,))
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"framework": "pytorch", "version": torch.__version__, "net": args.config,
                      "batch": args.batch, "threads": args.threads, "median_ms": med * 1e3,
                      "images_per_s": args.batch / med,
                      "cpu_capability": torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else ""}))


if __name__ == "__main__":
    main()
