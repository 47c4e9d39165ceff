"""Data-parallel training on Open MPI (``mpirun -np 2``, loopback and shared memory only).

Single-process behaviour (no MPI loaded, clear errors) always runs; the multi-rank tests need
``mpirun`` (Debian ``openmpi-bin``, installed by ``scripts/test.sh``) and are skipped with the reason
printed when it is missing, except under CI (``CI=true``), where a missing mpirun fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import samix
from samix import distributed as dist
from samix.errors import DistributedError

BENCH = str(Path(sys.executable).parent / "samix-bench")
FASHION = "/usr/share/datasets/fashion-mnist"

#: Open MPI on this machine only: loopback TCP for the launcher, shared memory between ranks.
MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_btl": "self,vader", "OMPI_MCA_pml": "ob1", "OMPI_MCA_oob_tcp_if_include": "lo",
    "OMPI_MCA_rmaps_base_oversubscribe": "1", "HWLOC_COMPONENTS": "-gl",
}


def _mpirun() -> str:
    exe = shutil.which("mpirun")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mpirun is missing on CI (scripts/test.sh installs openmpi-bin)")
        pytest.skip("mpirun not installed (apt-get install openmpi-bin): multi-rank tests skipped")
    return exe


def _env(**extra: str) -> dict:
    env = dict(os.environ)
    env.update(MPI_ENV)
    env.pop("SAMIX_DISTRIBUTED", None)
    env.update(extra)
    return env


def _run(cmd: list, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(**env))


def _fashion() -> str:
    if not Path(FASHION, "train-labels-idx1-ubyte.gz").exists():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    return FASHION


def _train_args(ckpt: Path, *extra: str, mix: str = "vanilla", epochs: int = 1, subset: int = 96,
                lr: str = "0.02") -> list:
    return [BENCH, "train", "--dataset", "fashion-mnist", "--data", _fashion(), "--model", "resnet20",
            "--epochs", str(epochs), "--batch", "32", "--train-subset", str(subset), "--test-subset", "64",
            "--threads", "1", "--lr", lr, "--json", "--mix", mix, "--checkpoint", str(ckpt), *extra]


def _read_safetensors(path: Path) -> dict:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + s:8 + n + e], dtype=np.float32).reshape(v["shape"])
    return out


def _model_distance(a: Path, b: Path) -> float:
    """‖a − b‖ / ‖a‖ over all model tensors (parameters and BatchNorm statistics) concatenated."""
    ta, tb = _read_safetensors(a), _read_safetensors(b)
    keys = sorted(k for k in ta if k.startswith("model."))
    assert keys and set(keys) <= set(tb)
    va = np.concatenate([ta[k].ravel() for k in keys]).astype(np.float64)
    vb = np.concatenate([tb[k].ravel() for k in keys]).astype(np.float64)
    return float(np.linalg.norm(va - vb) / np.linalg.norm(va))


def _ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


# -- one process ------------------------------------------------------------------------------------

def test_single_process_is_rank_0_of_1_and_never_loads_mpi():
    code = textwrap.dedent("""
        import numpy as np, samix
        from samix import distributed as d
        assert (d.rank(), d.size(), d.is_main(), d.is_distributed()) == (0, 1, True, False)
        d.barrier()
        a = np.arange(5, dtype=np.float32)
        r = d.allreduce(a)
        assert r.dtype == np.float32 and (r == a).all() and r is not a
        assert d.allreduce(3) == 3 and d.allreduce(np.int64(4), "max") == 4 and d.allreduce(2.0, "mean") == 2.0
        t = samix.Trainer(samix.models.create("resnet20", num_classes=2, in_channels=1))
        assert t.distributed is False and "ranks=" not in repr(t)
        maps = open("/proc/self/maps").read()
        assert "libmpi" not in maps, "MPI must not be loaded without mpirun"
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_"))}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_trainer_rejects_a_bad_bucket_cap():
    model = samix.models.Model("resnet20", num_classes=2, in_channels=1, seed=0)
    with pytest.raises(ValueError, match="bucket_cap_mb must be a number of MiB >= 0"):
        samix.Trainer(model, bucket_cap_mb=-1)
    with pytest.raises(ValueError, match="bucket_cap_mb must be finite"):
        samix.Trainer(model, bucket_cap_mb=float("inf"))
    assert samix.Trainer(model, bucket_cap_mb=0).distributed is False   # one process: nothing to reduce


