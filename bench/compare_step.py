#!/usr/bin/env python3
"""Training-step throughput of samix vs PyTorch on this machine, interleaved in one invocation.

For each round and model it runs ``shared/bench/torch_reference.py step --model M --json`` and
``samix-bench step --model M --json`` back to back (same batch, threads, input shape) and reports
the median over rounds of the per-pair ratio samix/torch for images/s, plus GFLOP/s and peak RSS.

    PY=$(../shared/bench/setup-torch.sh)
    python3 bench/compare_step.py --torch-python "$PY" --rounds 3 [--models resnet20,resnet18]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-python", required=True, help="python of the venv made by shared/bench/setup-torch.sh")
    ap.add_argument("--reference", default=os.path.join(ROOT, "..", "shared", "bench", "torch_reference.py"))
    ap.add_argument("--samix-bench", default=os.path.join(ROOT, ".build", "release", "samix-bench"))
    ap.add_argument("--models", default="resnet20,resnet18")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print the raw pairs as JSON")
    a = ap.parse_args()
    common = ["--batch", str(a.batch), "--threads", str(a.threads), "--in-channels", str(a.in_channels),
              "--size", str(a.size), "--iters", str(a.iters)]
    pairs = {m: [] for m in a.models.split(",")}
    for r in range(a.rounds):
        for m in pairs:
            t = run_json([a.torch_python, a.reference, "step", "--model", m, "--json"] + common)
            tres = t["results"][0]
            s = run_json([a.samix_bench, "step", "--model", m, "--json"] + common)
            pairs[m].append({"torch": tres, "samix": s, "env": t.get("env")})
            print(f"round {r} {m}: torch {tres['images_per_s']:.1f} img/s, samix {s['images_per_second']:.1f} img/s "
                  f"-> {s['images_per_second'] / tres['images_per_s']:.2f}x", file=sys.stderr, flush=True)
    if a.json:
        print(json.dumps(pairs, indent=1))
        return
    print(f"batch {a.batch}, {a.threads} threads, input {a.in_channels}x{a.size}x{a.size}, {a.rounds} interleaved rounds")
    print(f"{'model':10} {'torch img/s':>12} {'samix img/s':>12} {'ratio':>7} {'torch GF/s':>11} {'samix GF/s':>11} "
          f"{'torch RSS MiB':>14} {'samix RSS MiB':>14}")
    for m, ps in pairs.items():
        ratio = statistics.median(p["samix"]["images_per_second"] / p["torch"]["images_per_s"] for p in ps)
        med = lambda f: statistics.median(f(p) for p in ps)
        print(f"{m:10} {med(lambda p: p['torch']['images_per_s']):12.1f} {med(lambda p: p['samix']['images_per_second']):12.1f} "
              f"{ratio:7.2f} {med(lambda p: p['torch']['gflops']):11.1f} {med(lambda p: p['samix']['gflops']):11.1f} "
              f"{med(lambda p: p['torch']['peak_rss_mib']):14.0f} {med(lambda p: p['samix']['peak_rss_mb']):14.0f}")


if __name__ == "__main__":
    main()
