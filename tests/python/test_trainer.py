"""samix.Trainer and the README's main job (shortened)."""

from __future__ import annotations

import numpy as np
import pytest

import samix
from samix.errors import InvalidArgumentError, SamixError, SamixTypeError, ShapeError


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.zeros((n, 1, 8, 8), np.uint8)
    for i, c in enumerate(y):  # class c = bright stripe in rows 2c..2c+1: learnable
        x[i, 0, 2 * c:2 * c + 2, :] = 200
    x += rng.integers(0, 40, x.shape, dtype=np.uint8)
    return x, y


@pytest.mark.parametrize("mix", ["vanilla", "mixup"])
def test_fit_learns_and_is_deterministic(mix):
    x, y = tiny_data(96)
    results = []
    for _ in range(2):
        with samix.models.resnet20(num_classes=3, in_channels=1, seed=0) as m, \
                samix.Trainer(m, optimizer=samix.optim.SGD(lr=0.05), mix=mix, seed=0) as tr:
            seen = []
            hist = tr.fit(x, y, epochs=8, batch_size=16, val=(x, y), callbacks=[seen.append], progress=False,
                          verbose=False)
            results.append((hist[-1]["loss"], tr.evaluate(x, y)))
            assert len(hist) == 8 and seen == hist and tr.epochs_done == 8 and tr.steps_done == 8 * 6
            assert {"epoch", "loss", "lr", "seconds", "val_loss", "val_accuracy"} <= set(hist[0])
    assert results[0] == results[1]
    ev = results[0][1]
    assert ev["count"] == 96
    if mix == "vanilla":
        assert ev["accuracy"] > 0.6, ev


def test_callback_can_stop_and_fit_resumes():
    x, y = tiny_data(32)
    with samix.models.resnet20(num_classes=3, in_channels=1) as m, samix.Trainer(m, mix="cutmix") as tr:
        tr.fit(x, y, epochs=5, batch_size=16, callbacks=[lambda r: False], progress=False, verbose=False)
        assert tr.epochs_done == 1
        tr.fit(x, y, epochs=2, batch_size=16, progress=False, verbose=False)
        assert tr.epochs_done == 2 and len(tr.history) == 2


def test_bad_arguments():
    x, y = tiny_data(16)
    with samix.models.resnet20(num_classes=3, in_channels=1) as m:
        for kw, exc in [(dict(mix="bogus"), InvalidArgumentError), (dict(mix=1), SamixTypeError),
                        (dict(optimizer="sgd"), SamixTypeError), (dict(schedule="linear"), InvalidArgumentError),
                        (dict(alpha=-1.0), InvalidArgumentError), (dict(label_smoothing=1.0), InvalidArgumentError),
                        (dict(seed=-1), InvalidArgumentError)]:
            with pytest.raises(exc):
                samix.Trainer(m, **kw)
        with pytest.raises(SamixTypeError):
            samix.Trainer("resnet20")
        with pytest.raises(InvalidArgumentError):
            samix.optim.SGD(lr=float("nan"))
        with pytest.raises(InvalidArgumentError):
            samix.optim.SGD(momentum=1.0)
        with samix.Trainer(m) as tr:
            for args, kw, exc in [((x.astype(np.int32), y), {}, SamixTypeError),  # floats: test_trainer_arrays
                                  ((x[:, 0], y), {}, ShapeError),
                                  ((x, y[:5]), {}, ShapeError),
                                  ((x, y + 3), {}, InvalidArgumentError),
                                  ((np.zeros((16, 3, 8, 8), np.uint8), y), {}, ShapeError),
                                  ((x, y), dict(epochs=0), InvalidArgumentError),
                                  ((x, y), dict(batch_size=0), InvalidArgumentError),
                                  ((x, y), dict(epochs=1.5), SamixTypeError),
                                  ((x[:0], y[:0]), {}, SamixError)]:
                with pytest.raises(exc):
                    tr.fit(*args, progress=False, verbose=False, **kw)
            with pytest.raises(InvalidArgumentError):
                tr.evaluate(x, y, batch_size=0)
    with pytest.raises(SamixError):
        tr.evaluate(x, y)  # closed


def test_trainers_are_freed():
    before = samix.live_handles()
    for _ in range(30):
        m = samix.models.resnet20(num_classes=3, in_channels=1)
        tr = samix.Trainer(m, mix="fmix")
        tr.close()
        m.close()
    assert samix.live_handles() == before


def test_readme_main_job_shortened(fashion_dir, capsys):
    from samix import demo

    res = demo.run(str(fashion_dir), methods=("vanilla", "samix"), train_size=200, test_size=200, epochs=1,
                   batch_size=32, progress=False)
    out = capsys.readouterr().out
    assert set(res) == {"vanilla", "samix"}
    assert "vanilla" in out and "samix" in out and "test acc" in out
    for r in res.values():
        assert 0.0 <= r["accuracy"] <= 1.0 and np.isfinite(r["loss"])