def test_allreduce_rejects_bad_arguments():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.allreduce(np.zeros(2), "prod")
    with pytest.raises(ValueError, match="needs numbers"):
        dist.allreduce(np.array(["a"]))


def test_asking_for_mpi_without_open_mpi_is_a_clear_error():
    code = "import samix; samix.distributed.size()"
    env = dict(os.environ, SAMIX_DISTRIBUTED="mpi", SAMIX_MPI_LIBRARY="/nonexistent/libmpi.so.40")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0
    assert "DistributedError" in r.stderr and "/nonexistent/libmpi.so.40" in r.stderr and "Open MPI" in r.stderr
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, SAMIX_DISTRIBUTED="maybe"))
    assert bad.returncode != 0 and "SAMIX_DISTRIBUTED must be auto, mpi or off" in bad.stderr


def test_distributed_error_is_exported():
    assert issubclass(DistributedError, samix.SamixError) and issubclass(DistributedError, RuntimeError)


# -- two ranks: the CLI -----------------------------------------------------------------------------

@pytest.mark.parametrize("mix, extra_single", [("vanilla", []), ("mixup", []), ("cutmix", []),
                                                ("samix", ["--pairing-groups", "2"])])
def test_two_ranks_with_sync_bn_reproduce_one_process(tmp_path, mix, extra_single):
    """3 steps of a global batch of 32: 2 ranks × 16 with --sync-bn against 1 process × 32 (SAMix pairs
    inside each rank's shard, so its 1-process reference pairs inside 2 groups). Tolerance: relative
    distance of all model tensors < 1e-4 (float summation order gives ~3e-6); per-rank BatchNorm gives
    ~1e-2, so the test fails if synchronization or gradient averaging breaks."""
    mpirun = _mpirun()
    one, two, per_rank = tmp_path / "one", tmp_path / "two", tmp_path / "per_rank"
    _ok(_run(_train_args(one, "--sync-bn", *extra_single, mix=mix, lr="0.005")))
    r = _ok(_run([mpirun, "-np", "2", *_train_args(two, "--sync-bn", mix=mix, lr="0.005")]))
    assert "data-parallel over 2 ranks" in r.stderr and "BatchNorm synchronized" in r.stderr
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("{")]) == 1, "only rank 0 prints"
    _ok(_run([mpirun, "-np", "2", *_train_args(per_rank, mix=mix, lr="0.005")]))
    synced, unsynced = _model_distance(one, two), _model_distance(one, per_rank)
    print(f"{mix}: relative distance to 1 process: --sync-bn {synced:.1e}, per-rank BN {unsynced:.1e}")  # pytest -s
    assert synced < 1e-4
    assert unsynced > 1e-3


@pytest.mark.parametrize("mix", ["vanilla", "samix"])
def test_bucketed_allreduce_during_backward_equals_one_allreduce_after_it(tmp_path, mix):
    """Gradient buckets whose all-reduce starts during backward (DDP's overlap; 0.01 MiB caps make
    ~30 buckets for ResNet-20) give bit-identical parameters to one flat all-reduce after backward
    (--bucket-cap-mb 0): with 2 ranks each element is one float sum a + b either way. SAMix covers
    the Mixer's parameters and the momentum network."""
    mpirun = _mpirun()
    flat, bucketed = tmp_path / "flat", tmp_path / "bucketed"
    _ok(_run([mpirun, "-np", "2", *_train_args(flat, "--bucket-cap-mb", "0", mix=mix)]))
    _ok(_run([mpirun, "-np", "2", *_train_args(bucketed, "--bucket-cap-mb", "0.01", mix=mix)]))
    a, b = _read_safetensors(flat), _read_safetensors(bucketed)
    assert a.keys() == b.keys()
    differing = [k for k in a if not np.array_equal(a[k], b[k])]
    assert differing == [], differing[:5]
    r = _ok(_run([mpirun, "-np", "2", BENCH, "scale", "--model", "resnet20", "--batch", "8", "--size", "16",
                  "--warmup", "1", "--iters", "1", "--threads", "1", "--bucket-cap-mb", "0.01", "--json"]))
    assert json.loads(r.stdout.strip().splitlines()[-1])["buckets"] > 20


