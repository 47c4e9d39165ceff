#!/usr/bin/env python3
"""Cost of one mixup / cutmix call from Python: samix (ctypes, NumPy in place) vs the NumPy, torch
and timm reference of ``shared/bench/torch_reference.py ops``, measured in one invocation.

Run with the python of an environment where ``samix`` is installed:

    PY=$(../shared/bench/setup-torch.sh)
    .venv/bin/python bench/compare_ops.py --torch-python "$PY" [--size 32,224] [--threads 1]

samix rows: ``samix.MixPolicy`` and the one-shot ``samix.mix(x, y, method, out=x, return_masks=False)`` (batch
mode, random partner, in place, soft targets returned) and ``samix.Mixup(...)`` in timm's batch / pair / elem modes
(in place, flipped pairs); the ``fixed`` rows are ``samix.Mixup`` calls on 1×1-pixel images (the per-call cost).
The ``goals`` block prints issue 16's two ratios measured in this run: batch-mode mixup / one NumPy pass over the
batch (the ``floor`` row) and the fixed cost per call.
Ratios are reference time / samix time (higher is better for samix).
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import numpy as np

import samix

HERE = os.path.dirname(os.path.abspath(__file__))


def timeit(fn, min_seconds=0.2, samples=7):
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_seconds / 4:
            break
        n *= 2
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-python", required=True)
    ap.add_argument("--reference", default=os.path.join(HERE, "..", "..", "shared", "bench", "torch_reference.py"))
    ap.add_argument("--size", default="32")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    ref = json.loads(subprocess.run([a.torch_python, a.reference, "ops", "--json", "--size", a.size, "--batch",
                                     str(a.batch), "--threads", str(a.threads)], check=True, capture_output=True,
                                    text=True).stdout)
    samix.set_num_threads(a.threads)
    rows = []
    for size in [int(s) for s in a.size.split(",")]:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((a.batch, 3, size, size)).astype(np.float32)
        y = rng.integers(0, 10, a.batch)
        # The floor of any in-place mix: one pass over the batch (read + write every value once).
        rows.append((size, "floor", "numpy one in-place pass (x *= 1)", timeit(lambda: np.multiply(x, 1.0, out=x))))
        for op, method, alpha_kw in (("mixup", "mixup", dict(mixup_alpha=1.0, cutmix_alpha=0.0)),
                                     ("cutmix", "cutmix", dict(mixup_alpha=0.0, cutmix_alpha=1.0))):
            policy = samix.MixPolicy(method, alpha=1.0, seed=0)
            rows.append((size, op, "samix.MixPolicy in place", timeit(
                lambda: policy(x, y, num_classes=10, out=x, return_masks=False))))
            rows.append((size, op, "samix.mix out=x", timeit(
                lambda: samix.mix(x, y, method, alpha=1.0, num_classes=10, out=x, return_masks=False))))
            for mode in ("batch", "pair", "elem"):
                m = samix.Mixup(**alpha_kw, mode=mode, label_smoothing=0.0, num_classes=10, seed=0)
                rows.append((size, op, f"samix.Mixup {mode}", timeit(lambda: m(x, y))))
    # The fixed cost of one call from Python (argument checks, ctypes, λ/box draws, soft targets): the same
    # call on 1×1-pixel images, where the pixel work is negligible.
    tiny = np.zeros((a.batch, 3, 1, 1), np.float32)
    tiny_y = np.random.default_rng(0).integers(0, 10, a.batch)
    fixed = samix.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", label_smoothing=0.0, num_classes=10, seed=0)
    rows.append((1, "fixed", "samix.Mixup elem, 1×1-pixel images", timeit(lambda: fixed(tiny, tiny_y))))
    fixed_batch = samix.Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, mode="batch", label_smoothing=0.0, num_classes=10,
                              seed=0)
    rows.append((1, "fixed", "samix.Mixup batch, 1×1-pixel images", timeit(lambda: fixed_batch(tiny, tiny_y))))
    print(f"batch {a.batch}, {a.threads} thread(s); µs per call, median of 7 samples (reference: torch_reference.py ops)")
    print(f"{'size':>4} {'op':7} {'implementation':34} {'median µs':>10} {'best µs':>9}")
    for r in ref["results"]:
        print(f"{r['size']:4d} {r['op']:7} {(r['library'] + ' ' + r['variant'])[:34]:34} {r['us_median']:10.1f} {r['us_best']:9.1f}")
    for size, op, name, (med, best) in rows:
        print(f"{size:4d} {op:7} {name:34} {med:10.1f} {best:9.1f}")
    print("\ngoals (issue 16; samix median / floor median of this run):")
    for size in sorted({r[0] for r in rows if r[1] == "floor"}):
        floor = next(med for s, o, _, (med, _) in rows if s == size and o == "floor")
        for name in ("samix.Mixup batch", "samix.mix out=x"):
            med = next(m for s, o, nm, (m, _) in rows if s == size and o == "mixup" and nm == name)
            print(f"  {size} mixup: {name} {med:.1f} µs / one memory pass {floor:.1f} µs = {med / floor:.2f}x "
                  f"(goal <= 1.2x)")
    for _, _, name, (med, _) in (r for r in rows if r[1] == "fixed"):
        print(f"  fixed cost per call: {name} {med:.1f} µs (goal <= 5 µs)")
    print("\nratios (reference median / samix median):")
    for size in sorted({r[0] for r in rows if r[1] != "fixed"}):
        for op in ("mixup", "cutmix"):
            refs = [r for r in ref["results"] if r["size"] == size and r["op"] == op]
            batch_refs = [r for r in refs if "mode=pair" not in r["variant"] and "mode=elem" not in r["variant"]]
            fastest = min(batch_refs, key=lambda r: r["us_median"])
            ours = {name: med for s, o, name, (med, _) in rows if s == size and o == op}
            floor = next(med for s, o, _, (med, _) in rows if s == size and o == "floor")
            sb = min(ours["samix.MixPolicy in place"], ours["samix.Mixup batch"])

            def cap(reference):
                # Mixup rewrites every value, so one single-threaded pass over the batch bounds any in-place
                # single-threaded mixup from below; CutMix only touches its boxes, so it has no such bound.
                if op != "mixup" or a.threads != 1:
                    return ""
                return (f" (one single-threaded memory pass {floor:.1f} µs caps any single-threaded in-place "
                        f"mixup at {reference['us_median'] / floor:.1f}x)")
            print(f"  {size} {op}: batch mode: fastest reference ({fastest['library']} {fastest['variant']}) "
                  f"{fastest['us_median']:.1f} µs vs samix {sb:.1f} µs -> {fastest['us_median'] / sb:.1f}x" + cap(fastest))
            for mode in ("pair", "elem"):
                t = [r for r in refs if r["library"] == "timm" and f"mode={mode}" in r["variant"]]
                if t:
                    print(f"  {size} {op}: timm {mode} {t[0]['us_median']:.1f} µs vs samix.Mixup {mode} "
                          f"{ours['samix.Mixup ' + mode]:.1f} µs -> {t[0]['us_median'] / ours['samix.Mixup ' + mode]:.1f}x"
                          " (goal >= 100x)"
                          + cap(t[0]))


if __name__ == "__main__":
    main()
