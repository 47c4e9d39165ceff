#!/usr/bin/env python3
"""The self-supervised table of issue 6: MoCo v2, MoCo v2 + Mixup, SAMix-I and SAMix-C under one protocol.

Runs ``samix-bench ssl ... --probe --json`` once per (method, seed) without a finished result, streaming
its JSON lines into ``RESULTS/<method>-seed<S>.jsonl`` (the last line, ``"final": true``, holds the kNN and
linear-probe top-1), then prints kNN / linear-probe top-1 (mean over seeds) and the pre-training time. SAMix runs also score
their final Mixer's masks against the same masks on other pairs, Mixup and CutMix under the Mixer objective
(``--compare-masks``, records with ``"mask_comparison": true``), printed as a second table.

    python3 bench/ssl_table.py --data /tmp/cifar --run --threads 1
    python3 bench/ssl_table.py                       # print only
    python3 bench/ssl_table.py --data /tmp/cifar --run --val-split 5000 --epochs 150 --methods moco,samix-i,samix-c
                                                     # the issue-14 run: kNN monitor and val_* scores on a hold-out

With ``--val-split N`` the runs hold out N class-balanced training images (the same for every seed): the kNN
monitor runs on them and the final record adds ``val_knn_top1`` / ``val_probe_top1`` (the columns to tune on).
SAMix-C's pre-issue-14 behaviour as a row: ``samix-c:cluster-features=key:cluster-pca-dim=0:detach-cluster-head-mixed``.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_log import load, parse_method, stream_run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)



def final(path):
    if not os.path.exists(path):
        return None
    rows = load(path)
    return rows[-1] if rows and rows[-1].get("final") else None


def file_stem(token):
    return token.replace(":", "_").replace("=", "")


def run_one(a, token, seed, path):
    method, extra = parse_method(token)
    cmd = [a.samix_bench, "ssl", "--data", a.data, "--method", method] + extra + ["--model", a.model, "--epochs", str(a.epochs),
           "--batch", str(a.batch), "--queue", str(a.queue), "--seed", str(seed), "--knn-every", str(a.knn_every),
           "--probe", "--probe-epochs", str(a.probe_epochs), "--json"]
    if a.val_split:
        cmd += ["--val-split", str(a.val_split)]
    if a.train_subset:
        cmd += ["--train-subset", str(a.train_subset)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    if method.startswith("samix"):  # keep the Mixer (untracked) for mask pictures and SAMix^P
        cmd += ["--save-mixer", path.replace(".jsonl", ".mixer.safetensors")]
        if a.compare_masks > 0:
            cmd += ["--compare-masks", str(a.compare_masks)]
    ckpt = path + ".ckpt"
    cmd += ["--checkpoint", ckpt]
    stream_run(cmd, path, f"{token} seed {seed}", checkpoint=ckpt)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="CIFAR-10 directory (needed with --run)")
    ap.add_argument("--results", help="default: results/ssl-cifar10-<model>-e<epochs>-n<subset>")
    ap.add_argument("--samix-bench", default=os.path.join(ROOT, ".build", "release", "samix-bench"))
    ap.add_argument("--methods", default="moco,moco-mixup,samix-i,samix-c")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--val-split", type=int, default=0,
                    help="hold out this many class-balanced training images for validation (0: none)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--queue", type=int, default=4096)
    ap.add_argument("--knn-every", type=int, default=10)
    ap.add_argument("--probe-epochs", type=int, default=100)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--compare-masks", type=int, default=40,
                    help="batches of the final Mixer-vs-hand-crafted mask comparison of SAMix runs (0: off)")
    ap.add_argument("--run", action="store_true", help="run the missing (method, seed) pairs first")
    a = ap.parse_args()
    if not a.results:
        a.results = os.path.join(ROOT, "results", f"ssl-cifar10-{a.model}-e{a.epochs}-n{a.train_subset or 50000}"
                                 + (f"-v{a.val_split}" if a.val_split else ""))
    os.makedirs(a.results, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    methods = a.methods.split(",")
    if a.run:
        if not a.data:
            raise SystemExit("--run needs --data DIR")
        for seed in seeds:
            for m in methods:
                path = os.path.join(a.results, f"{file_stem(m)}-seed{seed}.jsonl")
                if final(path) is None:
                    run_one(a, m, seed, path)
    print(f"CIFAR-10 self-supervised, {a.model}, {a.train_subset or 50000} class-balanced images, {a.epochs} epochs, "
          f"batch {a.batch}, queue {a.queue}; kNN (k=200) and linear probe ({a.probe_epochs} epochs) on the full test "
          f"set; mean over seeds")
    w = max([11] + [len(m) for m in methods])
    print(f"{'method':{w}} {'seeds':>5} {'kNN top-1':>10} {'probe top-1':>12} {'s/epoch':>8} {'val kNN':>8} {'val probe':>9}")
    for m in methods:
        paths = [os.path.join(a.results, f"{file_stem(m)}-seed{s}.jsonl") for s in seeds]
        fins = [f for f in (final(p) for p in paths) if f]
        if not fins:
            print(f"{m:{w}} {0:5d} {'(no finished run)':>10}")
            continue
        # Training seconds per epoch (a resumed run's pretrain_seconds covers only its last part).
        epoch_seconds = [r["seconds"] for p in paths if final(p) for r in load(p) if "epoch" in r]
        vk = [f["val_knn_top1"] for f in fins if "val_knn_top1" in f]
        vp = [f["val_probe_top1"] for f in fins if "val_probe_top1" in f]
        print(f"{m:{w}} {len(fins):5d} {statistics.mean(f['knn_top1'] for f in fins):10.2f} "
              f"{statistics.mean(f['probe_top1'] for f in fins):12.2f} "
              f"{statistics.median(epoch_seconds):8.1f} "
              f"{f'{statistics.mean(vk):.2f}' if vk else '-':>8} {f'{statistics.mean(vp):.2f}' if vp else '-':>9}")

    print_mask_comparison(a.results, methods, seeds)


MASK_COLUMNS = [("loss_mb", "L_mb"), ("loss_mb_local", "local"), ("local_excess", "local-H(λ)"),
                ("loss_mb_global", "global"), ("dominant_correct", "dominant"), ("own_share", "own share"),
                ("mask_std", "mask std")]


def print_mask_comparison(results, methods, seeds):
    """Mean over seeds of each mask kind's scores under the trained Mixer objective (lower L_mb is better)."""
    rows = {}
    for m in methods:
        for s in seeds:
            path = os.path.join(results, f"{file_stem(m)}-seed{s}.jsonl")
            if final(path) is None:
                continue
            # In the run's own log, or (runs that predate --compare-masks) in <run>.masks.jsonl, written by
            # the run's command with --checkpoint <its final checkpoint> --compare-masks N.
            extra = path.replace(".jsonl", ".masks.jsonl")
            recs = load(path) + (load(extra) if os.path.exists(extra) else [])
            for r in recs:
                if r.get("mask_comparison"):
                    rows.setdefault((m, r["mask"]), []).append(r)
    if not rows:
        return
    print()
    print("Mask comparison under each trained Mixer's own objective (same images, views, pairs, λ; mean over seeds):")
    w = max([8] + [len(m) for m, _ in rows])
    print(f"{'method':{w}} {'mask':15} {'seeds':>5} " + " ".join(f"{h:>10}" for _, h in MASK_COLUMNS))
    for (m, mask), rs in rows.items():
        cells = []
        for key, _ in MASK_COLUMNS:
            vals = [r[key] for r in rs if key in r]
            cells.append(f"{statistics.mean(vals):10.3f}" if vals else f"{'–':>10}")
        print(f"{m:{w}} {mask:15} {len(rs):5d} " + " ".join(cells))


if __name__ == "__main__":
    main()
