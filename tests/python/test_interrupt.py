"""Ctrl-C in Trainer.fit (issue 15): a real SIGINT sent to a subprocess after its first training step.
The engine stops after the running step, KeyboardInterrupt is raised quickly, the epoch is not
counted, history holds only finished epochs, and a later fit continues the interrupted epoch so that
the weights equal those of an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import numpy as np
import samix, samix.training

class StepBar:                      # stands in for tqdm: reports each step to the parent on stdout
    def __init__(self, *a, **k): pass
    def update(self, n): print("step", flush=True)
    def set_postfix(self, **k): pass
    def close(self): pass

g = np.random.default_rng(0)
x = g.integers(0, 256, (2000, 3, 16, 16)).astype(np.uint8)
y = (np.arange(2000) % 10).astype(np.int64)

def trainer():
    return samix.Trainer(samix.models.Model("resnet20", num_classes=10, seed=0), seed=3)

# the reference: two uninterrupted epochs
ref = trainer()
ref.fit(x, y, epochs=2, batch_size=8, progress=False, verbose=False)
ref_weights = ref.model.state_dict()

t = trainer()
samix.training._progress_bar = lambda total, desc, enabled: StepBar()
print("ready", flush=True)
t0 = None
try:
    t.fit(x, y, epochs=2, batch_size=8, verbose=False)
    out = {"raised": False}
except KeyboardInterrupt:
    out = {"raised": True}
out.update(epochs_done=t.epochs_done, steps_done=t.steps_done, history=len(t.history),
           t_after=time.time())
samix.training._progress_bar = lambda total, desc, enabled: None
t.fit(x, y, epochs=2, batch_size=8, progress=False, verbose=False)   # continue
out.update(final_epochs=t.epochs_done, final_steps=t.steps_done, final_history=[r["epoch"] for r in t.history],
           equal=all(np.array_equal(v, ref_weights[k]) for k, v in t.model.state_dict().items()),
           ref_steps=ref.steps_done, ref_loss=ref.history[0]["loss"], loss=t.history[0]["loss"])
print("RESULT " + json.dumps(out), flush=True)
"""


def _interrupt_child(code: str, ready, args: tuple = ()) -> tuple[dict | None, str, float]:
    """Runs ``code`` in a subprocess, sends SIGINT once ``ready(process)`` returns (``ready`` may send
    signals of its own first), and returns the child's ``RESULT`` record, its stderr and the time
    of the last signal."""
    p = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        ready(p)
        sent = time.time()
        os.kill(p.pid, signal.SIGINT)
        result = None
        for line in p.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
        err = p.stderr.read()
        assert p.wait(timeout=300) == 0, err
    finally:
        if p.poll() is None:
            p.kill()
    return result, err, sent


def test_sigint_in_fit_stops_after_the_step_and_fit_continues():
    def two_steps(p):
        assert p.stdout.readline().strip() == "ready"
        steps_seen = 0
        while steps_seen < 2:  # let two steps run, then interrupt
            line = p.stdout.readline()
            assert line, p.stderr.read()
            steps_seen += line.strip() == "step"

    result, err, sent = _interrupt_child(CHILD, two_steps)
    assert result is not None, err
    assert "Exception ignored" not in err, err
    assert result["raised"] is True
    latency = result["t_after"] - sent
    assert latency < 10, f"KeyboardInterrupt came {latency:.1f}s after SIGINT"
    # 250 steps per epoch: stopped inside epoch 1, which is not counted
    assert result["epochs_done"] == 0 and result["history"] == 0
    assert 2 <= result["steps_done"] < 250
    # the later fit continued the epoch: same steps, same loss record, same weights as uninterrupted
    assert result["final_epochs"] == 2 and result["final_history"] == [1, 2]
    assert result["final_steps"] == result["ref_steps"] == 500
    assert result["loss"] == result["ref_loss"]
    assert result["equal"] is True


MOCO_CHILD = r"""
import json, time
import numpy as np
import samix

g = np.random.default_rng(0)
x = g.integers(0, 256, (512, 1, 16, 16)).astype(np.uint8)
moco = samix.ssl.MoCo("resnet20", in_channels=1, queue_size=256, seed=0)
def report(rec):
    print("epoch", flush=True)
try:
    moco.fit(x, epochs=6, batch_size=32, knn_every=0, verbose=False, callbacks=[report])
    out = {"raised": False}
except KeyboardInterrupt:
    out = {"raised": True}
out.update(history=[r["epoch"] for r in moco.history], t_after=time.time())
moco.fit(x, epochs=1, batch_size=32, knn_every=0, verbose=False)
out.update(final_history=[r["epoch"] for r in moco.history])
print("RESULT " + json.dumps(out), flush=True)
"""


def test_sigint_in_moco_fit_stops_at_the_epoch_end():
    def first_epoch(p):
        assert p.stdout.readline().strip() == "epoch", p.stderr.read()

    result, err, sent = _interrupt_child(MOCO_CHILD, first_epoch)
    assert result is not None and result["raised"] is True, err
    assert "Exception ignored" not in err, err
    n = len(result["history"])
    assert 1 <= n < 6 and result["history"] == list(range(1, n + 1))  # every finished epoch, in order
    assert result["t_after"] - sent < 60
    assert result["final_history"] == list(range(1, n + 2))  # a later fit works and appends


