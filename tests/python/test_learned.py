"""samix.AutoMix / samix.SAMix / SAMix^P through samix.Trainer: options, errors, training, masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import samix
from samix.errors import InvalidArgumentError, InvalidStateError, SamixError, SamixIOError, SamixTypeError


def tiny_data(n=48, seed=0, size=16):
    """3-class images, class c = bright band at rows [4c, 4c + 4): learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.zeros((n, 1, size, size), np.uint8)
    for i, c in enumerate(y):
        x[i, 0, 4 * c:4 * c + 4, :] = 200
    x += rng.integers(0, 40, x.shape, dtype=np.uint8)
    return x, y


def as_float(x):
    return ((x.astype(np.float32) / 255.0) - 0.3) / 0.3


def make_trainer(mix, num_classes=3, seed=0, model_seed=0):
    m = samix.models.resnet20(num_classes=num_classes, in_channels=1, seed=model_seed)
    return m, samix.Trainer(m, optimizer=samix.optim.SGD(lr=0.05), mix=mix, seed=seed)


def strip_time(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


# -- construction, defaults, repr --------------------------------------------------------------------


def test_defaults_are_the_cifar_configs():
    s = samix.SAMix()
    assert (s.alpha, s.momentum, s.mask_layer, s.mask_loss, s.mask_adjust, s.lam_margin) == (2.0, 0.999, 2, 0.1, 0.0, 0.08)
    assert s.lam_mul_k == (0.25,) and s.eta == 0.5 and s.mixer_loss == "eta_balanced"
    assert s.mask_loss_mode == "L1+Variance" and s.momentum_end == 0.999999
    a = samix.AutoMix()
    assert (a.alpha, a.momentum, a.mask_layer, a.mask_loss, a.mask_adjust, a.lam_margin) == (2.0, 0.999, 2, 0.1, 0.0, 0.08)
    assert a.mixer_loss == "official" and a.mask_loss_mode == "L1"
    assert "lam_mul_k=0.25" in samix.SAMix(lam_mul_k=0.25).options()
    assert s.mask_loss_scope == "batch" and a.mask_loss_scope == "batch"   # the reference (spec §3.7)


def _same(py_value, engine_value):
    """A Python option value equals the engine's default string."""
    if isinstance(py_value, bool):
        return engine_value == ("1" if py_value else "0")
    if isinstance(py_value, (int, float)):
        return float(engine_value) == pytest.approx(float(py_value), rel=1e-6)
    if isinstance(py_value, tuple):
        return [float(v) for v in engine_value.split(",")] == pytest.approx([float(v) for v in py_value])
    if py_value is None:
        return engine_value == "none"
    return py_value.lower() == engine_value.lower()


@pytest.mark.parametrize("cls,method", [(samix.AutoMix, "automix"), (samix.SAMix, "samix")])
def test_python_defaults_are_the_engine_defaults(cls, method):
    """Every option Python repeats (its signature and field defaults) equals the engine's default."""
    import inspect
    engine = samix.learned.engine_defaults(method)
    values = cls()._values
    shared = sorted(set(values) & set(engine))
    assert len(shared) >= 18, shared                       # the comparison is not vacuous
    for k in shared:
        assert _same(values[k], engine[k]), (method, k, values[k], engine[k])
    for name, p in inspect.signature(cls).parameters.items():
        if p.default is not inspect.Parameter.empty and name in engine:
            assert _same(p.default if not isinstance(p.default, list) else tuple(p.default), engine[name]), name
    assert engine["mask_loss_scope"] == "batch"
    with pytest.raises(SamixError):
        samix.learned.engine_defaults("mixup")


def test_schedule_min_lr_spec_and_learned_floor():
    S = samix.optim.Schedule
    assert S().spec() == "cosine" and S("constant").spec() == "constant"
    assert S("cosine", min_lr=0.05).spec() == "cosine:min_lr=0.05"
    assert S.from_spec("cosine:min_lr=0.05", warmup_steps=3) == S("cosine", warmup_steps=3, min_lr=0.05)
    assert S.from_spec("cosine") == S()
    for bad in (dict(min_lr=-1.0), dict(min_lr=math.nan), dict(kind="constant", min_lr=0.1), dict(min_lr="0.1")):
        with pytest.raises(InvalidArgumentError):
            S(**bad)
    with pytest.raises(InvalidArgumentError):
        S.from_spec("cosine:floor=1")
    x, y = tiny_data(32)

    def last_lr(mix, schedule):
        m = samix.models.resnet20(num_classes=3, in_channels=1, seed=0)
        t = samix.Trainer(m, optimizer=samix.optim.SGD(lr=0.1), schedule=schedule, mix=mix, seed=0)
        return t.fit(x, y, epochs=1, batch_size=4, progress=False, verbose=False)[-1]["lr"]   # 8 steps
    # The default cosine ends near 0.5 × lr for AutoMix/SAMix (OpenMixup's 0.1 → 0.05), near 0 otherwise.
    assert 0.05 <= last_lr(samix.AutoMix(), S()) < 0.08
    assert last_lr("mixup", S()) < 0.03
    assert last_lr(samix.AutoMix(), S(min_lr=0.0)) < 0.03
    assert 0.02 <= last_lr("mixup", S(min_lr=0.02)) < 0.07
    with pytest.raises(InvalidArgumentError):
        last_lr("mixup", S(min_lr=0.5))                    # floor above the base rate


def test_repr_round_trips_and_policies_are_values():
    s = samix.SAMix(eta=0.25, mixer_loss="bce", lam_mul_k=(0.25, 0.5), mask_loss_scope="sample")
    r = repr(s)
    assert r.startswith("SAMix(alpha=2.0, momentum=0.999, mask_layer=2") and "eta=0.25" in r
    assert "mask_loss_scope='sample'" in r and "mixer_loss='bce'" in r
    assert eval(r, {"SAMix": samix.SAMix}) == s
    assert repr(samix.AutoMix()) == ("AutoMix(alpha=2.0, momentum=0.999, mask_layer=2, mask_loss=0.1, "
                                     "mask_adjust=0.0, lam_margin=0.08)")
    assert s.replace(eta=0.5) == samix.SAMix(mixer_loss="bce", lam_mul_k=(0.25, 0.5), mask_loss_scope="sample")
    assert samix.SAMix() != samix.AutoMix() and hash(samix.SAMix()) == hash(samix.SAMix())
    with pytest.raises(AttributeError):
        s.eta = 1.0
    assert samix.learned.from_options("samix", s.options()) == s


_BAD = [
    ("alpha", st.one_of(st.floats(max_value=0.0), st.just(math.inf), st.just(math.nan)), InvalidArgumentError),
    ("momentum", st.one_of(st.floats(min_value=1.0001, max_value=1e9), st.floats(max_value=-1e-6)), InvalidArgumentError),
    ("mask_adjust", st.one_of(st.floats(min_value=1.0001, max_value=1e9), st.floats(max_value=-1e-6)), InvalidArgumentError),
    ("lam_margin", st.one_of(st.floats(min_value=0.5, max_value=1e9), st.floats(max_value=-1e-6)), InvalidArgumentError),
    ("mask_loss", st.floats(max_value=-1e-6), InvalidArgumentError),
    ("eta", st.floats(max_value=-1e-6), InvalidArgumentError),
    ("mask_layer", st.integers(max_value=-1), InvalidArgumentError),
    ("mixer_loss", st.text(min_size=1, max_size=12).filter(
        lambda t: t.lower().replace("_", "") not in ("etabalanced", "official", "bce")), InvalidArgumentError),
    ("mask_loss_mode", st.sampled_from(["L3", "variance", "", "L1+L2"]), InvalidArgumentError),
    ("alpha", st.one_of(st.text(max_size=3), st.booleans(), st.none()), SamixTypeError),
    ("mask_layer", st.one_of(st.floats(allow_nan=False), st.text(max_size=3), st.booleans()), SamixTypeError),
    ("lam_mul_k", st.one_of(st.just(()), st.just([math.nan])), InvalidArgumentError),
]


@settings(max_examples=60)
@given(data=st.data(), which=st.integers(0, len(_BAD) - 1), cls=st.sampled_from([samix.SAMix, samix.AutoMix]))
def test_bad_arguments_raise_clear_errors(data, which, cls):
    name, strategy, exc = _BAD[which]
    if name == "lam_mul_k" and cls is samix.AutoMix:
        cls = samix.SAMix
    value = data.draw(strategy)
    with pytest.raises(exc) as info:
        cls(**{name: value})
    assert isinstance(info.value, SamixError)
    msg = str(info.value)
    assert name in msg or name.replace("_", " ") in msg or "λ" in msg or "η" in msg, msg


@settings(max_examples=40)
@given(alpha=st.floats(0.01, 100), momentum=st.floats(0, 1), mask_adjust=st.floats(0, 1),
       lam_margin=st.floats(0, 0.49), eta=st.floats(0, 10), mask_layer=st.integers(0, 3),
       mixer_loss=st.sampled_from(samix.learned.MIXER_LOSSES))
def test_valid_arguments_construct(alpha, momentum, mask_adjust, lam_margin, eta, mask_layer, mixer_loss):
    s = samix.SAMix(alpha=alpha, momentum=momentum, mask_adjust=mask_adjust, lam_margin=lam_margin, eta=eta,
                    mask_layer=mask_layer, mixer_loss=mixer_loss)
    assert s.alpha == alpha and s.mixer_loss == mixer_loss
    assert samix.learned.from_options("samix", s.options()) == s


def test_trainer_level_errors(tmp_path):
    with samix.models.resnet20(num_classes=3, in_channels=1) as m:
        with pytest.raises(InvalidArgumentError, match="mask_layer 3"):
            samix.Trainer(m, mix=samix.SAMix(mask_layer=3))       # ResNet-20 has stages 0, 1, 2
        with pytest.raises(InvalidArgumentError, match="alpha"):
            samix.Trainer(m, mix=samix.SAMix(), alpha=1.0)
        with pytest.raises(InvalidArgumentError, match="label_smoothing"):
            samix.Trainer(m, mix=samix.AutoMix(), label_smoothing=0.1)
        with pytest.raises(TypeError):
            samix.SAMix(bogus=1)
        with pytest.raises(SamixIOError):
            samix.SAMix.pretrained(tmp_path / "missing.bin")
        with samix.Trainer(m, mix="mixup") as tr:
            assert tr.heads == ["online"]
            with pytest.raises(InvalidStateError):
                tr.save_mixer(tmp_path / "m.bin")
            with pytest.raises(InvalidStateError):
                tr.mixer_masks(np.zeros((2, 1, 16, 16), np.float32))


# -- training ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mix", [samix.AutoMix(), samix.SAMix()], ids=["automix", "samix"])
def test_training_is_deterministic_and_reports_both_heads(mix):
    x, y = tiny_data()
    runs = []
    for _ in range(2):
        m, tr = make_trainer(mix)
        with m, tr:
            assert tr.heads == ["online", "momentum"]
            hist = tr.fit(x, y, epochs=2, batch_size=16, val=(x, y), progress=False, verbose=False)
            ev = tr.evaluate(x, y)
            masks = tr.mixer_masks(as_float(x[:8]), lam=0.3, seed=1)
            runs.append((strip_time(hist), ev, masks))
    (h0, ev0, m0), (h1, ev1, m1) = runs
    assert h0 == h1 and ev0 == ev1
    np.testing.assert_array_equal(m0, m1)
    assert {"loss", "val_accuracy", "val_loss", "val_momentum_accuracy", "val_momentum_loss"} <= set(h0[-1])
    assert {"loss_gen", "loss_mask", "loss_cls", "loss_one", "mask_gap_mb", "momentum"} <= set(h0[-1])
    assert 0 <= h0[-1]["momentum"] <= 1 and 0 <= h0[-1]["mask_mean_mb"] <= 1
    assert {"loss", "accuracy", "momentum_loss", "momentum_accuracy", "count"} == set(ev0)
    assert all(math.isfinite(v) for v in ev0.values())
    assert ev0["loss"] != ev0["momentum_loss"]          # two different networks


def test_different_seeds_differ():
    x, y = tiny_data()
    out = []
    for seed in (0, 1):
        m, tr = make_trainer(samix.SAMix(), seed=seed)
        with m, tr:
            out.append(tr.fit(x, y, epochs=1, batch_size=16, progress=False, verbose=False)[-1]["loss"])
    assert out[0] != out[1]


def test_mix_heads_are_reported_when_asked():
    x, y = tiny_data(32)
    m, tr = make_trainer(samix.SAMix(evaluate_mix_heads=True))
    with m, tr:
        assert tr.heads == ["online", "momentum", "momentum_mix", "online_mix"]
        ev = tr.evaluate(as_float(x), y)
        assert {"momentum_mix_accuracy", "online_mix_accuracy"} <= set(ev)


def test_masks_shape_range_and_no_side_effects():
    x, y = tiny_data()
    xf = as_float(x[:6])
    m, tr = make_trainer(samix.SAMix())
    with m, tr:
        before_eval = tr.evaluate(x, y)
        a = tr.mixer_masks(xf, lam=0.4, seed=3)
        assert a.shape == (6, 1, 16, 16) and a.dtype == np.float32
        assert np.all((a >= 0) & (a <= 1)) and a.std() > 0
        np.testing.assert_array_equal(a, tr.mixer_masks(xf, lam=0.4, seed=3))
        assert tr.evaluate(x, y) == before_eval                  # no weight or BN statistic changed
        assert not np.array_equal(a, tr.mixer_masks(xf, lam=0.9, seed=3))  # λ is an input of the Mixer
        p = np.array([1, 0, 3, 2, 5, 4])
        b = tr.mixer_masks(xf, lam=0.4, partner=p)
        assert b.shape == a.shape
        tr.fit(x, y, epochs=2, batch_size=16, progress=False, verbose=False)
        assert not np.array_equal(b, tr.mixer_masks(xf, lam=0.4, partner=p))  # the Mixer was trained
        for bad in (np.array([0, 0, 1, 2, 3, 4]), np.array([1, 0, 3, 2, 5, 6]), np.arange(5)):
            with pytest.raises(SamixError):
                tr.mixer_masks(xf, partner=bad)
        with pytest.raises(InvalidArgumentError):
            tr.mixer_masks(xf, lam=1.5)
        with pytest.raises(SamixError):
            tr.mixer_masks(xf[:1])


def test_mixer_mix_result_feeds_viz():
    x, y = tiny_data(16)
    xf = as_float(x[:6])
    m, tr = make_trainer(samix.AutoMix())
    with m, tr:
        r = tr.mixer_mix(xf, lam=0.3, seed=2)
        assert isinstance(r, samix.MixResult) and sorted(r.partner.tolist()) == list(range(6))
        masks = tr.mixer_masks(xf, lam=0.3, partner=r.partner, seed=2)
        np.testing.assert_array_equal(r.masks, masks[:, 0])
        np.testing.assert_allclose(r.images, xf * (1 - masks) + xf[r.partner] * masks, rtol=1e-6)
        np.testing.assert_allclose(r.lam, 1 - masks.mean(axis=(1, 2, 3)), rtol=1e-5)
        assert np.all(r.label_lam == np.float32(0.3))


def test_samix_p_reuses_a_frozen_mixer(tmp_path):
    x, y = tiny_data()
    xf = as_float(x[:8])
    path = tmp_path / "mixer.bin"
    m, tr = make_trainer(samix.SAMix())
    with m, tr:
        tr.fit(x, y, epochs=1, batch_size=16, progress=False, verbose=False)
        tr.save_mixer(path)
        original = tr.mixer_masks(xf, lam=0.3, seed=5)
    p = samix.SAMix.pretrained(path, lam_margin=0.05)
    assert repr(p).startswith("PretrainedMixer(path=") and "lam_margin=0.05" in repr(p)
    # A new network with another class count trains with the frozen Mixer.
    m2 = samix.models.resnet20(num_classes=5, in_channels=1, seed=3)
    with m2, samix.Trainer(m2, optimizer=samix.optim.SGD(lr=0.05), mix=p, seed=0) as t2:
        assert t2.heads == ["online"]
        before = t2.mixer_masks(xf, lam=0.3, seed=5)
        np.testing.assert_allclose(before, original, atol=1e-6)   # the same Mixer + encoder
        w0 = m2.state_dict()
        hist = t2.fit(x, y, epochs=2, batch_size=16, val=(x, y), progress=False, verbose=False)
        assert len(hist) == 2 and all(math.isfinite(r["loss"]) for r in hist)
        assert any(not np.array_equal(w0[k], v) for k, v in m2.state_dict().items())  # the classifier trained
        np.testing.assert_array_equal(before, t2.mixer_masks(xf, lam=0.3, seed=5))  # the Mixer did not
        t2.save_mixer(tmp_path / "again.bin")
        assert (tmp_path / "again.bin").read_bytes() == path.read_bytes()


def test_learned_trainer_checkpoint_round_trip(tmp_path):
    x, y = tiny_data(32)
    mix = samix.SAMix(eta=0.25, lam_margin=0.1)
    m, tr = make_trainer(mix)
    with m, tr:
        tr.fit(x, y, epochs=1, batch_size=16, progress=False, verbose=False)
        tr.save_checkpoint(tmp_path / "t.safetensors")
        ev = tr.evaluate(x, y)
    t2 = samix.Trainer.load_checkpoint(tmp_path / "t.safetensors")
    with t2, t2.model:
        assert t2.mix == mix and t2.heads == ["online", "momentum"]
        assert t2.evaluate(x, y) == ev


def test_handles_are_freed():
    x, y = tiny_data(16)
    base = samix.live_handles()
    for _ in range(3):
        m, tr = make_trainer(samix.SAMix())
        tr.evaluate(x, y)
        tr.mixer_masks(as_float(x[:4]))
        tr.close()
        m.close()
        samix.SAMix(eta=0.1)
    assert samix.live_handles() == base
