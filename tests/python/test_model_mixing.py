"""samix.mix with model-based policies (AttentiveMix, PuzzleMix): invariants, NumPy references,
determinism, the classifier left untouched, and clear errors."""
import numpy as np
import pytest

import samix
from samix.errors import InvalidArgumentError, SamixTypeError, ShapeError
from samix.mixing import MODEL_METHODS


def batch(n=6, h=16, w=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, h, w)).astype(np.float32), rng.integers(0, 10, n)


@pytest.fixture(scope="module")
def model():
    m = samix.models.Model("resnet20", num_classes=10, seed=0)
    yield m
    m.close()


def soft_targets_ref(y, partner, lam, k, eps):
    off = eps / k
    t = np.full((len(y), k), off, np.float64)
    for i in range(len(y)):
        t[i, y[i]] += lam[i] * (1 - eps)
        t[i, y[partner[i]]] += (1 - lam[i]) * (1 - eps)
    return t


@pytest.mark.parametrize("method", MODEL_METHODS)
def test_invariants_and_targets(model, method):
    x, y = batch()
    x0 = x.copy()
    state0 = {k: v.copy() for k, v in model.state_dict().items()}
    model.train()
    r = samix.mix(x, y, method=method, model=model, num_classes=10, label_smoothing=0.1, seed=3)
    assert np.array_equal(x, x0)                               # input untouched
    assert model.training                                      # mode restored
    for k, v in model.state_dict().items():                    # weights and BN statistics untouched
        assert np.array_equal(v, state0[k]), k
    assert r.images.shape == x.shape and np.isfinite(r.images).all()
    assert r.masks.shape == (6, 16, 16) and r.masks.min() >= 0 and r.masks.max() <= 1
    moved = r.partner != np.arange(6)   # a sample paired with itself is unchanged: its partner-weight map is 0
    np.testing.assert_allclose(r.lam[moved], 1 - r.masks[moved].mean(axis=(1, 2)), atol=1e-5)  # λ = own-weight mean
    assert (r.masks[~moved] == 0).all()
    np.testing.assert_array_equal(r.label_lam, r.lam)
    assert sorted(r.partner) == list(range(6))                 # a permutation
    np.testing.assert_allclose(r.targets, soft_targets_ref(y, r.partner, r.lam, 10, 0.1), atol=1e-6)
    np.testing.assert_allclose(r.targets.sum(1), 1, atol=1e-5)
    assert (r.boxes == -1).all()
    if method == "attentivemix":
        # binary cell masks and a plain mask blend of the inputs
        assert set(np.unique(r.masks)) <= {0.0, 1.0}
        m = r.masks[:, None]
        np.testing.assert_allclose(r.images, (1 - m) * x + m * x[r.partner], atol=1e-6)
    r2 = samix.mix(x, y, method=method, model=model, num_classes=10, label_smoothing=0.1, seed=3)
    np.testing.assert_array_equal(r.images, r2.images)          # deterministic per seed
    np.testing.assert_array_equal(r.partner, r2.partner)
    r3 = samix.mix(x, y, method=method, model=model, num_classes=10, seed=4)
    assert not np.array_equal(r3.partner, r.partner) or not np.array_equal(r3.images, r.images)


def test_fixed_lambda_and_in_place(model):
    x, y = batch(n=4, seed=1)
    keep = samix.mix(x, y, method="attentivemix", model=model, lam=1.0, seed=0)
    assert (keep.masks == 0).all() and np.array_equal(keep.images, x)   # λ = 1 keeps every cell
    xi = x.copy()
    r = samix.mix(xi, y, method="puzzlemix", model=model, seed=5, out=xi)
    ref = samix.mix(x, y, method="puzzlemix", model=model, seed=5)
    assert r.images is xi
    np.testing.assert_array_equal(xi, ref.images)


def test_errors(model):
    x, y = batch()
    with pytest.raises(SamixTypeError, match="samix.models.Model"):
        samix.mix(x, y, method="puzzlemix")
    with pytest.raises(InvalidArgumentError, match="needs labels"):
        samix.mix(x, None, method="puzzlemix", model=model)
    with pytest.raises(InvalidArgumentError, match="needs a classifier"):
        samix.MixPolicy("attentivemix")
    with pytest.raises(InvalidArgumentError, match="only used by"):
        samix.mix(x, y, method="mixup", model=model, num_classes=10)
    with pytest.raises(ShapeError, match="channels"):
        samix.mix(x[:, :1], y, method="attentivemix", model=model)
    with pytest.raises(InvalidArgumentError, match="outside"):
        samix.mix(x, np.full(6, 12), method="puzzlemix", model=model)
    with pytest.raises(InvalidArgumentError, match="α must be"):
        samix.mix(x, y, method="attentivemix", model=model, alpha=-2.0)  # the engine names α
    with pytest.raises(InvalidArgumentError, match="alpha must be a finite value > 0"):
        samix.mix(x, y, method="attentivemix", model=model, alpha=-1.0)  # not the ABI's "default" sentinel
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(samix.errors.NumericalError):
        samix.mix(bad, y, method="attentivemix", model=model)
