#!/usr/bin/env python3
"""Before/after table of the engine's own benchmarks: two ``samix-bench`` binaries (e.g. the commit
before a change and after it), run interleaved in one invocation so both see the same machine state.

    python3 bench/compare_builds.py --before OLD/samix-bench --after .build/release/samix-bench \\
        [--rounds 3] [--models resnet20,resnet18] [--mixes none,mixup,samix] [--ops-size 32]

Per round and model/mix: ``samix-bench step --json`` (training step, median of --iters) with each binary,
alternating which goes first; then ``samix-bench ops --json`` once per binary per round. The table gives the
median over rounds and after/before ratios of time (< 1 = after is faster). Pause background jobs first.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()
    return json.loads(out[-1])


def isa():
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    return "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else platform.machine())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="resnet20,resnet18")
    ap.add_argument("--mixes", default="none,mixup,samix")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--ops-size", default="32")
    a = ap.parse_args()
    bins = {"before": a.before, "after": a.after}
    steps = {}   # (model, mix, which) -> [ms]
    ops = {}     # (policy, which) -> [µs]
    for r in range(a.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for model in a.models.split(","):
            for mix in a.mixes.split(","):
                for which in order:
                    cmd = [bins[which], "step", "--model", model, "--batch", str(a.batch), "--threads", str(a.threads),
                           "--iters", str(a.iters), "--json"] + ([] if mix == "none" else ["--mix", mix])
                    steps.setdefault((model, mix, which), []).append(run_json(cmd)["step_ms_median"])
        if a.ops_size:
            for which in order:
                res = run_json([bins[which], "ops", "--size", a.ops_size, "--threads", "1", "--json"])
                for row in res["results"]:
                    key = row.get("method") or row.get("name") or row.get("policy")
                    val = row.get("median_us") or row.get("median")
                    ops.setdefault((key, which), []).append(val)
    print(f"host ISA {isa()}, {os.cpu_count()} CPUs; before = {a.before}; after = {a.after}; "
          f"{a.rounds} rounds, medians over rounds")
    print(f"{'training step (batch %d, %d threads)' % (a.batch, a.threads):44} {'before ms':>10} {'after ms':>10} {'after/before':>12}")
    for (model, mix, which), v in sorted(steps.items()):
        if which != "before":
            continue
        b, f = statistics.median(v), statistics.median(steps[(model, mix, "after")])
        print(f"{model + ' ' + mix:44} {b:10.1f} {f:10.1f} {f / b:12.3f}")
    if ops:
        print(f"{'mixing call (ops, %s px, 1 thread)' % a.ops_size:44} {'before µs':>10} {'after µs':>10} {'after/before':>12}")
        for (name, which), v in sorted(ops.items()):
            if which != "before" or (name, "after") not in ops:
                continue
            b, f = statistics.median(v), statistics.median(ops[(name, "after")])
            print(f"{name:44} {b:10.1f} {f:10.1f} {f / b:12.3f}")


if __name__ == "__main__":
    main()
