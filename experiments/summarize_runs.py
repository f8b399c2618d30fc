#!/usr/bin/python3
"""Summarises dense-vs-reuse training runs written by experiments/reproduce_training.sh.

Reads OUT/<net>/dense/metrics.jsonl and OUT/<net>/reuse/metrics.jsonl (one JSON
object per line: "epoch", "step" and "reuse_event" records, see
docs/reuse-schedule.md) and writes
  OUT/results.csv   network,epochs,dense_s,reuse_s,reduction,speedup,dense_acc,reuse_acc,diff,mean_rc
  OUT/results.md    the same as a markdown table, plus mean r_c per layer and the rung changes
  OUT/<net>/plot_dense.dat, plot_reuse.dat, events.dat   columns for experiments/plot_runs.gp
Times are the last epoch record's cumulative wall_s; accuracies the last
epoch's test_accuracy (fractions, as the trainer logs them); diff is
reuse_acc - dense_acc in the same unit; mean r_c averages each reuse layer's
per-epoch r_c over the epochs it ran on a reuse rung (not dense). Only the
Python standard library. Exit status 1 when a network has no usable runs
(the others are still summarised).
Usage: summarize_runs.py OUT net [net ...]
"""
import csv
import json
import math
import os
import sys


def load_records(path):
    """Parses metrics.jsonl; a torn last line (a killed run) is skipped, any other bad line is an error."""
    records = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):
                print(f"summarize: {path}:{number}: ignoring a torn last line", file=sys.stderr)
                continue
            raise SystemExit(f"summarize: {path}:{number}: malformed JSON: {e}")
    return records


