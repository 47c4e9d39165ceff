#!/usr/bin/env python3
"""The CIFAR accuracy table of issue 5: one fixed protocol for every mixing method.

Runs ``samix-bench train`` once per (method, seed) that has no finished result yet, streaming each
epoch's JSON line into ``RESULTS/<method>-seed<S>.jsonl`` and a trainer checkpoint after every epoch
(``.ckpt``, so an interrupted run continues bit-identically from its last finished epoch), then prints the table: top-1 as the median of the last 5 epochs (online head and,
for AutoMix/SAMix, the momentum head), mean over seeds, and the median time per epoch.

    python3 bench/accuracy_table.py --data /tmp/cifar --run        # run what is missing, then print
    python3 bench/accuracy_table.py --epochs 20                    # print the table of the 20-epoch protocol
    python3 bench/accuracy_table.py --data /tmp/cifar --run --methods samix,samix:eta=0,samix:mask-loss-weight=0
                                                                   # η and mask-loss ablations of SAMix
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_log import load, parse_method, stream_run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)



def finished(path, epochs):
    if not os.path.exists(path):
        return False
    rows = load(path)
    return bool(rows) and rows[-1].get("epoch") == epochs


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


def run_one(a, method, seed, path):
    method, extra = parse_method(method)
    cmd = [a.samix_bench, "train", "--dataset", "cifar10", "--data", a.data, "--model", a.model, "--mix", method] + extra + [
           "--epochs", str(a.epochs), "--batch", str(a.batch), "--lr", str(a.lr), "--weight-decay", str(a.weight_decay),
           "--seed", str(seed), "--json"]
    if a.train_subset:
        cmd += ["--train-subset", str(a.train_subset)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    ckpt = path + ".ckpt"
    cmd += ["--eval-every", str(a.eval_every), "--checkpoint", ckpt]
    if method in ("automix", "samix"):  # keep the trained Mixer for mask pictures and SAMix^P
        cmd += ["--save-mixer", path.replace(".jsonl", ".mixer.safetensors")]
    stream_run(cmd, path, f"{method} seed {seed}", checkpoint=ckpt)


def table(a):
    print(f"CIFAR-10, {a.model}, {a.train_subset or 50000} class-balanced training images, full 10,000-image test set, "
          f"{a.epochs} epochs, batch {a.batch}, SGD lr {a.lr} momentum 0.9 wd {a.weight_decay}, cosine, crop+flip; "
          f"top-1 = median of the last 5 epochs, mean over seeds")
    print(f"{'method':24} {'seeds':>5} {'top-1 online':>14} {'top-1 momentum':>15} {'per seed (online)':>28} {'s/epoch':>8}")
    for method in a.methods.split(","):
        per_seed, per_seed_k, times = [], [], []
        for seed in [int(s) for s in a.seeds.split(",")]:
            path = os.path.join(a.results, f"{file_stem(method)}-seed{seed}.jsonl")
            if not finished(path, a.epochs):
                continue
            rows = load(path)
            last = rows[-5:]
            per_seed.append(statistics.median(r["test_top1"] for r in last))
            if "test_top1_momentum" in last[-1]:
                per_seed_k.append(statistics.median(r["test_top1_momentum"] for r in last))
            times += [r["seconds"] for r in rows]
        if not per_seed:
            print(f"{method:24} {0:5d} {'(no finished run)':>14}")
            continue
        mk = f"{statistics.mean(per_seed_k):15.2f}" if per_seed_k else f"{'-':>15}"
        seeds = ", ".join(f"{v:.2f}" for v in per_seed)
        print(f"{method:24} {len(per_seed):5d} {statistics.mean(per_seed):14.2f} {mk} {seeds:>28} "
              f"{statistics.median(times):8.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="CIFAR-10 directory (needed with --run)")
    ap.add_argument("--results", help="results directory (default: results/cifar10-<model>-e<epochs>-n<subset>)")
    ap.add_argument("--samix-bench", default=os.path.join(ROOT, ".build", "release", "samix-bench"))
    ap.add_argument("--methods", default="vanilla,mixup,cutmix,automix,samix",
                    help="comma-separated; ablations as name:option=value[:option=value], e.g. "
                         "samix:eta=0, samix:mixer-loss=official, samix:mask-loss-weight=0")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, help="worker threads per training run (default: all cores)")
    ap.add_argument("--eval-every", type=int, default=5,
                    help="test-set evaluation every N epochs and in each of the last 5 (default: 5)")
    ap.add_argument("--run", action="store_true", help="run the missing (method, seed) pairs first")
    a = ap.parse_args()
    if not a.results:
        a.results = os.path.join(ROOT, "results", f"cifar10-{a.model}-e{a.epochs}-n{a.train_subset or 50000}")
    os.makedirs(a.results, exist_ok=True)
    if a.run:
        if not a.data:
            raise SystemExit("--run needs --data DIR")
        for seed in [int(s) for s in a.seeds.split(",")]:
            for method in a.methods.split(","):
                path = os.path.join(a.results, f"{file_stem(method)}-seed{seed}.jsonl")
                if not finished(path, a.epochs):
                    run_one(a, method, seed, path)
    table(a)


if __name__ == "__main__":
    main()