def test_resume_with_the_same_ranks_is_bit_identical_and_with_other_ranks_says_so(tmp_path):
    mpirun = _mpirun()
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _ok(_run([mpirun, "-np", "2", *_train_args(straight, "--sync-bn", mix="mixup", epochs=2, subset=64)]))
    _ok(_run([mpirun, "-np", "2", *_train_args(resumed, "--sync-bn", "--stop-after", "1", mix="mixup", epochs=2, subset=64)]))
    r = _ok(_run([mpirun, "-np", "2", *_train_args(resumed, "--sync-bn", mix="mixup", epochs=2, subset=64)]))
    assert "resuming" in r.stderr and "not bit-identically" not in r.stderr
    a, b = _read_safetensors(straight), _read_safetensors(resumed)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # The first epoch again, then the second on one process: continues, and says it is not identical.
    other = tmp_path / "other"
    _ok(_run([mpirun, "-np", "2", *_train_args(other, "--sync-bn", "--stop-after", "1", mix="mixup", epochs=2, subset=64)]))
    r = _ok(_run(_train_args(other, "--sync-bn", mix="mixup", epochs=2, subset=64)))
    assert "written by 2 rank(s) with 1" in r.stderr and "not bit-identically" in r.stderr


def test_ranks_with_different_models_stop_naming_the_difference(tmp_path):
    mpirun = _mpirun()
    a = _train_args(tmp_path / "a")
    b = _train_args(tmp_path / "b")
    b[b.index("resnet20")] = "resnet32"
    t0 = time.monotonic()
    r = _run([mpirun, "-np", "1", *a, ":", "-np", "1", *b], timeout=120)
    assert r.returncode != 0
    assert "the ranks disagree on the model and run settings" in r.stderr
    assert "rank 1 has 'cli.model=resnet32' where rank 0 has 'cli.model=resnet20'" in r.stderr
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "a").exists(), "no checkpoint from disagreeing ranks"


