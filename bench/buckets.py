#!/usr/bin/env python3
"""Does overlapping the gradient all-reduce with backward pay? (issue 13)

Runs ``mpirun -np R samix-bench scale`` per model and objective with each ``--bucket-cap-mb`` in
``--caps`` (0 = one all-reduce after backward, the reference of the ratio; 25 = DDP's default
buckets, the first of 1 MiB), interleaved per round so every setting sees the same machine state, and
prints the median step time, the time per step this rank spent inside MPI calls (a blocking
all-reduce; with buckets the launches, polls and the final wait, i.e. the communication backward did
not hide) and the ratio of step times against cap 0.

    python3 bench/buckets.py [--models resnet20,resnet18] [--mixes vanilla] [--caps 0,25,1,0.25] [--rounds 3]
                             [--btl self,tcp]   # TCP loopback: communication that costs more than shared memory
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaling  # noqa: E402
from scaling import ROOT, isa, run_json  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samix-bench", default=os.path.join(ROOT, ".build", "release", "samix-bench"))
    ap.add_argument("--models", default="resnet20,resnet18")
    ap.add_argument("--mixes", default="vanilla")
    ap.add_argument("--caps", default="0,25,1,0.25", help="--bucket-cap-mb values; the first is the reference")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads per rank")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--btl", default=scaling.MPI_ENV["OMPI_MCA_btl"], help="Open MPI transports (OMPI_MCA_btl)")
    a = ap.parse_args()
    scaling.MPI_ENV["OMPI_MCA_btl"] = a.btl
    caps = a.caps.split(",")
    rows = []
    for model in a.models.split(","):
        for mix in a.mixes.split(","):
            runs = {c: [] for c in caps}
            for r in range(a.rounds):
                for c in caps:
                    runs[c].append(run_json(["mpirun", "-np", str(a.ranks), a.samix_bench, "scale", "--model", model,
                                             "--mix", mix, "--batch", str(a.batch), "--iters", str(a.iters),
                                             "--threads", str(a.threads), "--bucket-cap-mb", c, "--json"]))
                    x = runs[c][-1]
                    print(f"round {r} {model} {mix} cap {c}: {x['step_ms_median']:.1f} ms/step, "
                          f"MPI {x['collective_ms_per_step']:.1f} ms/step, {x['buckets']} buckets", file=sys.stderr)
            ref = statistics.median(x["step_ms_median"] for x in runs[caps[0]])
            for c in caps:
                ms = statistics.median(x["step_ms_median"] for x in runs[c])
                rows.append(dict(model=model, mix=mix, cap=c, buckets=runs[c][0]["buckets"], ms=ms,
                                 mpi=statistics.median(x["collective_ms_per_step"] for x in runs[c]),
                                 per_round=[x["step_ms_median"] for x in runs[c]], ratio=ref / ms,
                                 grad_mb=runs[c][0]["gradient_bytes"] / 1e6))
    print(f"# gradient buckets vs one all-reduce after backward: {isa()} host, {os.cpu_count()} cores, "
          f"{a.ranks} ranks × {a.threads} thread(s), global batch {a.batch}, btl {a.btl}, "
          f"median of {a.rounds} interleaved rounds")
    print("| model | mix | gradient MB | --bucket-cap-mb | buckets | step ms | step ms per round | "
          "in MPI ms/step | speed vs cap 0 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rounds = " / ".join(f"{v:.0f}" for v in r["per_round"])
        print(f"| {r['model']} | {r['mix']} | {r['grad_mb']:.1f} | {r['cap']} | {r['buckets']} | {r['ms']:.1f} | "
              f"{rounds} | {r['mpi']:.1f} | {r['ratio']:.3f}× |")


if __name__ == "__main__":
    main()
