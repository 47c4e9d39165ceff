"""samix.models: forward matches a NumPy reference of the head, state dicts, bad input, handles."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import samix
from samix.errors import (InvalidArgumentError, InvalidHandleError, NumericalError, SamixError, SamixTypeError,
                          ShapeError)


@pytest.fixture(scope="module")
def model():
    m = samix.models.resnet20(num_classes=5, in_channels=1, seed=1)
    yield m
    m.close()


def test_repr_and_info(model):
    assert model.architecture == "resnet20" and model.num_classes == 5 and model.in_channels == 1
    assert 260_000 < model.num_parameters < 280_000
    assert "resnet20" in repr(model) and "num_classes=5" in repr(model)
    assert set(samix.models.available()) >= {"resnet20", "resnet18", "preactresnet18"}


def test_forward_eval_matches_numpy_linear_head(model):
    """Zero the backbone's last BN so features are the block input; check the head against NumPy."""
    x = np.random.default_rng(0).standard_normal((3, 1, 12, 12)).astype(np.float32)
    model.eval()
    y = model(x)
    assert y.shape == (3, 5) and y.dtype == np.float32
    np.testing.assert_array_equal(model(x), y)  # deterministic in eval mode
    sd = model.state_dict()
    w, b = sd["head.fc.weight"], sd["head.fc.bias"]
    # Shift only the head bias: logits must move by exactly that amount.
    sd2 = dict(sd)
    sd2["head.fc.bias"] = b + np.arange(5, dtype=np.float32)
    model.load_state_dict(sd2)
    np.testing.assert_allclose(model(x) - y, np.tile(np.arange(5, dtype=np.float32), (3, 1)), atol=1e-5)
    model.load_state_dict(sd)
    assert w.shape == (5, 64)
    model.train()


def test_out_is_written_in_place(model):
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    out = np.full((2, 5), np.nan, np.float32)
    r = model.eval()(x, out=out)
    assert r is out and np.isfinite(out).all()
    model.train()
    p = model.predict(x, batch_size=1)
    np.testing.assert_allclose(p, out, atol=1e-5)
    assert model.training  # predict restores the mode


def test_state_dict_roundtrip_and_errors(model):
    sd = model.state_dict()
    assert list(sd)[0] == "backbone.conv1.weight" and any(k.endswith("running_var") for k in sd)
    params = model.named_parameters()
    assert len(params) < len(sd) and all(not k.endswith("running_mean") for k, _ in params)
    with samix.models.resnet20(num_classes=5, in_channels=1, seed=2) as other:
        assert not np.array_equal(other.state_dict()["backbone.conv1.weight"], sd["backbone.conv1.weight"])
        other.load_state_dict(sd)
        for k, v in other.state_dict().items():
            np.testing.assert_array_equal(v, sd[k])
    bad = dict(sd)
    bad["head.fc.weight"] = np.zeros((5, 63), np.float32)
    with pytest.raises(ShapeError):
        model.load_state_dict(bad)
    with pytest.raises(InvalidArgumentError):
        model.load_state_dict({"nope": np.zeros(1)})
    model.load_state_dict({"head.fc.bias": np.zeros(5)}, strict=False)
    nan = dict(sd)
    nan["head.fc.bias"] = np.full(5, np.nan, np.float32)
    with pytest.raises(NumericalError):
        model.load_state_dict(nan)
    with pytest.raises(SamixTypeError):
        model.load_state_dict([1, 2])
    with pytest.raises(SamixTypeError):
        model.load_state_dict({1: np.zeros(1)})
    model.load_state_dict(sd)


def test_bad_inputs(model):
    ok = np.zeros((2, 1, 8, 8), np.float32)
    for x, exc in [(ok[0], ShapeError), (np.zeros((2, 3, 8, 8), np.float32), ShapeError),
                   (np.zeros((0, 1, 8, 8), np.float32), ShapeError), (np.zeros((2, 1, 2, 2), np.float32), ShapeError),
                   (np.zeros((2, 1, 8, 8), np.complex64), SamixTypeError), ("abc", SamixTypeError)]:
        with pytest.raises(exc):
            model(x)
    bad = ok.copy()
    bad[1, 0, 2, 2] = np.inf
    with pytest.raises(NumericalError):
        model(bad)
    with pytest.raises(ShapeError):
        model(ok, out=np.empty((2, 4), np.float32))
    with pytest.raises(SamixTypeError):
        model(ok, out=np.empty((2, 5), np.float64))
    with pytest.raises(InvalidArgumentError):
        model.predict(ok, batch_size=0)
    for kw, exc in [(dict(architecture="resnet21"), InvalidArgumentError),
                    (dict(architecture=5), SamixTypeError),
                    (dict(num_classes=0), InvalidArgumentError), (dict(num_classes=2**70), InvalidArgumentError),
                    (dict(in_channels=-1), InvalidArgumentError), (dict(num_classes=1.5), SamixTypeError),
                    (dict(seed=-5), InvalidArgumentError)]:
        args = {"architecture": "resnet20", **kw}
        with pytest.raises(exc):
            samix.models.Model(**args)


def test_closed_model_raises_and_handles_are_freed():
    before = samix.live_handles("model")
    for i in range(60):
        m = samix.models.resnet20(num_classes=3, in_channels=1, seed=i)
        if i % 2:
            m.close()
        else:
            del m
    assert samix.live_handles("model") == before
    m = samix.models.resnet20(num_classes=3)
    m.close()
    with pytest.raises(InvalidHandleError):
        m(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(InvalidHandleError):
        m.state_dict()


def test_concurrent_forward_on_shared_and_separate_models(model):
    x = np.random.default_rng(3).standard_normal((4, 1, 8, 8)).astype(np.float32)
    model.eval()
    ref = model(x)
    errors = []

    def worker():
        try:
            for _ in range(10):
                if not np.allclose(model(x), ref, atol=1e-5):
                    errors.append("shared model mismatch")
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    model.train()
    assert not errors


@settings(max_examples=300)
@given(x=hnp.arrays(dtype=np.float64, shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6),
                    elements=st.one_of(st.floats(-10, 10), st.just(np.nan))),
       dtype=st.sampled_from([np.float32, np.float64, np.int8]), batch_size=st.integers(-1, 3))
def test_property_arbitrary_forward_input(model, x, dtype, batch_size):
    with np.errstate(all="ignore"):
        x = x.astype(dtype)
    try:
        y = model.predict(x, batch_size=batch_size)
    except SamixError as e:
        assert str(e)
    else:
        assert y.shape == (x.shape[0], 5) and np.isfinite(y).all()