def _rank_pids(marker: str) -> dict:
    """PID by Open MPI rank of the processes whose command line contains marker."""
    out = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if marker not in (p / "cmdline").read_bytes().decode(errors="replace"):
                continue
            env = (p / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for kv in env:
            if kv.startswith(b"OMPI_COMM_WORLD_RANK="):
                out[int(kv.split(b"=", 1)[1])] = int(p.name)
    return out


def _start_and_disturb(tmp_path: Path, sig: int, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """Starts a 2-rank run, waits until the ranks train, sends `sig` to rank 1, returns the result."""
    mpirun = _mpirun()
    ckpt = tmp_path / "victim-run"
    args = _train_args(ckpt, mix="mixup", epochs=50, subset=320)
    proc = subprocess.Popen([mpirun, "-np", "2", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(**env))
    try:
        deadline = time.monotonic() + 60
        pids: dict = {}
        while time.monotonic() < deadline and len(pids) < 2:
            time.sleep(0.2)
            pids = _rank_pids(str(ckpt))
        assert len(pids) == 2, "ranks did not start"
        time.sleep(4)  # inside the first epochs: data loaded, steps running
        t0 = time.monotonic()
        os.kill(pids[1], sig)
        out, err = proc.communicate(timeout=90)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_killed_rank_stops_every_rank(tmp_path):
    r, seconds = _start_and_disturb(tmp_path, signal.SIGKILL)
    assert r.returncode != 0
    assert "exited on signal 9" in r.stderr or "killed" in r.stderr.lower(), r.stderr
    assert seconds < 60


def test_a_hung_rank_aborts_the_job_after_the_timeout(tmp_path):
    r, seconds = _start_and_disturb(tmp_path, signal.SIGSTOP, SAMIX_DISTRIBUTED_TIMEOUT="3")
    assert r.returncode != 0
    assert "rank 0 of 2: waited more than 3.0 s in" in r.stderr and "aborting the job" in r.stderr, r.stderr
    assert seconds < 60


# -- two ranks: Python ------------------------------------------------------------------------------

PY_SCRIPT = """
import json, sys, numpy as np, samix
from samix import distributed as dist
rng = np.random.default_rng(0)
x = rng.integers(0, 256, size=(64, 1, 12, 12), dtype=np.uint8)
y = (x.reshape(64, -1).mean(1) > 127.5).astype(np.int64)
t = samix.Trainer(samix.models.create("resnet20", num_classes=2, in_channels=1), mix="mixup", seed=3,
                  sync_bn=sys.argv[2] == "sync")
h = t.fit(x, y, epochs=2, batch_size=16, val=(x[:20], y[:20]))
ev = t.evaluate(x[:30], y[:30])
state = {k: v for k, v in t.model.state_dict().items()}
np.savez(sys.argv[1] + f".rank{dist.rank()}.npz", **state)
total = dist.allreduce(np.array([1.0, dist.rank()]))
with open(sys.argv[1] + f".rank{dist.rank()}.json", "w") as f:   # (ranks' stdout lines may interleave)
    json.dump([dist.rank(), dist.size(), t.distributed, h[-1]["loss"], ev["accuracy"], total.tolist()], f)
"""


@pytest.mark.parametrize("mode", ["sync", "per-rank"])
def test_python_script_under_mpirun_trains_data_parallel_with_identical_ranks(tmp_path, mode):
    mpirun = _mpirun()
    script = tmp_path / "train.py"
    script.write_text(PY_SCRIPT)
    out = tmp_path / "state"
    r = _ok(_run([mpirun, "-np", "2", sys.executable, str(script), str(out), mode], timeout=300))
    results = [json.loads(Path(f"{out}.rank{k}.json").read_text()) for k in (0, 1)]
    assert [x[:3] for x in results] == [[0, 2, True], [1, 2, True]]
    assert results[0][3:] == results[1][3:], "loss, evaluation and allreduce agree on every rank"
    assert results[0][5] == [2.0, 1.0]
    a, b = np.load(f"{out}.rank0.npz"), np.load(f"{out}.rank1.npz")
    assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


# -- two ranks: self-supervised ---------------------------------------------------------------------

def _ssl_args(ckpt: Path, *extra: str, method: str = "moco", epochs: int = 1) -> list:
    return [BENCH, "ssl", "--data", _fashion(), "--train-subset", "96", "--test-subset", "64", "--model", "resnet20",
            "--epochs", str(epochs), "--batch", "32", "--queue", "64", "--threads", "1", "--json", "--method", method,
            "--lr", "0.01", "--knn-k", "5", "--checkpoint", str(ckpt), *extra]


def test_probe_over_two_ranks_shares_the_feature_extraction_and_equals_one_process(tmp_path):
    """`samix-bench probe` under mpirun: each rank extracts half of the features, they are
    all-gathered, every rank fits the same probe, rank 0 prints — the same kNN and probe figures as
    one process."""
    mpirun = _mpirun()
    bb = tmp_path / "backbone"
    _ok(_run(_ssl_args(tmp_path / "ck", "--save", str(bb))))
    args = [BENCH, "probe", "--data", _fashion(), "--train-subset", "96", "--test-subset", "64", "--backbone", str(bb),
            "--probe-epochs", "3", "--knn-k", "5", "--json"]
    one = _ok(_run(args)).stdout.strip().splitlines()
    two = _ok(_run([mpirun, "-np", "2", *args])).stdout.strip().splitlines()
    assert len(one) == 1 and len(two) == 1, two
    strip_time = lambda line: {k: v for k, v in json.loads(line).items() if k != "eval_seconds"}
    assert strip_time(two[0]) == strip_time(one[0])


def _ssl_distance(a: Path, b: Path) -> tuple[float, float]:
    """(relative distance of the query encoder's parameters, max |Δ| of the queue)."""
    ta, tb = _read_safetensors(a), _read_safetensors(b)
    keys = sorted(k for k in ta if k.startswith("query.") and "running" not in k)
    va = np.concatenate([ta[k].ravel() for k in keys]).astype(np.float64)
    vb = np.concatenate([tb[k].ravel() for k in keys]).astype(np.float64)
    return float(np.linalg.norm(va - vb) / np.linalg.norm(va)), float(np.abs(ta["queue.keys"] - tb["queue.keys"]).max())


def test_moco_shuffle_bn_across_two_ranks_equals_one_process_with_twice_the_groups(tmp_path):
    """2 ranks × 2 shuffle-BN groups each = 1 process × 4 groups (measured ~3e-9 relative; the queue of
    all-gathered keys to 2e-7). 1 process × 2 groups — shuffle-BN not spanning the ranks — is ~2e-4 away."""
    mpirun = _mpirun()
    one4, one2, two = tmp_path / "one4", tmp_path / "one2", tmp_path / "two"
    _ok(_run(_ssl_args(one4, "--shuffle-bn-groups", "4")))
    _ok(_run(_ssl_args(one2, "--shuffle-bn-groups", "2")))
    r = _ok(_run([mpirun, "-np", "2", *_ssl_args(two, "--shuffle-bn-groups", "2")]))
    assert "data-parallel over 2 ranks" in r.stderr
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("{")]) == 1, "only rank 0 prints"
    params, queue = _ssl_distance(one4, two)
    params2, queue2 = _ssl_distance(one2, two)
    print(f"MoCo 2 ranks × 2 groups vs 1 × 4: params {params:.1e}, queue {queue:.1e}; vs 1 × 2: {params2:.1e}, {queue2:.1e}")
    assert params < 1e-6 and queue < 1e-5
    assert params2 > 1e-5 and queue2 > 1e-3


@pytest.mark.parametrize("method", ["samix-i", "samix-c"])
def test_samix_ssl_trains_on_two_ranks_with_identical_state(tmp_path, method):
    """Two epochs; after each the engine proves every rank holds identical encoders, Mixer, heads and
    queue (else the run fails), and SAMix-C clusters all-gathered features."""
    mpirun = _mpirun()
    r = _ok(_run([mpirun, "-np", "2", *_ssl_args(tmp_path / "ck", "--clusters", "4", method=method, epochs=2)]))
    records = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert [x["epoch"] for x in records] == [1, 2] and "knn_top1" in records[-1]
    if method == "samix-c":
        assert "kmeans_inertia" in records[0]
    assert (tmp_path / "ck").exists()


def test_python_moco_under_mpirun_is_data_parallel(tmp_path):
    mpirun = _mpirun()
    script = tmp_path / "ssl.py"
    script.write_text(textwrap.dedent("""
        import json, sys, numpy as np, samix
        from samix import distributed as dist
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, size=(64, 1, 12, 12), dtype=np.uint8)
        y = rng.integers(0, 2, size=64)
        m = samix.ssl.MoCo("resnet20", in_channels=1, queue_size=32, seed=1)
        h = m.fit(x, y, epochs=1, batch_size=16, val=(x[:16], y[:16]), knn_k=3)
        with open(sys.argv[1] + f".rank{dist.rank()}.json", "w") as f:
            json.dump([dist.size(), h[-1]["loss"], h[-1].get("knn_top1")], f)
    """))
    out = tmp_path / "res"
    _ok(_run([mpirun, "-np", "2", sys.executable, str(script), str(out)], timeout=300))
    a, b = (json.loads(Path(f"{out}.rank{k}.json").read_text()) for k in (0, 1))
    assert a == b and a[0] == 2


def test_ranks_given_different_data_stop_naming_the_data(tmp_path):
    mpirun = _mpirun()
    script = tmp_path / "bad.py"
    script.write_text(textwrap.dedent("""
        import sys, numpy as np, samix
        from samix import distributed as dist
        rng = np.random.default_rng(dist.rank())          # a bug: each rank loads other data
        x = rng.integers(0, 256, size=(32, 1, 8, 8), dtype=np.uint8)
        y = rng.integers(0, 2, size=32)
        t = samix.Trainer(samix.models.create("resnet20", num_classes=2, in_channels=1))
        try:
            t.fit(x, y, epochs=1, batch_size=16, verbose=False, progress=False)
        except samix.errors.DistributedError as e:
            open(sys.argv[1] + f".rank{dist.rank()}", "w").write(str(e))
    """))
    out = tmp_path / "err"
    _ok(_run([mpirun, "-np", "2", sys.executable, str(script), str(out)], timeout=120))
    for k in (0, 1):
        msg = Path(f"{out}.rank{k}").read_text()
        assert "the ranks disagree on the training data" in msg and "rank 1 has" in msg
