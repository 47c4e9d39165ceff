"""samix_trainer_fit: the supervised fit loop in the engine (issue 12). Its JSON records (per step
and per epoch), a clean stop from the record callback at the next step, argument validation, and
Trainer.fit's history built from those records for uint8 and float data alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

import samix
from samix._lib import RECORD_CALLBACK, check, lib
from samix.datasets import _DatasetHandle
from samix.errors import InvalidArgumentError, InvalidHandleError, ShapeError
from samix._arrays import shape_array


def float_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3).astype(np.int64)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    return x, y


def make(mix="vanilla"):
    m = samix.models.resnet20(num_classes=3, in_channels=1, seed=0)
    return m, samix.Trainer(m, optimizer=samix.optim.SGD(lr=0.05), mix=mix, seed=1)


def engine_fit(tr, x, y, epochs, stop=lambda rec: False, val=None, step_records=1, batch_size=16):
    """Calls samix_trainer_fit on float arrays; returns (status, records)."""
    records = []

    def on_record(_user, text):
        rec = json.loads(text.decode())
        records.append(rec)
        return 1 if stop(rec) else 0

    cb = RECORD_CALLBACK(on_record)
    shape = shape_array(x.shape)
    vargs = (0, None, None, None)
    if val is not None:
        vx, vy = val
        vshape = shape_array(vx.shape)
        vargs = (0, vx.ctypes.data, vshape.ctypes.data, vy.ctypes.data)
    status = lib.samix_trainer_fit(tr.handle, 0, x.ctypes.data, shape.ctypes.data, y.ctypes.data, *vargs,
                                   epochs, batch_size, 0, 500, step_records, cb, None)
    return status, records


def test_records_are_json_per_step_and_per_epoch():
    x, y = float_data()
    m, tr = make()
    with m, tr:
        status, recs = engine_fit(tr, x, y, 2, val=(x, y))
        check(status)
    steps = [r for r in recs if r["type"] == "step"]
    epochs = [r for r in recs if r["type"] == "epoch"]
    assert [(r["epoch"], r["step"]) for r in steps] == [(e, s) for e in (1, 2) for s in range(3)]
    assert all(r["steps"] == 3 and np.isfinite(r["loss"]) and r["lr"] > 0 for r in steps)
    assert [r["epoch"] for r in epochs] == [1, 2] and [r["steps_done"] for r in epochs] == [3, 6]
    assert set(epochs[0]) == {"type", "epoch", "loss", "lr", "seconds", "steps_done", "metrics", "evaluations"}
    assert epochs[0]["evaluations"]["val"]["online"]["count"] == 48
    assert recs.index(epochs[0]) == 3   # the epoch record follows its last step


def test_without_step_records_only_epochs_are_sent():
    x, y = float_data()
    m, tr = make()
    with m, tr:
        status, recs = engine_fit(tr, x, y, 1, step_records=0)
        check(status)
    assert [r["type"] for r in recs] == ["epoch"] and recs[0]["evaluations"] == {}


def test_a_stop_from_the_callback_is_clean_and_the_next_call_continues():
    x, y = float_data()
    m0, ref = make()
    with m0, ref:
        check(engine_fit(ref, x, y, 2)[0])
        ref_weights = m0.state_dict()
    m, tr = make()
    with m, tr:
        status, recs = engine_fit(tr, x, y, 2, stop=lambda r: r["type"] == "step" and r["step"] == 0)
        assert status == 0 and [r["type"] for r in recs] == ["step"]   # stopped after the first step
        assert (tr.epochs_done, tr.steps_done) == (0, 1)
        # at an epoch's last step: the epoch finishes and is recorded, without evaluation
        status, recs = engine_fit(tr, x, y, 2, val=(x, y), stop=lambda r: r["type"] == "step" and r["step"] == 2)
        assert status == 0 and [r["type"] for r in recs] == ["step", "step", "epoch"]
        assert recs[-1]["evaluations"] == {} and (tr.epochs_done, tr.steps_done) == (1, 3)
        # after an epoch record: stops after that epoch
        status, recs = engine_fit(tr, x, y, 2, stop=lambda r: r["type"] == "epoch")
        assert status == 0 and (tr.epochs_done, tr.steps_done) == (2, 6)
        assert all(np.array_equal(v, ref_weights[k]) for k, v in m.state_dict().items())
        # already there: nothing to do
        status, recs = engine_fit(tr, x, y, 2)
        assert status == 0 and recs == []


def test_arguments_are_validated():
    x, y = float_data()
    shape = shape_array(x.shape)
    m, tr = make()
    ds = _DatasetHandle((x * 0).astype(np.uint8), y, 3, "x")
    with m, tr:
        def fit(*data, epochs=1, batch=16, augment=0, eval_batch=500, step_records=0):
            val = data[4:] if len(data) > 4 else (0, None, None, None)
            return lib.samix_trainer_fit(tr.handle, *data[:4], *val, epochs, batch, augment, eval_batch,
                                         step_records, None, None)
        arr = (0, x.ctypes.data, shape.ctypes.data, y.ctypes.data)
        with pytest.raises(InvalidArgumentError, match="not both"):
            check(fit(ds.handle, x.ctypes.data, shape.ctypes.data, y.ctypes.data))
        with pytest.raises(InvalidArgumentError, match="required"):
            check(fit(0, None, None, None))
        with pytest.raises(InvalidArgumentError, match="without x"):
            check(fit(*arr, 0, None, shape.ctypes.data, None))
        for kw, msg in [({"epochs": 0}, "epochs"), ({"batch": 0}, "batch_size"), ({"augment": 2}, "augment"),
                        ({"eval_batch": 0}, "eval_batch_size"), ({"step_records": 5}, "step_records")]:
            with pytest.raises(InvalidArgumentError, match=msg):
                check(fit(*arr, **kw))
        bad = np.zeros((4, 3, 8, 8), np.float32)
        with pytest.raises(ShapeError):
            check(fit(0, bad.ctypes.data, shape_array(bad.shape).ctypes.data, y[:4].ctypes.data))
        small = np.zeros((4, 1, 4, 4), np.float32)
        with pytest.raises(ShapeError, match="validation"):
            check(fit(*arr, 0, small.ctypes.data, shape_array(small.shape).ctypes.data, y[:4].ctypes.data))
        with pytest.raises(InvalidHandleError):
            check(lib.samix_trainer_fit(0, *arr, 0, None, None, None, 1, 16, 0, 500, 0, None, None))
        assert tr.epochs_done == 0 and tr.steps_done == 0   # nothing trained by a refused call
    ds.__exit__()


@pytest.mark.parametrize("mix", ["vanilla", "automix"])
def test_trainer_history_comes_from_the_engine_records(mix):
    x, y = float_data()
    xu = ((x - x.min()) / (x.max() - x.min()) * 255).astype(np.uint8)
    m, tr = make(samix.AutoMix() if mix == "automix" else mix)
    with m, tr:
        h = tr.fit(xu, y, epochs=2, batch_size=16, val=(x, y), progress=False, verbose=False)
    assert [r["epoch"] for r in h] == [1, 2]
    keys = list(h[0])
    assert keys[:4] == ["epoch", "loss", "lr", "seconds"]
    if mix == "automix":
        assert keys[-4:] == ["val_loss", "val_accuracy", "val_momentum_loss", "val_momentum_accuracy"]
        assert len(keys) > 8   # the objective's step metrics between seconds and val_*
    else:
        assert keys[-2:] == ["val_loss", "val_accuracy"]


def test_checkpoint_config_is_typed_json_from_the_engine(tmp_path):
    """Trainer.load_checkpoint rebuilds a trainer from the engine's typed JSON of the file (not from
    config.* strings parsed in Python); the file format keeps the config.* metadata."""
    from samix.checkpoint import read_metadata
    from samix.training import _checkpoint_config
    x, y = float_data()
    m = samix.models.resnet20(num_classes=3, in_channels=1, seed=0)
    opt = samix.optim.SGD(lr=0.05, momentum=0.8, weight_decay=1e-4, nesterov=True)
    with m, samix.Trainer(m, optimizer=opt, mix="mixup", alpha=0.7, label_smoothing=0.1, seed=4) as tr:
        tr.fit(x, y, epochs=1, batch_size=16, progress=False, verbose=False)
        tr.save_checkpoint(tmp_path / "t.ckpt")
    info = _checkpoint_config(tmp_path / "t.ckpt")
    assert info["architecture"] == "resnet20" and info["num_classes"] == 3 and info["in_channels"] == 1
    assert info["seed"] == 4
    cfg = info["config"]
    assert cfg["mix"] == "mixup" and cfg["alpha"] == 0.7 and cfg["label_smoothing"] == pytest.approx(0.1)
    assert cfg["optimizer"] == "sgd" and cfg["nesterov"] is True and cfg["warmup_steps"] == 0
    assert cfg["momentum"] == pytest.approx(0.8) and cfg["weight_decay"] == pytest.approx(1e-4)
    assert cfg["learned_method"] is None
    assert read_metadata(tmp_path / "t.ckpt")["config.alpha"] == "0.7"
    with samix.Trainer.load_checkpoint(tmp_path / "t.ckpt") as t2:
        assert t2.alpha == 0.7 and t2.optimizer.nesterov is True and t2.epochs_done == 1
    m = samix.models.resnet20(num_classes=3, in_channels=1, seed=0)
    with m, samix.Trainer(m, mix=samix.AutoMix(), seed=0) as tr:
        tr.save_checkpoint(tmp_path / "a.ckpt")
    cfg = _checkpoint_config(tmp_path / "a.ckpt")["config"]
    assert cfg["learned_method"] == "automix" and cfg["alpha"] is None and isinstance(cfg["learned_options"], str)
    with pytest.raises(InvalidArgumentError, match="not a samix trainer checkpoint"):
        m2 = samix.models.resnet20(num_classes=3, in_channels=1, seed=0)
        m2.save(tmp_path / "model.safetensors")
        m2.close()
        _checkpoint_config(tmp_path / "model.safetensors")


def test_epoch_callbacks_run_outside_the_engine_call_and_may_use_the_trainer(tmp_path):
    """Callbacks may call the trainer (evaluate, save_checkpoint): they run between engine calls, not
    inside the record callback, where the trainer's lock is held. Training equals a run without them."""
    x, y = float_data()
    m0, ref = make()
    with m0, ref:
        ref_h = ref.fit(x, y, epochs=3, batch_size=16, progress=False, verbose=False)
    m, tr = make()
    seen = []

    def cb(rec):
        seen.append((rec["epoch"], tr.epochs_done, tr.evaluate(x, y)["count"]))
        tr.save_checkpoint(tmp_path / f"e{rec['epoch']}.ckpt")

    with m, tr:
        h = tr.fit(x, y, epochs=3, batch_size=16, callbacks=[cb], progress=False, verbose=False)
        assert seen == [(1, 1, 48), (2, 2, 48), (3, 3, 48)]
        assert [r["loss"] for r in h] == [r["loss"] for r in ref_h]
        assert all((tmp_path / f"e{e}.ckpt").exists() for e in (1, 2, 3))
        # a callback returning False still stops after its epoch
        m2, tr2 = make()
        with m2, tr2:
            assert len(tr2.fit(x, y, epochs=3, batch_size=16, callbacks=[lambda r: False], progress=False,
                               verbose=False)) == 1
            assert tr2.epochs_done == 1
