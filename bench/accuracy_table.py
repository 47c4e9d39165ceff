#!/usr/bin/env python3
"""The CIFAR accuracy table (issues 5 and 14): one fixed protocol for every mixing method.

Runs ``samix-bench train`` once per (method, seed) that has no finished result yet, streaming each
epoch's JSON line into ``RESULTS/<method>-seed<S>.jsonl`` and a trainer checkpoint after every epoch
(``.ckpt``, so an interrupted run continues bit-identically from its last finished epoch), then prints
the table: top-1 as the median of the last 5 epochs (online head and, for AutoMix/SAMix, the momentum
head), mean ± sample std over seeds, and the median time per epoch. With ``--val-split N`` the runs hold
out N class-balanced training images (the same for every seed); their top-1 (``val``) is the column to
tune on, test is only reported.

Method tokens: ``name[:option=value|:flag]...`` — options become ``samix-bench train`` flags, except
``epochs=N`` (that row's own run length, e.g. equal-compute baselines). The issue-14 rows:

    samix:mixer-loss=official        SAMix with the reference Mixer objective (plain mixup CE)
    samix:mask-loss-scope=sample     SAMix with the per-sample mask-loss statistics (the old default)
    automix:mixer-loss=eta           AutoMix with SAMix's η-balanced objective
    mixup:clean-term                 Mixup + AutoMix's clean-image term L_one
    mixup:epochs=250                 an equal-compute row (epochs bought by SAMix's wall-clock)

    python3 bench/accuracy_table.py --data /tmp/cifar --run        # run what is missing, then print
    python3 bench/accuracy_table.py --epochs 50                    # print the table of the 50-epoch protocol
    python3 bench/accuracy_table.py --data /tmp/cifar --run --val-split 5000 --seeds 0,1,2 --threads 1
                                                                   # the issue-14 protocol (one core per run)
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_log import load, parse_method, stream_run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: The main rows and the issue-14 cause-separating rows (``--methods issue14``).
MAIN_ROWS = "vanilla,mixup,cutmix,automix,samix"
ISSUE14_ROWS = ("samix:mixer-loss=official,samix:mask-loss-scope=sample,automix:mixer-loss=eta,mixup:clean-term")


def finished(path, epochs):
    if not os.path.exists(path):
        return False
    rows = load(path)
    return bool(rows) and rows[-1].get("epoch") == epochs


def split_epochs(token, default):
    """``mixup:epochs=250:clean-term`` → (``mixup:clean-term``, 250); without ``epochs=``: (token, default)."""
    name, *opts = token.split(":")
    epochs, kept = default, []
    for o in opts:
        k, eq, v = o.partition("=")
        if k == "epochs":
            try:
                epochs = int(v)
            except ValueError:
                raise SystemExit(f"bad epochs in {token!r} (expected epochs=N)") from None
            if epochs < 1:
                raise SystemExit(f"bad epochs in {token!r} (expected N ≥ 1)")
        else:
            kept.append(o)
    return ":".join([name] + kept), epochs


def file_stem(token):
    """``samix:eta=0`` → ``samix_eta0``; a ``mixer=PATH`` option (SAMix^P) contributes the file's name only:
    ``samix-p:mixer=results/x/samix-i-seed0.mixer.safetensors`` → ``samix-p_mixer-samix-i-seed0``."""
    name, *opts = token.split(":")
    parts = [name]
    for o in opts:
        k, _, v = o.partition("=")
        if k == "mixer":
            base = os.path.basename(v)
            for ext in (".mixer.safetensors", ".safetensors", ".bin"):
                if base.endswith(ext):
                    base = base[: -len(ext)]
                    break
            parts.append("mixer-" + base)
        else:
            parts.append(k + v)
    return "_".join(parts)


def command(a, token, seed, path):
    """The ``samix-bench train`` command of one (method token, seed)."""
    token, epochs = split_epochs(token, a.epochs)
    method, extra = parse_method(token)
    cmd = [a.samix_bench, "train", "--dataset", "cifar10", "--data", a.data or "DATA", "--model", a.model,
           "--mix", method] + extra + [
           "--epochs", str(epochs), "--batch", str(a.batch), "--lr", str(a.lr), "--weight-decay", str(a.weight_decay),
           "--seed", str(seed), "--json"]
    if a.val_split:
        cmd += ["--val-split", str(a.val_split)]
    if a.train_subset:
        cmd += ["--train-subset", str(a.train_subset)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    cmd += ["--eval-every", str(a.eval_every), "--checkpoint", path + ".ckpt"]
    if method in ("automix", "samix"):  # keep the trained Mixer for mask pictures and SAMix^P
        cmd += ["--save-mixer", path.replace(".jsonl", ".mixer.safetensors")]
    return cmd, epochs


def run_one(a, token, seed, path):
    cmd, _ = command(a, token, seed, path)
    stream_run(cmd, path, f"{token} seed {seed}", checkpoint=path + ".ckpt")


def mean_std(values):
    if not values:
        return "-"
    m = statistics.mean(values)
    return f"{m:.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{m:.2f}"


def row_stats(a, token):
    """Per-seed medians of the last 5 epochs (online, momentum, validation) and epoch times of one row."""
    _, epochs = split_epochs(token, a.epochs)
    stats = {"online": [], "momentum": [], "val": [], "times": [], "epochs": epochs}
    for seed in [int(s) for s in a.seeds.split(",")]:
        path = os.path.join(a.results, f"{file_stem(token)}-seed{seed}.jsonl")
        if not finished(path, epochs):
            continue
        rows = load(path)
        last = rows[-5:]
        stats["online"].append(statistics.median(r["test_top1"] for r in last))
        if "test_top1_momentum" in last[-1]:
            stats["momentum"].append(statistics.median(r["test_top1_momentum"] for r in last))
        # The tuning column: the momentum head where there is one (the network AutoMix/SAMix evaluate).
        vkey = "val_top1_momentum" if "val_top1_momentum" in last[-1] else "val_top1"
        if vkey in last[-1]:
            stats["val"].append(statistics.median(r[vkey] for r in last))
        stats["times"] += [r["seconds"] for r in rows]
    return stats


def table(a):
    print(f"CIFAR-10, {a.model}, {a.train_subset or 'all'} class-balanced training images"
          f"{f' (after holding out {a.val_split} for validation)' if a.val_split else ''}, full 10,000-image test set, "
          f"{a.epochs} epochs unless the row says, batch {a.batch}, SGD lr {a.lr} momentum 0.9 wd {a.weight_decay}, "
          f"cosine (to 0.5 × lr for AutoMix/SAMix, 0 otherwise), crop+flip; top-1 = median of the last 5 epochs, "
          f"mean ± std over seeds")
    print(f"{'method':34} {'seeds':>5} {'epochs':>6} {'top-1 online':>16} {'top-1 momentum':>16} {'val top-1':>16} "
          f"{'per seed (online)':>24} {'s/epoch':>8}")
    for token in a.methods.split(","):
        s = row_stats(a, token)
        if not s["online"]:
            print(f"{token:34} {0:5d} {s['epochs']:6d} {'(no finished run)':>16}")
            continue
        seeds = ",".join(f"{v:.2f}" for v in s["online"])
        print(f"{token:34} {len(s['online']):5d} {s['epochs']:6d} {mean_std(s['online']):>16} "
              f"{mean_std(s['momentum']):>16} {mean_std(s['val']):>16} {seeds:>24} {statistics.median(s['times']):8.1f}")


def expand(methods):
    """``main`` and ``issue14`` stand for their row lists."""
    out = []
    for t in methods.split(","):
        out += {"main": MAIN_ROWS.split(","), "issue14": ISSUE14_ROWS.split(",")}.get(t, [t])
    return ",".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="CIFAR-10 directory (needed with --run)")
    ap.add_argument("--results", help="results directory (default: results/cifar10-<model>-e<epochs>-n<subset>[-v<val>])")
    ap.add_argument("--samix-bench", default=os.path.join(ROOT, ".build", "release", "samix-bench"))
    ap.add_argument("--methods", default="main",
                    help="comma-separated tokens name[:option=value|:flag]..., e.g. samix:eta=0, samix:mixer-loss=official, "
                         "mixup:clean-term, mixup:epochs=250; 'main' = " + MAIN_ROWS + ", 'issue14' = " + ISSUE14_ROWS)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--val-split", type=int, default=0,
                    help="hold out this many class-balanced training images for validation (0: none)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, help="worker threads per training run (default: all cores)")
    ap.add_argument("--eval-every", type=int, default=5,
                    help="test-set evaluation every N epochs and in each of the last 5 (default: 5)")
    ap.add_argument("--run", action="store_true", help="run the missing (method, seed) pairs first")
    ap.add_argument("--print-commands", action="store_true",
                    help="print one resumable '--run' invocation of this script per missing (method, seed) pair and "
                         "exit (to start them one per core, e.g. with nohup ... &)")
    a = ap.parse_args()
    a.methods = expand(a.methods)
    if not a.results:
        a.results = os.path.join(ROOT, "results", f"cifar10-{a.model}-e{a.epochs}-n{a.train_subset or 50000}"
                                 + (f"-v{a.val_split}" if a.val_split else ""))
    os.makedirs(a.results, exist_ok=True)
    pairs = [(seed, token) for seed in [int(s) for s in a.seeds.split(",")] for token in a.methods.split(",")]
    missing = []
    for seed, token in pairs:
        path = os.path.join(a.results, f"{file_stem(token)}-seed{seed}.jsonl")
        if not finished(path, split_epochs(token, a.epochs)[1]):
            missing.append((seed, token, path))
    if a.print_commands:
        # One resumable invocation of this script per missing (method, seed): start each on its own core.
        for seed, token, _ in missing:
            args = [sys.executable, os.path.relpath(os.path.abspath(__file__)), "--data", a.data or "DATA", "--run",
                    "--methods", token, "--seeds", str(seed), "--results", a.results, "--model", a.model,
                    "--epochs", str(a.epochs), "--train-subset", str(a.train_subset), "--val-split", str(a.val_split),
                    "--batch", str(a.batch), "--lr", str(a.lr), "--weight-decay", str(a.weight_decay),
                    "--eval-every", str(a.eval_every), "--threads", str(a.threads or 1)]
            print(" ".join(args))
        return
    if a.run:
        if not a.data:
            raise SystemExit("--run needs --data DIR")
        for seed, token, path in missing:
            run_one(a, token, seed, path)
    table(a)


if __name__ == "__main__":
    main()