MOCO_STEP_CHILD = r"""
import json, sys, time
import numpy as np
import samix

ckpt = sys.argv[1]
g = np.random.default_rng(0)
x = g.integers(0, 256, (1024, 1, 16, 16)).astype(np.uint8)    # 32 steps per epoch
def moco():
    return samix.ssl.MoCo("resnet20", in_channels=1, queue_size=256, seed=0)

ref = moco()   # the reference: two uninterrupted epochs
ref_h = ref.fit(x, epochs=2, batch_size=32, knn_every=0, verbose=False)
ref_f = ref.features(x[:4])

m = moco()
def report(rec):
    print("epoch", flush=True)
try:
    m.fit(x, epochs=2, batch_size=32, knn_every=0, verbose=False, callbacks=[report], checkpoint=ckpt)
    out = {"raised": False}
except KeyboardInterrupt:
    out = {"raised": True}
out.update(history=[r["epoch"] for r in m.history], t_after=time.time())
# the same call with the same checkpoint continues the run, in this object
h = m.fit(x, epochs=2, batch_size=32, knn_every=0, verbose=False, checkpoint=ckpt)
out.update(final_history=[r["epoch"] for r in m.history], fit_epochs=[r["fit_epoch"] for r in h[1:]],
           loss=h[-1]["loss"], ref_loss=ref_h[-1]["loss"],
           equal=bool(np.array_equal(m.features(x[:4]), ref_f)))
print("RESULT " + json.dumps(out), flush=True)
"""


def test_sigint_in_moco_fit_stops_at_the_next_step_and_the_call_resumes(tmp_path):
    def first_epoch(p):
        assert p.stdout.readline().strip() == "epoch", p.stderr.read()   # then interrupt early in epoch 2

    code = MOCO_STEP_CHILD.replace("ckpt = sys.argv[1]", f"ckpt = {str(tmp_path / 'moco.ckpt')!r}")
    result, err, sent = _interrupt_child(code, first_epoch)
    assert result is not None and result["raised"] is True, err
    assert "Exception ignored" not in err, err
    # stopped inside epoch 2 (32 steps): not counted, not recorded (an epoch-end stop would record it)
    assert result["history"] == [1]
    assert result["t_after"] - sent < 10
    # rerunning the call with its checkpoint continues at epoch 2 and ends as the uninterrupted run
    assert result["final_history"] == [1, 2] and result["fit_epochs"] == [2]
    assert result["loss"] == result["ref_loss"]
    assert result["equal"] is True


EVAL_CHILD = r"""
import json, sys, time
import numpy as np
import samix, samix.ssl

g = np.random.default_rng(0)
small_x = g.integers(0, 256, (64, 1, 8, 8)).astype(np.uint8)
small_y = (np.arange(64) % 4).astype(np.int64)
big_x = np.repeat(small_x, 1600, axis=0)         # 102,400 images: each long call takes many seconds
big_y = np.repeat(small_y, 1600)
model = samix.models.Model("resnet20", num_classes=4, in_channels=1, seed=0)
trainer = samix.Trainer(model, seed=0)
# references on the small set, before any interrupt
ref = dict(evaluate=trainer.evaluate(small_x, small_y, batch_size=8),
           features=samix.ssl.features(model, small_x).tolist(),
           knn=samix.ssl.knn_eval(model, small_x, small_y, small_x, small_y, k=5),
           probe=samix.ssl.linear_probe(model, small_x, small_y, small_x, small_y, epochs=3, batch_size=16))
calls = {
    "evaluate": lambda: trainer.evaluate(big_x, big_y, batch_size=1),
    "features": lambda: samix.ssl.features(model, big_x),
    "knn": lambda: samix.ssl.knn_eval(model, big_x, big_y, big_x, big_y, k=5),
    "probe": lambda: samix.ssl.linear_probe(model, small_x, small_y, small_x, small_y, epochs=1_000_000,
                                            batch_size=1),
}
out = {}
for name in sys.argv[1:]:
    print("ready " + name, flush=True)
    t0 = time.time()
    try:
        calls[name]()
        out[name] = {"raised": False}
    except KeyboardInterrupt:
        out[name] = {"raised": True}
    out[name]["t_after"] = time.time()
    out[name]["seconds"] = time.time() - t0
# nothing the caller keeps changed: the small-set results are the references, bit for bit
out["same"] = dict(evaluate=trainer.evaluate(small_x, small_y, batch_size=8) == ref["evaluate"],
                   features=samix.ssl.features(model, small_x).tolist() == ref["features"],
                   knn=samix.ssl.knn_eval(model, small_x, small_y, small_x, small_y, k=5) == ref["knn"],
                   probe=samix.ssl.linear_probe(model, small_x, small_y, small_x, small_y, epochs=3,
                                                batch_size=16) == ref["probe"])
print("RESULT " + json.dumps(out), flush=True)
"""


def test_sigint_stops_evaluations_knn_and_the_linear_probe_mid_call():
    """Evaluations, feature extraction, kNN and the linear probe have no record callback: the
    engine's per-thread interrupt check stops them between batches (each would run for minutes),
    KeyboardInterrupt is raised quickly, and later calls give the uninterrupted results."""
    names = ["evaluate", "features", "knn", "probe"]
    sent: dict[str, float] = {}

    def each_call(p):   # one SIGINT a second into each call; the last one is sent by _interrupt_child
        for i, name in enumerate(names):
            line = p.stdout.readline()
            assert line.strip() == f"ready {name}", line + p.stderr.read()
            time.sleep(1.0)   # well inside the call
            sent[name] = time.time()
            if i < len(names) - 1:
                os.kill(p.pid, signal.SIGINT)

    result, err, _ = _interrupt_child(EVAL_CHILD, each_call, tuple(names))
    assert result is not None, err
    assert "Exception ignored" not in err, err
    for name in names:
        r = result[name]
        assert r["raised"] is True, (name, r)
        latency = r["t_after"] - sent[name]
        assert latency < 10, f"{name}: KeyboardInterrupt came {latency:.1f}s after SIGINT"
    assert result["same"] == {n: True for n in names}, result["same"]
