"""samix.Trainer.fit / evaluate on float32 NCHW arrays (already normalised)."""

from __future__ import annotations

import numpy as np
import pytest

import samix
from samix.errors import InvalidArgumentError, NumericalError, SamixTypeError, ShapeError
from samix.training import _Data


def float_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32) * 0.5
    for i, c in enumerate(y):  # class c = bright stripe in rows 2c..2c+1
        x[i, 0, 2 * c:2 * c + 2, :] += 2.0
    return x, y


def run(x, y, *, mix="vanilla", augment=True, epochs=6, seed=0, val=None):
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=0) as m, \
            samix.Trainer(m, optimizer=samix.optim.SGD(lr=0.05), mix=mix, seed=seed) as tr:
        hist = tr.fit(x, y, epochs=epochs, batch_size=16, augment=augment, val=val, progress=False, verbose=False)
        return hist, tr.evaluate(x, y), m.state_dict()


def test_float_training_learns_is_deterministic_and_leaves_input_alone():
    x, y = float_data()
    x0 = x.copy()
    h1, ev1, sd1 = run(x, y, val=(x, y))
    assert np.array_equal(x, x0), "training must not modify the caller's images"
    assert len(h1) == 6 and {"val_loss", "val_accuracy"} <= set(h1[0])
    assert h1[-1]["loss"] < h1[0]["loss"]
    assert ev1["count"] == 48 and ev1["accuracy"] > 0.6, ev1
    assert h1[-1]["val_accuracy"] == ev1["accuracy"]
    h2, ev2, sd2 = run(x, y, val=(x, y))
    assert ev1 == ev2 and all(np.array_equal(sd1[k], sd2[k]) for k in sd1)
    # float64 (converted once to float32) gives the same run.
    _, ev3, sd3 = run(x.astype(np.float64), y, val=(x, y))
    assert ev3 == ev1 and all(np.array_equal(sd1[k], sd3[k]) for k in sd1)


def test_augmentation_and_mixing_change_the_run():
    x, y = float_data(32)
    _, _, plain = run(x, y, augment=False, epochs=1)
    _, _, aug = run(x, y, augment=True, epochs=1)
    _, _, mixed = run(x, y, augment=False, epochs=1, mix="mixup")
    w = "head.fc.weight"
    assert not np.array_equal(plain[w], aug[w])
    assert not np.array_equal(plain[w], mixed[w])


def test_float32_contiguous_input_is_used_in_place():
    x, y = float_data(8)
    d = _Data(x, y, 3, "x")
    assert d.x is x, "C-contiguous float32 must not be copied"
    assert np.shares_memory(_Data(x[:4], y[:4], 3, "x").x, x)
    assert not np.shares_memory(_Data(x[:, :, ::-1], y, 3, "x").x, x)  # a view is converted once
    assert _Data(x.astype(np.float64), y, 3, "x").x.dtype == np.float32


def test_evaluate_float_matches_predict():
    x, y = float_data(20)
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=1) as m, samix.Trainer(m) as tr:
        ev = tr.evaluate(x, y, batch_size=7)
        logits = m.predict(x).astype(np.float64)
        z = logits - logits.max(1, keepdims=True)
        ce = -(z[np.arange(20), y] - np.log(np.exp(z).sum(1)))
        assert ev["count"] == 20
        assert ev["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))
        assert ev["loss"] == pytest.approx(ce.mean(), rel=1e-4)


def test_exact_resume_on_float_arrays(tmp_path):
    x, y = float_data(24)
    kw = dict(epochs=2, batch_size=8, progress=False, verbose=False)
    with samix.models.resnet20(num_classes=3, in_channels=1) as m, samix.Trainer(m, mix="mixup", seed=3) as tr:
        tr.fit(x, y, **kw)
        straight = m.state_dict()
    with samix.models.resnet20(num_classes=3, in_channels=1) as m, samix.Trainer(m, mix="mixup", seed=3) as tr:
        tr.fit(x, y, callbacks=[lambda r: False], **kw)
        tr.save_checkpoint(tmp_path / "c.safetensors")
    with samix.Trainer.load_checkpoint(tmp_path / "c.safetensors") as tr:
        tr.fit(x, y, **kw)
        resumed = tr.model.state_dict()
        tr.model.close()
    for k in straight:
        assert np.array_equal(straight[k].view(np.uint32), resumed[k].view(np.uint32)), k


def test_bad_float_inputs():
    x, y = float_data(8)
    with samix.models.resnet20(num_classes=3, in_channels=1) as m, samix.Trainer(m) as tr:
        kw = dict(epochs=1, batch_size=4, progress=False, verbose=False)
        bad = x.copy()
        bad[3, 0, 1, 1] = np.nan
        cases = [
            ((bad, y), NumericalError),
            ((np.repeat(x, 3, axis=1), y), ShapeError),            # 3 channels for a 1-channel model
            ((x, np.array([0, 1, 2, 3, 0, 1, 2, 0])), InvalidArgumentError),  # label 3 of 3 classes
            ((x, y[:5]), ShapeError),
            ((x[:, 0], y), ShapeError),                             # rank 3
            ((x[:0], y[:0]), ShapeError),                           # empty batch
            ((x.astype(np.int32), y), SamixTypeError),
            ((x.astype(np.complex64), y), SamixTypeError),
            ((x, y.astype(np.float32)), SamixTypeError),
        ]
        for (xx, yy), exc in cases:
            with pytest.raises(exc):
                tr.fit(xx, yy, **kw)
            with pytest.raises(exc):
                tr.evaluate(xx, yy)
        with pytest.raises(SamixTypeError):
            tr.fit(x, y, val=(x,), **kw)
        assert tr.epochs_done == 0
        tr.fit(x, y, **kw)  # still usable
        assert tr.epochs_done == 1
        # Validation data is evaluated after each epoch: NaN there is reported then.
        with pytest.raises(NumericalError):
            tr.fit(x, y, **dict(kw, epochs=2), val=(bad, y))