class Run:
    def __init__(self, path):
        self.path = path
        records = load_records(path)
        self.epochs = [r for r in records if r.get("kind") == "epoch"]
        self.steps = [r for r in records if r.get("kind") == "step"]
        self.events = [r for r in records if r.get("kind") == "reuse_event"]
        if not self.epochs:
            raise ValueError(f"{path}: no epoch records")
        for key in ("wall_s", "test_accuracy"):
            if key not in self.epochs[-1]:
                raise ValueError(f"{path}: the last epoch record has no '{key}'")

    def wall_s(self):
        return float(self.epochs[-1]["wall_s"])

    def accuracy(self):
        return float(self.epochs[-1]["test_accuracy"])

    def epoch_count(self):
        last = self.epochs[-1].get("epoch")  # 1-based: the number of epochs completed
        return int(last) if isinstance(last, int) else len(self.epochs)

    def mean_rc(self):
        """{layer: mean r_c over epochs on a reuse rung}, layers in first-seen order."""
        sums, counts = {}, {}
        for r in self.epochs:
            for layer, info in (r.get("reuse") or {}).items():
                if not isinstance(info, dict) or "r_c" not in info:
                    continue
                if str(info.get("settings", "")).startswith("dense"):
                    continue
                rc = float(info["r_c"])
                if math.isnan(rc):
                    continue
                sums[layer] = sums.get(layer, 0.0) + rc
                counts[layer] = counts.get(layer, 0) + 1
        return {layer: sums[layer] / counts[layer] for layer in sums}

    def loss_points(self):
        """(wall_s, loss) pairs: step records when they carry both, else epoch train_loss."""
        points = []
        for r in self.steps:
            loss = r.get("loss", r.get("train_loss"))
            if "wall_s" in r and loss is not None:
                points.append((float(r["wall_s"]), float(loss)))
        if len(points) >= 2:
            return points
        return [(float(r["wall_s"]), float(r["train_loss"])) for r in self.epochs if "train_loss" in r]

    def write_plot_data(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write("# wall_s train_loss test_loss test_accuracy (epoch records)\n")
            for r in self.epochs:
                f.write(f"{r['wall_s']} {r.get('train_loss', 'NaN')} {r.get('test_loss', 'NaN')} "
                        f"{r.get('test_accuracy', 'NaN')}\n")
            f.write("\n\n# wall_s loss (finest loss curve available)\n")
            for wall, loss in self.loss_points():
                f.write(f"{wall} {loss}\n")


def event_wall_s(run, event):
    """Wall time of a rung change: the first step record at or after its step, else its epoch's start."""
    step = event.get("step")
    for r in run.steps:
        if "wall_s" in r and isinstance(step, int) and r.get("step", -1) >= step:
            return float(r["wall_s"])
    epoch = event.get("epoch", 0)
    previous = [r for r in run.epochs if r.get("epoch", 0) < epoch]
    return float(previous[-1]["wall_s"]) if previous else 0.0


def fmt(x, digits=3):
    return "NA" if x is None else f"{x:.{digits}f}"


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, nets = argv[1], argv[2:]
    rows, failed = [], []
    for net in nets:
        try:
            dense = Run(os.path.join(out, net, "dense", "metrics.jsonl"))
            reuse = Run(os.path.join(out, net, "reuse", "metrics.jsonl"))
        except (OSError, ValueError) as e:
            print(f"summarize: {net}: {e}", file=sys.stderr)
            failed.append(net)
            continue
        dense_s, reuse_s = dense.wall_s(), reuse.wall_s()
        per_layer = reuse.mean_rc()
        rows.append({
            "network": net,
            "epochs": reuse.epoch_count(),
            "dense_s": dense_s,
            "reuse_s": reuse_s,
            "reduction": 1.0 - reuse_s / dense_s if dense_s > 0 else None,
            "speedup": dense_s / reuse_s if reuse_s > 0 else None,
            "dense_acc": dense.accuracy(),
            "reuse_acc": reuse.accuracy(),
            "diff": reuse.accuracy() - dense.accuracy(),
            "mean_rc": sum(per_layer.values()) / len(per_layer) if per_layer else None,
            "per_layer": per_layer,
            "events": reuse.events,
            "dense_epochs": dense.epoch_count(),
        })
        dense.write_plot_data(os.path.join(out, net, "plot_dense.dat"))
        reuse.write_plot_data(os.path.join(out, net, "plot_reuse.dat"))
        with open(os.path.join(out, net, "events.dat"), "w", encoding="utf-8") as f:
            f.write("# wall_s layer reason rung_to\n")
            for e in reuse.events:
                f.write(f"{event_wall_s(reuse, e)} {e.get('layer', '?')} {e.get('reason', '?')} {e.get('to', '?')}\n")

    columns = ["network", "epochs", "dense_s", "reuse_s", "reduction", "speedup", "dense_acc", "reuse_acc",
               "diff", "mean_rc"]
    with open(os.path.join(out, "results.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow([r["network"], r["epochs"], fmt(r["dense_s"], 2), fmt(r["reuse_s"], 2), fmt(r["reduction"], 4),
                        fmt(r["speedup"], 3), fmt(r["dense_acc"], 4), fmt(r["reuse_acc"], 4), fmt(r["diff"], 4),
                        fmt(r["mean_rc"], 4)])

    def pct(x):
        return "NA" if x is None else f"{100.0 * x:.2f}%"

    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write("| network | epochs | dense time (s) | reuse time (s) | reduction | speedup | dense acc | reuse acc "
                "| difference (points) | mean r_c per layer |\n")
        f.write("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
        for r in rows:
            layers = ", ".join(f"{k} {v:.3f}" for k, v in r["per_layer"].items()) or "NA"
            speed = "NA" if r["speedup"] is None else f"{r['speedup']:.2f}x"
            f.write(f"| {r['network']} | {r['epochs']} | {r['dense_s']:.1f} | {r['reuse_s']:.1f} | {pct(r['reduction'])} "
                    f"| {speed} | {pct(r['dense_acc'])} | {pct(r['reuse_acc'])} | {100.0 * r['diff']:+.2f} | {layers} |\n")
        for r in rows:
            if r["dense_epochs"] != r["epochs"]:
                f.write(f"\nWarning: {r['network']}: dense ran {r['dense_epochs']} epochs, reuse {r['epochs']}.\n")
        for r in rows:
            if not r["events"]:
                continue
            f.write(f"\n{r['network']} rung changes (reuse run):\n\n")
            for e in r["events"]:
                f.write(f"- epoch {e.get('epoch')}, step {e.get('step')}: {e.get('layer')} rung {e.get('from')} -> "
                        f"{e.get('to')} ({e.get('reason')}): {e.get('settings')}\n")
        if failed:
            f.write(f"\nNo result for: {', '.join(failed)} (missing or unusable metrics.jsonl).\n")
    with open(os.path.join(out, "results.md"), encoding="utf-8") as f:
        print(f.read(), end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
