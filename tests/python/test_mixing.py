"""samix.mix / MixPolicy / Mixup: results match their definition, zero-copy, bad input raises."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import samix
from samix.errors import (InvalidArgumentError, InvalidHandleError, NumericalError, SamixError,
                          SamixTypeError, ShapeError)

METHODS = samix.mixing.METHODS
BLENDING = ("mixup", "cutmix", "smoothmix", "gridmix", "fmix", "saliencymix")  # not resizemix (resizes)


def batch(n=6, c=3, h=8, w=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c, h, w)).astype(np.float32), rng.integers(0, 10, n)


@pytest.mark.parametrize("method", METHODS)
def test_result_is_consistent(method):
    x, y = batch()
    x0 = x.copy()
    r = samix.mix(x, y, method=method, num_classes=10, seed=3)
    np.testing.assert_array_equal(x, x0)  # input untouched without out=
    n = x.shape[0]
    assert r.images.shape == x.shape and r.targets.shape == (n, 10) and r.masks.shape == (n, 8, 8)
    assert sorted(r.partner.tolist()) == list(range(n)) or method == "mixup"
    np.testing.assert_allclose(r.targets.sum(1), 1, atol=1e-5)
    # targets are label_lam * onehot(y) + (1 - label_lam) * onehot(y[partner])
    expect = np.zeros((n, 10), np.float32)
    expect[np.arange(n), y] += r.label_lam
    expect[np.arange(n), y[r.partner]] += 1 - r.label_lam
    np.testing.assert_allclose(r.targets, expect, atol=1e-5)
    if method in BLENDING:
        m = r.masks[:, None]
        np.testing.assert_allclose(r.images, (1 - m) * x + m * x[r.partner], atol=1e-5)
    moved = r.partner != np.arange(n)
    np.testing.assert_allclose(r.lam[moved], 1 - r.masks[moved].mean((1, 2)), atol=1e-5)


def test_same_seed_same_result_and_stream_advances():
    x, y = batch()
    a = samix.mix(x, y, method="cutmix", num_classes=10, seed=7)
    b = samix.mix(x, y, method="cutmix", num_classes=10, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    with samix.MixPolicy("mixup", seed=7) as p:
        s0 = p.rng_state
        r1 = p(x, y, num_classes=10)
        r2 = p(x, y, num_classes=10)
        assert p.rng_state != s0
        p.rng_state = s0
        r1b = p(x, y, num_classes=10)
    np.testing.assert_array_equal(r1.images, r1b.images)
    assert not np.array_equal(r1.lam, r2.lam) or not np.array_equal(r1.partner, r2.partner)


def test_fixed_lambda_mixup():
    x, y = batch()
    r = samix.mix(x, y, method="mixup", lam=0.25, num_classes=10, partner="flip")
    np.testing.assert_allclose(r.images, 0.25 * x + 0.75 * x[::-1], atol=1e-6)
    assert (r.partner == np.arange(6)[::-1]).all()


def test_zero_copy_out_and_in_place():
    x, y = batch(seed=1)
    out = np.empty_like(x)
    r = samix.mix(x, y, method="mixup", num_classes=10, out=out, seed=1)
    assert r.images is out
    ref = r.images.copy()
    x2 = x.copy()
    r2 = samix.mix(x2, y, method="mixup", num_classes=10, out=x2, seed=1)
    assert r2.images is x2 and np.shares_memory(r2.images, x2)
    np.testing.assert_allclose(x2, ref, atol=1e-6)  # in place equals out of place
    # a C-contiguous float32 input is read in place: the engine sees the caller's buffer
    assert samix._arrays.as_f32(x, "x") is x


def test_timm_mixup_in_place_like_timm():
    x, y = batch(n=8)
    f = samix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=10, seed=0)
    assert "Mixup(mixup_alpha=0.8" in repr(f)
    x_in = x.copy()
    xm, t = f(x_in, y)
    assert xm is x_in and t.shape == (8, 10)
    np.testing.assert_allclose(t.sum(1), 1, atol=1e-5)
    assert t.min() >= 0.1 / 10 - 1e-6
    # non-contiguous input: a new array, caller's data untouched
    xs = np.asfortranarray(x)
    xm2, _ = f(xs, y)
    assert xm2 is not xs and np.array_equal(xs, x)
    r = f.mix(x, y)
    assert (r.partner == np.arange(8)[::-1]).all()
    f.close()


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_timm_mixup_fast_path_matches_general_path(mode):
    # float32 NCHW + int64 labels take Mixup.__call__'s direct call; int32 labels the general path.
    x, y = batch(n=9, seed=4)
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, label_smoothing=0.1, num_classes=10)
    fast, general = samix.Mixup(**kw, seed=7), samix.Mixup(**kw, seed=7)
    for _ in range(3):
        xa, xb = x.copy(), x.copy()
        ma, ta = fast(xa, y.astype(np.int64))
        mb, tb = general(xb, y.astype(np.int32))
        assert ma is xa and mb is xb
        np.testing.assert_array_equal(ma, mb)
        np.testing.assert_array_equal(ta, tb)
    with pytest.raises(InvalidArgumentError, match="label"):
        fast(x.copy(), np.full(9, 10, dtype=np.int64))    # class index out of range
    with pytest.raises(ShapeError):
        fast(x.copy(), np.zeros(8, dtype=np.int64))       # one label short


def test_other_dtypes_and_layouts_are_converted_once():
    x, y = batch()
    r64 = samix.mix(x.astype(np.float64), y, num_classes=10, seed=2)
    r32 = samix.mix(x, y, num_classes=10, seed=2)
    np.testing.assert_allclose(r64.images, r32.images, atol=1e-6)
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    rl = samix.mix(nhwc, y, num_classes=10, seed=2, channels_last=True)
    np.testing.assert_allclose(rl.images.transpose(0, 3, 1, 2), r32.images, atol=1e-6)


def test_bad_inputs():
    x, y = batch()
    cases = [
        (dict(x=x[0]), ShapeError),
        (dict(x=np.zeros((0, 3, 8, 8), np.float32)), SamixError),
        (dict(x=x.astype(np.complex64)), SamixTypeError),
        (dict(x=np.array([["a"]])), SamixTypeError),
        (dict(method="mixup2"), InvalidArgumentError),
        (dict(method=3), SamixTypeError),
        (dict(alpha=0.0), InvalidArgumentError),
        (dict(alpha=-1.0), InvalidArgumentError),
        (dict(alpha=float("inf")), InvalidArgumentError),
        (dict(alpha="1"), SamixTypeError),
        (dict(lam=1.5), InvalidArgumentError),
        (dict(num_classes=None), InvalidArgumentError),
        (dict(num_classes=0), InvalidArgumentError),
        (dict(num_classes=2**40), InvalidArgumentError),
        (dict(y=y + 10), InvalidArgumentError),
        (dict(y=-y - 1), InvalidArgumentError),
        (dict(y=y[:3]), ShapeError),
        (dict(y=y.astype(np.float32)), SamixTypeError),
        (dict(label_smoothing=1.0), InvalidArgumentError),
        (dict(label_smoothing=-0.1), InvalidArgumentError),
        (dict(partner="nearest"), InvalidArgumentError),
        (dict(seed=-1), InvalidArgumentError),
        (dict(out=np.empty((6, 3, 8, 7), np.float32)), ShapeError),
        (dict(out=np.empty((6, 3, 8, 8), np.float64)), SamixTypeError),
        (dict(out=np.empty((6, 3, 8, 8), np.float32)[:, :, :, ::-1]), SamixTypeError),
        (dict(out=[1, 2]), SamixTypeError),
        (dict(method="smoothmix", alpha=1.0), InvalidArgumentError),
    ]
    for kw, exc in cases:
        args = dict(x=x, y=y, num_classes=10)
        args.update(kw)
        with pytest.raises(exc):
            samix.mix(args.pop("x"), args.pop("y"), **args)
    bad = x.copy()
    bad[2, 1, 3, 3] = np.nan
    # The saliency map needs finite pixels; elementwise policies let NaN/Inf propagate like NumPy.
    with pytest.raises(NumericalError, match="NaN or Inf"):
        samix.mix(bad, y, method="saliencymix", num_classes=10)
    bad[2, 1, 3, 3] = np.inf
    with pytest.raises(NumericalError):
        samix.mix(bad, y, method="saliencymix", num_classes=10)
    bad[2, 1, 3, 3] = np.nan
    r_nan = samix.mix(bad, y, method="mixup", lam=0.5, num_classes=10, seed=3)
    assert np.isnan(r_nan.images[2, 1, 3, 3]) and np.isnan(r_nan.images[list(r_nan.partner).index(2), 1, 3, 3])
    assert np.isfinite(np.delete(r_nan.images.reshape(len(x), -1), [2, list(r_nan.partner).index(2)], axis=0)).all()
    assert np.isfinite(r_nan.targets).all()
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(SamixTypeError):
        samix.mix(x, y, num_classes=10, out=ro)
    big = np.empty((12, 3, 8, 8), np.float32)
    with pytest.raises(ShapeError, match="overlap"):
        samix.mix(big[:6], y, num_classes=10, out=big[3:9])
    # an out-of-range label must not leave a half-mixed in-place buffer
    x2 = x.copy()
    with pytest.raises(InvalidArgumentError):
        samix.mix(x2, y + 10, num_classes=10, out=x2)
    np.testing.assert_array_equal(x2, x)
    for kw in [dict(mode="x"), dict(prob=2.0), dict(mixup_alpha=-1), dict(mixup_alpha=0, cutmix_alpha=0),
               dict(cutmix_minmax=(0.5, 0.2)), dict(cutmix_minmax="ab"), dict(num_classes=0),
               dict(label_smoothing=float("nan")), dict(switch_prob=-0.1)]:
        with pytest.raises(SamixError):
            samix.Mixup(**{"num_classes": 10, **kw})


def test_closed_policy_raises():
    p = samix.MixPolicy("cutmix")
    p.close()
    p.close()  # idempotent
    x, y = batch()
    with pytest.raises(InvalidHandleError):
        p(x, y, num_classes=10)
    with pytest.raises(InvalidHandleError):
        p.rng_state
    assert "closed" in repr(p)


def test_policies_are_freed():
    x, y = batch(n=4, h=4, w=4)
    before = samix.live_handles("policy")
    for i in range(500):
        samix.mix(x, y, method=METHODS[i % len(METHODS)], num_classes=10, seed=i)
        p = samix.MixPolicy("mixup")
        del p
        samix.Mixup(num_classes=3).close()
    assert samix.live_handles("policy") == before


def test_threads_share_nothing_and_match_serial():
    x, y = batch(n=16, h=16, w=16)
    serial = {s: samix.mix(x, y, method=METHODS[s % len(METHODS)], num_classes=10, seed=s).images for s in range(24)}
    shared = samix.MixPolicy("cutmix", seed=0)
    errors = []

    def worker(k: int):
        try:
            for s in range(k, 24, 4):
                r = samix.mix(x, y, method=METHODS[s % len(METHODS)], num_classes=10, seed=s)
                if not np.array_equal(r.images, serial[s]):
                    errors.append(("mismatch", s))
                shared(x, y, num_classes=10)  # one object used from several threads: serialised
                try:
                    samix.mix(x, y + 100, num_classes=10)
                except InvalidArgumentError as e:
                    if "label 1" not in str(e) and "label" not in str(e):
                        errors.append(("message", str(e)))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    shared.close()
    assert not errors


shapes = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))


@settings(max_examples=1000)
@given(shape=shapes, method=st.sampled_from(METHODS), seed=st.integers(0, 2**64 - 1),
       per_sample=st.booleans(), partner=st.sampled_from([None, "permutation", "derangement", "flip", "roll"]),
       lam=st.one_of(st.none(), st.floats(0, 1)), k=st.integers(1, 12), ls=st.floats(0, 0.99))
def test_property_any_valid_input_mixes(shape, method, seed, per_sample, partner, lam, k, ls):
    rng = np.random.default_rng(seed % 1000)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, k, shape[0])
    if method == "smoothmix" and lam is not None:
        with pytest.raises(InvalidArgumentError, match="SmoothMix cannot use a fixed λ"):
            samix.mix(x, y, method=method, num_classes=k, lam=lam)
        lam = None
    r = samix.mix(x, y, method=method, num_classes=k, label_smoothing=ls, lam=lam, per_sample=per_sample,
                  partner=partner, seed=seed)
    assert np.isfinite(r.images).all() and np.isfinite(r.targets).all()
    np.testing.assert_allclose(r.targets.sum(1), 1, atol=1e-4)
    assert ((r.lam >= 0) & (r.lam <= 1)).all() and ((r.partner >= 0) & (r.partner < shape[0])).all()
    # every mixed pixel lies between the two source pixels (convex combination)
    lo = np.minimum(x, x[r.partner]) - 1e-5
    hi = np.maximum(x, x[r.partner]) + 1e-5
    if method != "resizemix":
        assert ((r.images >= lo) & (r.images <= hi)).all()


@settings(max_examples=1500)
@given(x=hnp.arrays(dtype=np.float64, shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4),
                    elements=st.one_of(st.floats(-1e3, 1e3), st.sampled_from([np.nan, np.inf]))),
       dtype=st.sampled_from([np.float32, np.float64, np.int32, np.uint8, np.float16]),
       y=st.one_of(st.none(), hnp.arrays(np.int64, st.integers(0, 5), elements=st.integers(-3, 12))),
       method=st.sampled_from(METHODS + ("bogus",)), k=st.integers(-2, 12),
       lam=st.one_of(st.none(), st.floats(allow_nan=True)), alpha=st.one_of(st.none(), st.floats(allow_nan=True)))
def test_property_arbitrary_input_never_crashes(x, dtype, y, method, k, lam, alpha):
    with np.errstate(all="ignore"):
        x = x.astype(dtype)
    try:
        r = samix.mix(x, y, method=method, num_classes=k, lam=lam, alpha=alpha, seed=1)
    except SamixError as e:
        assert str(e)
    else:
        assert r.images.shape == x.shape


# Seeded results pinned from the engine before Mixup.__call__ got its direct ABI call
# (samix_policy_mix_timm): any change to the random stream, the draw order, the kernels' arithmetic or the
# soft targets shows here. Mixup.mix takes the general path (plan + apply + targets), Mixup.__call__ the
# direct one. ``fingerprint`` = x · cos(0, 1, 2, ...) over the mixed batch (float64).
_PINNED = (
    {'batch': {'lam': [[0.3064152, 0.3064152, 0.3064152, 0.3064152, 0.3064152, 0.3064152],
                       [0.25896084, 0.25896084, 0.25896084, 0.25896084, 0.25896084, 0.25896084],
                       [0.35045686, 0.35045686, 0.35045686, 0.35045686, 0.35045686, 0.35045686]],
               'targets0': [[0.2957737, 0.6442263, 0.02, 0.02, 0.02], [0.2530648, 0.6869352, 0.02, 0.02, 0.02],
                            [0.3354112, 0.6045888, 0.02, 0.02, 0.02]],
               'fingerprint': [0.8409435, 0.8103964, 0.86929379],
               'call_targets': [[0.65178621, 0.2882137, 0.02, 0.02, 0.02],
                                [0.2882137, 0.65178621, 0.02, 0.02, 0.02]],
               'call_fingerprint': 1.0955777},
     'pair': {'lam': [[0.3064152, 0.25896084, 0.35045686, 0.35045686, 0.25896084, 0.3064152],
                      [0.70198476, 0.84123337, 0.50932646, 0.50932646, 0.84123337, 0.70198476],
                      [1.0, 0.9322381, 0.32707971, 0.32707971, 0.9322381, 1.0]],
              'targets0': [[0.2957737, 0.6442263, 0.02, 0.02, 0.02], [0.6517862, 0.2882137, 0.02, 0.02, 0.02],
                           [0.92, 0.02, 0.02, 0.02, 0.02]],
              'fingerprint': [0.81856291, 1.1399467, 1.0083013],
              'call_targets': [[0.91999996, 0.02, 0.02, 0.02, 0.02], [0.02, 0.91999996, 0.02, 0.02, 0.02]],
              'call_fingerprint': 1.1114875},
     'elem': {'lam': [[0.3064152, 0.25896084, 0.35045686, 0.70198476, 0.84123337, 0.50932646],
                      [1.0, 0.9322381, 0.32707971, 1.0, 0.77542055, 1.0],
                      [0.89999998, 0.89999998, 0.69999999, 0.80000001, 0.60000002, 0.997024]],
              'boxes': [[[-1, -1, -1, -1], [-1, -1, -1, -1], [-1, -1, -1, -1], [-1, -1, -1, -1], [-1, -1, -1, -1],
                         [-1, -1, -1, -1]],
                        [[-1, -1, -1, -1], [-1, -1, -1, -1], [-1, -1, -1, -1], [-1, -1, -1, -1], [-1, -1, -1, -1],
                         [-1, -1, -1, -1]],
                        [[3, 5, 0, 1], [0, 1, 0, 2], [0, 3, 2, 4], [3, 5, 2, 4], [0, 4, 1, 3], [-1, -1, -1, -1]]],
              'targets0': [[0.2957737, 0.6442263, 0.02, 0.02, 0.02], [0.92, 0.02, 0.02, 0.02, 0.02],
                           [0.8299999, 0.11, 0.02, 0.02, 0.02]],
              'fingerprint': [1.0093024, 1.026685, 2.9150631],
              'call_targets': [[0.29731065, 0.64268929, 0.02, 0.02, 0.02],
                               [0.87834382, 0.061656125, 0.02, 0.02, 0.02]],
              'call_fingerprint': 0.27526591},
     'mixup': {'lam0': 0.31624439,
               'partner': [4, 5, 0, 2, 3, 1],
               'box0': [-1, -1, -1, -1],
               'targets': [[0.31624439, 0.0, 0.0, 0.0, 0.68375564], [0.0, 1.0, 0.0, 0.0, 0.0],
                           [0.68375564, 0.0, 0.31624439, 0.0, 0.0], [0.0, 0.0, 0.68375564, 0.31624439, 0.0],
                           [0.0, 0.0, 0.0, 0.68375564, 0.31624439], [0.0, 1.0, 0.0, 0.0, 0.0]],
               'fingerprint': 0.67122371},
     'cutmix': {'lam0': 0.69999999,
                'partner': [1, 4, 0, 5, 2, 3],
                'box0': [0, 3, 1, 3],
                'targets': [[0.69999999, 0.30000001, 0.0, 0.0, 0.0], [0.0, 0.69999999, 0.0, 0.0, 0.30000001],
                            [0.30000001, 0.0, 0.69999999, 0.0, 0.0], [0.0, 0.30000001, 0.0, 0.69999999, 0.0],
                            [0.0, 0.0, 0.30000001, 0.0, 0.69999999], [0.0, 0.69999999, 0.0, 0.30000001, 0.0]],
                'fingerprint': 0.21267511}})


def _pinned_batch():
    x = (np.arange(6 * 3 * 5 * 4, dtype=np.float32).reshape(6, 3, 5, 4) % 7) / 7
    return x, np.array([0, 1, 2, 3, 4, 1], np.int64)


def _fingerprint(x):
    return float(np.dot(x.ravel().astype(np.float64), np.cos(np.arange(x.size))))


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_timm_mixup_seeded_results_are_pinned(mode):
    want = _PINNED[mode]
    m = samix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, label_smoothing=0.1, num_classes=5, seed=3)
    for call in range(3):
        x, y = _pinned_batch()
        r = m.mix(x, y, out=x)
        np.testing.assert_allclose(r.lam, want["lam"][call], rtol=1e-6)
        np.testing.assert_array_equal(r.lam, r.label_lam)
        if "boxes" in want:
            np.testing.assert_array_equal(r.boxes, want["boxes"][call])
        np.testing.assert_allclose(r.targets[0], want["targets0"][call], rtol=1e-6)
        assert _fingerprint(x) == pytest.approx(want["fingerprint"][call], rel=1e-6, abs=1e-6)
    x, y = _pinned_batch()
    mixed, t = m(x, y)
    assert mixed is x
    np.testing.assert_allclose(t[[0, -1]], want["call_targets"], rtol=1e-6)
    assert _fingerprint(x) == pytest.approx(want["call_fingerprint"], rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("method", ["mixup", "cutmix"])
def test_mix_seeded_results_are_pinned(method):
    want = _PINNED[method]
    x, y = _pinned_batch()
    r = samix.mix(x, y, method, alpha=1.0, num_classes=5, seed=11, out=x)
    assert r.lam[0] == pytest.approx(want["lam0"], rel=1e-6)
    np.testing.assert_array_equal(r.partner, want["partner"])
    np.testing.assert_array_equal(r.boxes[0], want["box0"])
    np.testing.assert_allclose(r.targets, want["targets"], rtol=1e-6, atol=1e-7)
    assert _fingerprint(x) == pytest.approx(want["fingerprint"], rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_timm_mixup_fast_path_matches_general_path_on_threads(mode):
    # A batch above the engine's parallel threshold, odd, with 2 workers: the direct path splits the
    # pairs between threads and must still give the general path's pixels and targets exactly.
    x, y = batch(n=65, c=3, h=64, w=64, seed=5)
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, label_smoothing=0.1, num_classes=10)
    fast, general = samix.Mixup(**kw, seed=2), samix.Mixup(**kw, seed=2)
    before = samix.get_num_threads()
    samix.set_num_threads(2)
    try:
        for _ in range(4):
            xa, xb = x.copy(), x.copy()
            _, ta = fast(xa, y.astype(np.int64))
            _, tb = general(xb, y.astype(np.int32))
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ta, tb)
    finally:
        samix.set_num_threads(before)


@pytest.mark.parametrize("partner", ["permutation", "derangement", "roll", "flip"])
@pytest.mark.parametrize("per_sample", [False, True])
def test_in_place_blends_equal_out_of_place(partner, per_sample):
    # In place, blends walk each cycle of the partner map (two-cycles with the pair kernel, longer ones
    # saving their first image): every image must equal the out-of-place result exactly, for cycles of
    # every length, fixed points and odd batches.
    for seed in range(12):
        x, y = batch(n=5 + seed, c=2, h=3, w=5, seed=seed)
        kw = dict(method="mixup", alpha=0.7, per_sample=per_sample, partner=partner, seed=seed, num_classes=10)
        ref = samix.mix(x, y, **kw)
        xi = x.copy()
        r = samix.mix(xi, y, out=xi, **kw)
        np.testing.assert_array_equal(r.partner, ref.partner)
        np.testing.assert_array_equal(xi, ref.images)
        np.testing.assert_array_equal(r.targets, ref.targets)
        lam = ref.lam[:, None, None, None]
        expect = lam * x + (np.float32(1) - lam) * x[ref.partner]
        moved = ref.partner != np.arange(len(x))
        np.testing.assert_allclose(xi[moved], expect[moved], rtol=1e-5, atol=1e-6)
