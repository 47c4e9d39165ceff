#!/usr/bin/env python3
"""Data-parallel scaling on this machine, and a model of it on a cluster.

Measures, in one invocation and interleaved per round, ``samix-bench scale`` as 1 rank × T threads
and as ``mpirun -np R`` ranks × T/R threads (same global batch), for each model and objective:
global images/s, time per step inside collectives (all-reduce of the gradients, plus waiting for
the slower rank), and the gradient size. Then it models ring all-reduce on a cluster of 2-core
nodes from the measured figures (weak scaling: every node trains ``--node-batch`` images per step):

    t_step(N) = t_compute + (1 − overlap) · 2 (N − 1) / N · S / BW + 2 (N − 1) · latency

with t_compute the 1-rank × T-thread step time at the node batch, S the gradient bytes, BW the link
bandwidth; efficiency = t_compute / t_step(N), and the wall-clock of a paper-scale run
(CIFAR-100, 50,000 images × ``--epochs``) = steps / N × t_step(N).

    python3 bench/scaling.py [--models resnet20,resnet18] [--mixes vanilla,samix] [--rounds 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader",
           "OMPI_MCA_pml": "ob1", "OMPI_MCA_oob_tcp_if_include": "lo", "OMPI_MCA_rmaps_base_oversubscribe": "1",
           "HWLOC_COMPONENTS": "-gl"}


def run_json(cmd):
    env = dict(os.environ, **MPI_ENV)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out[out.index("{"):])


def isa():
    flags = open("/proc/cpuinfo").read()
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "pre-AVX2"


def model_cluster(t_compute, grad_bytes, nodes, gbps, overlap, latency, steps):
    bw = gbps * 1e9 / 8
    comm = 2 * (nodes - 1) / nodes * grad_bytes / bw + 2 * (nodes - 1) * latency
    t_step = t_compute + (1 - overlap) * comm
    return t_compute / t_step, steps / nodes * t_step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samix-bench", default=os.path.join(ROOT, ".build", "release", "samix-bench"))
    ap.add_argument("--models", default="resnet20,resnet18")
    ap.add_argument("--mixes", default="vanilla,samix")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="threads of the 1-rank run (= ranks × threads per rank)")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--node-batch", type=int, default=128, help="images per node per step in the cluster model")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--overlap", type=float, default=0.0,
                    help="share of the all-reduce hidden behind backward in the model (0: none, as measured today)")
    ap.add_argument("--latency", type=float, default=30e-6, help="seconds per message hop on Ethernet")
    a = ap.parse_args()
    per_rank = max(a.threads // a.ranks, 1)
    rows = []
    for model in a.models.split(","):
        for mix in a.mixes.split(","):
            one, many = [], []
            common = ["scale", "--model", model, "--mix", mix, "--batch", str(a.batch), "--iters", str(a.iters), "--json"]
            for r in range(a.rounds):
                one.append(run_json([a.samix_bench, *common, "--threads", str(a.threads)]))
                many.append(run_json(["mpirun", "-np", str(a.ranks), a.samix_bench, *common, "--threads", str(per_rank)]))
                print(f"round {r} {model} {mix}: 1×{a.threads} {one[-1]['images_per_second']:.1f} img/s, "
                      f"{a.ranks}×{per_rank} {many[-1]['images_per_second']:.1f} img/s "
                      f"(collectives {many[-1]['collective_ms_per_step']:.1f} ms/step)", file=sys.stderr)
            med = lambda runs, k: statistics.median(x[k] for x in runs)
            rows.append(dict(model=model, mix=mix, one_ips=med(one, "images_per_second"),
                             many_ips=med(many, "images_per_second"), one_ms=med(one, "step_ms_median"),
                             many_ms=med(many, "step_ms_median"), comm_ms=med(many, "collective_ms_per_step"),
                             grad_bytes=one[0]["gradient_bytes"]))
    print(f"# data-parallel scaling, {isa()} host, {os.cpu_count()} cores, global batch {a.batch}, "
          f"median of {a.rounds} interleaved rounds")
    print(f"| model | mix | 1 rank × {a.threads} thr img/s | {a.ranks} ranks × {per_rank} thr img/s | ratio | "
          f"collectives ms/step ({a.ranks} ranks) | share of step | gradient MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['mix']} | {r['one_ips']:.1f} | {r['many_ips']:.1f} | "
              f"{r['many_ips'] / r['one_ips']:.2f}× | {r['comm_ms']:.1f} | {r['comm_ms'] / r['many_ms']:.0%} | "
              f"{r['grad_bytes'] / 1e6:.1f} |")
    steps = 50000 * a.epochs // a.node_batch
    print(f"\n# ring all-reduce model: 2-core nodes, {a.node_batch} images/node/step (weak scaling), "
          f"CIFAR-100 {a.epochs} epochs, overlap {a.overlap:.0%}, latency {a.latency * 1e6:.0f} µs/hop")
    print("| model | mix | t_compute s/step | nodes | 10 Gb/s eff. | 10 Gb/s wall-clock h | 25 Gb/s eff. | 25 Gb/s wall-clock h |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        t_compute = r["one_ms"] / 1000 * a.node_batch / a.batch
        for nodes in (8, 32, 64):
            e10, w10 = model_cluster(t_compute, r["grad_bytes"], nodes, 10, a.overlap, a.latency, steps)
            e25, w25 = model_cluster(t_compute, r["grad_bytes"], nodes, 25, a.overlap, a.latency, steps)
            print(f"| {r['model']} | {r['mix']} | {t_compute:.3f} | {nodes} | {e10:.3f} | {w10 / 3600:.1f} | "
                  f"{e25:.3f} | {w25 / 3600:.1f} |")


if __name__ == "__main__":
    main()
