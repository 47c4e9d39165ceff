"""samix.Mixup / MixPolicy pickling, MixupCollate (uint8 batches), multi_label targets, Mixup without
labels, and MixResult's identity across importlib.reload (issue 15, NumPy only: no torch needed)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

import samix
from samix.errors import InvalidArgumentError, SamixError, SamixTypeError, ShapeError


def _batch(n=6, c=3, h=8, w=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c, h, w)).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_mixup_pickle_round_trip_continues_the_stream(mode):
    m = samix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=10, label_smoothing=0.1, seed=3)
    x, y = _batch()
    m(x.copy(), y)  # advance the stream
    clone = pickle.loads(pickle.dumps(m))
    assert type(clone) is samix.Mixup and clone.handle != m.handle
    assert clone.rng_state == m.rng_state
    assert repr(clone) == repr(m)
    for _ in range(3):  # both continue identically
        a, ta = m(x.copy(), y)
        b, tb = clone(x.copy(), y)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ta, tb)


def test_mixpolicy_pickles_with_its_stream():
    p = samix.MixPolicy("fmix", alpha=0.5, per_sample=True, partner="roll", seed=7)
    x, y = _batch()
    p(x, y, num_classes=10)
    q = pickle.loads(pickle.dumps(p))
    assert (q.method, q.alpha, q.per_sample, q.partner) == ("fmix", 0.5, True, "roll")
    r1, r2 = p(x, y, num_classes=10), q(x, y, num_classes=10)
    np.testing.assert_array_equal(r1.images, r2.images)
    np.testing.assert_array_equal(r1.masks, r2.masks)


def test_mixup_without_labels_is_a_samix_error():
    x, _ = _batch()
    with pytest.raises(InvalidArgumentError, match="needs the labels"):
        samix.Mixup(num_classes=10)(x, None)


def test_mixup_docstring_states_the_1000_default():
    assert samix.Mixup().num_classes == 1000
    doc = samix.Mixup.__doc__
    assert "num_classes (required)" not in doc and "Defaults to 1000" in doc


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_multi_label_with_one_hot_equals_class_indices(mode):
    x, y = _batch(n=7)
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=10, label_smoothing=0.1, seed=5)
    xi, ti = samix.Mixup(**kw)(x.copy(), y)
    onehot = np.eye(10, dtype=np.float32)[y]
    xm, tm = samix.Mixup(multi_label=True, **kw)(x.copy(), onehot)
    np.testing.assert_array_equal(xi, xm)
    np.testing.assert_allclose(tm, ti, rtol=0, atol=1e-6)


def test_multi_label_mixes_multi_hot_rows_by_label_lam():
    x, _ = _batch(n=4)
    t = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]], np.float32)
    m = samix.Mixup(mixup_alpha=1.0, num_classes=3, label_smoothing=0.0, seed=1, multi_label=True)
    ref = samix.Mixup(mixup_alpha=1.0, num_classes=3, label_smoothing=0.0, seed=1).mix(x.copy(), np.zeros(4, np.int64))
    _, out = m(x.copy(), t)
    lam = ref.label_lam[:, None]
    np.testing.assert_allclose(out, lam * t + (1 - lam) * t[ref.partner], atol=1e-6)
    with pytest.raises(ShapeError, match=r"\(N, 3\)"):
        m(x.copy(), np.zeros((4, 5), np.float32))
    with pytest.raises(ShapeError):
        m(x.copy(), np.zeros(4, np.float32))


def _samples(n=6, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (n, 3, 8, 8)).astype(dtype)
    return [(imgs[i], int(i % 10)) for i in range(n)], imgs


def test_collate_mixes_uint8_like_mixup_then_rounds():
    batch, imgs = _samples()
    kw = dict(mixup_alpha=1.0, num_classes=10, label_smoothing=0.0, seed=2)
    out, targets = samix.MixupCollate(**kw)(batch)
    assert out.dtype == np.uint8 and out.shape == imgs.shape and isinstance(out, np.ndarray)
    ref_x, ref_t = samix.Mixup(**kw)(imgs.astype(np.float32), np.arange(6) % 10)
    np.testing.assert_array_equal(out, np.rint(ref_x).astype(np.uint8))
    np.testing.assert_array_equal(targets, ref_t)
    assert not np.array_equal(out, imgs)  # something was mixed


def test_collate_cutmix_copies_pixels_exactly_and_keeps_float32():
    batch, imgs = _samples()
    out, _ = samix.MixupCollate(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=10, seed=0)(batch)
    # every pixel is the original's or the flipped partner's (timm's pairing i <-> N-1-i)
    assert np.all((out == imgs) | (out == imgs[::-1]))
    fb, fimgs = _samples(dtype=np.float32)
    fout, _ = samix.MixupCollate(num_classes=10, seed=0)(fb)
    assert fout.dtype == np.float32 and fout.shape == fimgs.shape


def test_collate_pickles_and_rejects_bad_batches():
    c = samix.MixupCollate(0.8, 1.0, num_classes=10, seed=4, tensors=False)
    c2 = pickle.loads(pickle.dumps(c))
    assert type(c2) is samix.MixupCollate and c2.tensors is False and c2.mixup_alpha == 0.8
    batch, _ = _samples()
    a, ta = c(batch)
    b, tb = c2(batch)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ta, tb)
    with pytest.raises(InvalidArgumentError):
        c([])
    with pytest.raises(ShapeError, match="must match"):
        c([batch[0], (np.zeros((3, 4, 4), np.uint8), 1)])
    with pytest.raises(SamixTypeError, match="dtype"):
        c([(np.zeros((3, 4, 4), np.int32), 1)] * 2)
    with pytest.raises(SamixError):
        c([(b[0], 99) for b in batch])  # label out of range for num_classes=10


def test_reload_of_mixing_keeps_mixresult_identity():
    code = (
        "import importlib, numpy as np, samix, samix.mixing\n"
        "importlib.reload(samix.mixing)\n"
        "x = np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32)\n"
        "r = samix.mixing.mix(x, method='cutmix', seed=0)\n"
        "assert isinstance(r, samix.MixResult), type(r)\n"
        "assert samix.mixing.MixResult is samix.MixResult\n"
        "import matplotlib; matplotlib.use('Agg')\n"
        "samix.viz.show_mixed(x, r)\n"
        "print('ok')\n"
    )
    pytest.importorskip("matplotlib")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_numpy_use_never_imports_torch():
    code = (
        "import sys, numpy as np, pickle, samix\n"
        "x = np.zeros((4, 3, 8, 8), np.float32); y = np.arange(4)\n"
        "samix.Mixup(num_classes=10)(x, y); samix.mix(x, y, num_classes=10)\n"
        "samix.MixupCollate(num_classes=10)([(np.zeros((3, 8, 8), np.uint8), 1)] * 4)\n"
        "pickle.loads(pickle.dumps(samix.Mixup(num_classes=10)))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_python_m_samix_version():
    out = subprocess.run([sys.executable, "-m", "samix", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"samix {samix.__version__}"


def test_samix_bench_console_script_is_installed():
    from pathlib import Path

    exe = Path(sys.executable).parent / "samix-bench"
    assert exe.is_file(), "pip install . must install the samix-bench console script"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "USAGE: samix-bench" in out.stdout


def test_show_mixed_figure_has_a_png_repr():
    pytest.importorskip("matplotlib")
    x, y = _batch()
    fig = samix.viz.show_mixed(x, samix.mix(x, y, method="fmix", num_classes=10, seed=0))
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
