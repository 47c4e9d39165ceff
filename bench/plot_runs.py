#!/usr/bin/env python3
"""Learning curves of an accuracy-table results folder: test top-1 per evaluated epoch (online head; the
momentum head dashed where a method has one) and the training loss, one line per method (mean over the
seeds that have the epoch). Needs matplotlib (an optional extra).

    python3 bench/plot_runs.py results/cifar10-resnet20-e50-n10000            # writes curves.png there
    python3 bench/plot_runs.py results/cifar10-resnet20-e50-n10000 --out /tmp/curves.png
"""
import argparse
import collections
import glob
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_log import load  # noqa: E402


def curves(folder):
    """{method: {key: {epoch: [values over seeds]}}} from the finished ``<method>-seed<S>.jsonl`` files."""
    out = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(list)))
    for path in sorted(glob.glob(os.path.join(folder, "*-seed*.jsonl"))):
        method = os.path.basename(path).rsplit("-seed", 1)[0]
        for row in load(path):
            if "epoch" not in row:
                continue
            for key in ("test_top1", "test_top1_momentum", "train_loss"):
                if row.get(key) is not None:
                    out[method][key][row["epoch"]].append(row[key])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--out", help="PNG file (default: FOLDER/curves.png)")
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("plot_runs.py needs matplotlib: pip install matplotlib")
    data = curves(a.folder)
    if not data:
        raise SystemExit(f"no finished runs (*-seed*.jsonl) in {a.folder}")
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, (method, keys) in enumerate(sorted(data.items())):
        color = f"C{i}"
        for key, style, label in (("test_top1", "-", method), ("test_top1_momentum", "--", f"{method} (momentum)")):
            if keys.get(key):
                ep = sorted(keys[key])
                acc.plot(ep, [statistics.mean(keys[key][e]) for e in ep], style, color=color, marker=".", label=label)
        if keys.get("train_loss"):
            ep = sorted(keys["train_loss"])
            loss.plot(ep, [statistics.mean(keys["train_loss"][e]) for e in ep], color=color, label=method)
    acc.set(xlabel="epoch", ylabel="test top-1 (%)", title=os.path.basename(os.path.normpath(a.folder)))
    acc.grid(alpha=0.3)
    acc.legend(fontsize=8)
    loss.set(xlabel="epoch", ylabel="training loss (method's own objective)", yscale="log")
    loss.grid(alpha=0.3)
    loss.legend(fontsize=8)
    fig.tight_layout()
    out = a.out or os.path.join(a.folder, "curves.png")
    fig.savefig(out, dpi=100)
    print(out)


if __name__ == "__main__":
    main()
