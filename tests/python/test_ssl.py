"""samix.ssl: MoCo v2 / + Mixup / SAMix-I / SAMix-C pre-training, kNN and linear-probe evaluation,
backbone files, argument errors and handle lifetimes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import samix
from samix.errors import InvalidArgumentError, InvalidStateError, SamixError, SamixIOError, SamixTypeError, ShapeError

SMALL = dict(queue_size=64, neck_hidden=32, embedding_dim=16)


def colour_data(n=48, seed=0, size=16, classes=3):
    """uint8 RGB images; class c has a bright channel c (+ noise): separable by colour."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rng.shuffle(y)
    x = rng.integers(0, 60, (n, 3, size, size)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, c] += 150
    return x, y


def small_moco(mix=None, **kw):
    return samix.ssl.MoCo("resnet20", 3, mix=mix, seed=kw.pop("seed", 0), **SMALL, **kw)


def strip(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


CASES = {
    "moco": dict(mix=None),
    "mixup": dict(mix="mixup"),
    "samix-i": dict(mix=samix.SAMix(), variant="instance"),
    "samix-c": dict(mix=samix.SAMix(), variant="cluster", clusters=4, kmeans_iterations=3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_epoch_runs_and_is_deterministic(case):
    x, y = colour_data()
    runs = []
    for _ in range(2):
        with small_moco(**CASES[case]) as m:
            assert m.method == {"moco": "moco", "mixup": "moco-mixup", "samix-i": "samix-i", "samix-c": "samix-c"}[case]
            h = m.fit(x, y, epochs=1, batch_size=16, knn_every=1, knn_k=5, val=(x[:12], y[:12]), verbose=False)
            runs.append((strip(h), m.features(x[:4])))
    (h0, f0), (h1, f1) = runs
    assert h0 == h1
    np.testing.assert_array_equal(f0, f1)
    r = h0[0]
    assert r["epoch"] == 1 and r["steps"] == 3 and math.isfinite(r["loss"]) and 0 <= r["knn_top1"] <= 1
    if case.startswith("samix"):
        assert "loss_mb" in r and "loss_mask" in r, r
    if case == "samix-c":
        assert math.isfinite(r["kmeans_inertia"])


def test_seed_changes_the_run_and_history_accumulates():
    x, y = colour_data(32)
    losses = []
    for seed in (0, 1):
        with small_moco(seed=seed) as m:
            losses.append(m.fit(x, epochs=1, batch_size=16, verbose=False)[0]["loss"])
            m.fit(x, epochs=1, batch_size=16, verbose=False)
            assert [r["epoch"] for r in m.history] == [1, 2] and "knn_top1" not in m.history[0]
    assert losses[0] != losses[1]


def test_callback_stops():
    x, y = colour_data(32)
    with small_moco() as m:
        h = m.fit(x, epochs=3, batch_size=16, callbacks=[lambda r: False], verbose=False)
        assert len(h) == 1


@pytest.mark.parametrize("case", ["moco", "samix-c"])
def test_epoch_callbacks_run_outside_the_engine_call_and_may_use_the_model(case, tmp_path):
    """Callbacks may call the model (kNN, features, save_backbone): the engine call stops after the
    epoch, the callbacks run with no call active, and the same call continues in memory, so the
    run equals one without callbacks (was: a trap on the model's lock)."""
    x, y = colour_data(32)
    with small_moco(**CASES[case]) as ref:
        ref_h = strip(ref.fit(x, y, epochs=3, batch_size=16, verbose=False))
        ref_f = ref.features(x[:4])
    seen = []
    with small_moco(**CASES[case]) as m:
        def cb(rec):
            seen.append((rec["epoch"], len(m.history), samix.ssl.knn_eval(m, x, y, x, y, k=3) >= 0))
            m.save_backbone(tmp_path / f"e{rec['epoch']}.bb")
        h = strip(m.fit(x, y, epochs=3, batch_size=16, callbacks=[cb], verbose=False))
        assert seen == [(1, 1, True), (2, 2, True), (3, 3, True)]
        assert h == ref_h
        np.testing.assert_array_equal(m.features(x[:4]), ref_f)
        assert all((tmp_path / f"e{e}.bb").exists() for e in (1, 2, 3))
        # a later call is a new run (the next seed), not a continuation of the finished one
        assert [r["fit_epoch"] for r in m.fit(x, y, epochs=2, batch_size=16, verbose=False)[3:]] == [1, 2]


@pytest.mark.parametrize("case", ["moco", "samix-c"])
def test_checkpoint_resume_in_a_new_object_is_bit_identical(case, tmp_path):
    x, y = colour_data(32)
    with small_moco(**CASES[case]) as m:
        full = strip(m.fit(x, epochs=2, batch_size=16, verbose=False))
        f_full = m.features(x[:4])
    path = tmp_path / "ssl.ckpt"
    with small_moco(**CASES[case]) as m:   # interrupted after epoch 1 (the file holds epoch 1)
        h = m.fit(x, epochs=2, batch_size=16, callbacks=[lambda r: False], verbose=False, checkpoint=path)
        assert len(h) == 1 and path.exists()
    with small_moco(**CASES[case]) as m:   # a new process would do the same: resume from the file
        h = m.fit(x, epochs=2, batch_size=16, verbose=False, checkpoint=path)
        assert [r["fit_epoch"] for r in h] == [2]
        assert strip(h)[0] == {**full[1], "epoch": 1, "fit_epoch": 2}
        np.testing.assert_array_equal(m.features(x[:4]), f_full)
    with small_moco(**CASES[case]) as m:   # another learning rate or length is another run: refused
        with pytest.raises(InvalidArgumentError, match="lr = 0.06, this trainer has 0.03"):
            m.fit(x, epochs=2, batch_size=16, lr=0.03, verbose=False, checkpoint=path)
        with pytest.raises(InvalidArgumentError, match="epochs = 2, this trainer has 3"):
            m.fit(x, epochs=3, batch_size=16, verbose=False, checkpoint=path)
    with small_moco(**{**CASES[case], "seed": 5}) as m:   # another seed: refused, nothing trained
        with pytest.raises(InvalidArgumentError, match="seed"):
            m.fit(x, epochs=2, batch_size=16, verbose=False, checkpoint=path)
        assert m.history == []
    with pytest.raises(InvalidArgumentError):
        small_moco().fit(x, epochs=1, batch_size=16, verbose=False, checkpoint="")


def test_knn_and_linear_probe_on_separable_data():
    x, y = colour_data(90, seed=1)
    xt, yt = colour_data(45, seed=2)
    with samix.models.resnet20(num_classes=3, in_channels=3, seed=0) as model:
        assert samix.ssl.knn_eval(model, x, y, xt, yt, k=10) >= 0.95
        r = samix.ssl.linear_probe(model, x, y, xt, yt, epochs=30, lr=10.0, batch_size=32)
        assert r["train_accuracy"] >= 0.95 and r["test_accuracy"] >= 0.95, r
        # Labels that ignore the images cannot be predicted on new data: the probe is not vacuous.
        rng = np.random.default_rng(0)
        r = samix.ssl.linear_probe(model, x, rng.integers(0, 3, 90), xt, rng.integers(0, 3, 45), epochs=30)
        assert r["test_accuracy"] < 0.7
    with small_moco() as m:
        acc = samix.ssl.knn_eval(m, x, y, xt, yt, k=10, temperature=0.1)
        assert 0.0 <= acc <= 1.0


def test_backbone_save_and_load(tmp_path):
    x, y = colour_data(32)
    path = tmp_path / "bb.bin"
    with small_moco(mix="mixup") as m:
        m.fit(x, epochs=1, batch_size=16, verbose=False)
        m.save_backbone(path, metadata={"note": "test"})
        f = m.features(x)
        knn = samix.ssl.knn_eval(m, x, y, x, y, k=5)
    info = samix.ssl.backbone_info(path)
    assert info["architecture"] == "resnet20" and info["in_channels"] == "3"
    assert info["method"] == "moco-mixup" and info["note"] == "test"
    with samix.ssl.load_backbone(path, num_classes=3) as model:
        assert model.architecture == "resnet20" and model.num_classes == 3
        np.testing.assert_allclose(samix.ssl.features(model, x), f, rtol=1e-5, atol=1e-5)
        assert samix.ssl.knn_eval(model, x, y, x, y, k=5) == knn
        # The loaded model fine-tunes like any model.
        with samix.Trainer(model, optimizer=samix.optim.SGD(lr=0.01)) as tr:
            tr.fit(x, y, epochs=1, batch_size=16, progress=False, verbose=False)
    (tmp_path / "junk.bin").write_bytes(b"not a backbone")
    with pytest.raises(SamixIOError):
        samix.ssl.load_backbone(tmp_path / "junk.bin")
    with samix.models.resnet18(num_classes=3, in_channels=3) as other, pytest.raises(InvalidArgumentError):
        samix._lib.check(samix._lib.lib.samix_model_load_backbone(other.handle, str(path).encode()))


@pytest.mark.parametrize("variant", ["instance", "cluster"])
def test_ssl_mixer_is_reusable_for_supervised_samix_p(variant, tmp_path):
    """A Mixer learned without labels (SAMix-I/C) drives SAMix^P supervised training."""
    x, y = colour_data(32)
    path = tmp_path / f"mixer-{variant}.bin"
    extra = dict(clusters=4, kmeans_iterations=2) if variant == "cluster" else {}
    with small_moco(mix=samix.SAMix(), variant=variant, **extra) as m:
        m.fit(x, epochs=1, batch_size=16, verbose=False)
        m.save_mixer(path)
    xf = (x[:8].astype(np.float32) / 255.0 - 0.4) / 0.3
    with samix.models.resnet20(num_classes=3, in_channels=3, seed=1) as model, \
            samix.Trainer(model, optimizer=samix.optim.SGD(lr=0.05), mix=samix.SAMix.pretrained(path), seed=0) as tr:
        lo, hi = tr.mixer_masks(xf, lam=0.2, seed=3), tr.mixer_masks(xf, lam=0.8, seed=3)
        assert lo.shape == (8, 1, 16, 16) and lo.min() >= 0 and hi.max() <= 1
        assert not np.array_equal(lo, hi)
        hist = tr.fit(x, y, epochs=1, batch_size=16, progress=False, verbose=False)
        assert math.isfinite(hist[0]["loss"])
        np.testing.assert_array_equal(lo, tr.mixer_masks(xf, lam=0.2, seed=3))   # frozen
        tr.save_mixer(tmp_path / "again.bin")
    assert (tmp_path / "again.bin").read_bytes() == path.read_bytes()   # the same Mixer and encoder
    for mix in (None, "mixup"):
        with small_moco(mix=mix) as m, pytest.raises(InvalidStateError, match="no Mixer"):
            m.save_mixer(tmp_path / "none.bin")
    assert not (tmp_path / "none.bin").exists()


def test_samix_c_kmeans_warm_start_reports_kept_pseudo_labels():
    x, y = colour_data(32)
    kept = {}
    for warm in (False, True):
        with small_moco(mix=samix.SAMix(), variant="cluster", clusters=4, kmeans_iterations=3,
                        kmeans_warm_start=warm) as m:
            assert m.options["kmeans_warm_start"] is warm
            h = m.fit(x, epochs=3, batch_size=16, verbose=False)
            assert "pseudo_labels_kept" not in h[0]
            kept[warm] = [r["pseudo_labels_kept"] for r in h[1:]]
            assert all(0 <= k <= 1 for k in kept[warm])
    assert kept[False] != kept[True]
    with pytest.raises(SamixTypeError, match="kmeans_warm_start"):
        small_moco(mix=samix.SAMix(), variant="cluster", kmeans_warm_start="yes")


def test_samix_c_clustering_options_reach_the_engine():
    """None = the engine's reference defaults (query features, PCA 256, cluster-head mixup CE reaching
    the Mixer); the pre-issue-14 behaviour is expressible and trains differently."""
    x, y = colour_data(32)
    losses = {}
    for name, kw in (("reference", {}),
                     ("old", dict(cluster_features="key", cluster_pca_dim=0, detach_cluster_head_mixed=True))):
        with small_moco(mix=samix.SAMix(), variant="cluster", clusters=4, kmeans_iterations=3, **kw) as m:
            for k in ("cluster_features", "cluster_pca_dim", "detach_cluster_head_mixed"):
                assert (k in m.options) == (name == "old")
            losses[name] = [r["loss"] for r in m.fit(x, epochs=1, batch_size=16, verbose=False)]
    assert losses["reference"] != losses["old"]
    with pytest.raises(InvalidArgumentError, match="cluster_features"):
        small_moco(mix=samix.SAMix(), variant="cluster", cluster_features="value")
    with pytest.raises(InvalidArgumentError, match="cluster_pca_dim"):
        small_moco(mix=samix.SAMix(), variant="cluster", cluster_pca_dim=-1)
    with pytest.raises(SamixTypeError, match="detach_cluster_head_mixed"):
        small_moco(mix=samix.SAMix(), variant="cluster", detach_cluster_head_mixed=1)


def test_compare_masks_scores_every_mask_kind_without_changing_the_model(tmp_path):
    x, y = colour_data(32)
    with small_moco(mix=samix.SAMix(), variant="instance") as m:
        assert len(m.compare_masks(x, batches=1, batch_size=8)) == 4   # an untrained Mixer can be scored too
        m.fit(x, epochs=1, batch_size=16, verbose=False)
        f = m.features(x[:6])
        m.save_mixer(tmp_path / "before.bin")
        rows = m.compare_masks(x, batches=2, batch_size=8, seed=1)
        # Nothing changed: query features, Mixer and key encoder (weights and BN statistics).
        np.testing.assert_array_equal(f, m.features(x[:6]))
        m.save_mixer(tmp_path / "after.bin")
        assert (tmp_path / "before.bin").read_bytes() == (tmp_path / "after.bin").read_bytes()
        assert rows == m.compare_masks(x, batches=2, batch_size=8, seed=1)
        assert rows != m.compare_masks(x, batches=2, batch_size=8, seed=2)
        assert [r["mask"] for r in rows] == ["mixer", "mixer-shuffled", "mixup", "cutmix"]
        by = {r["mask"]: r for r in rows}
        for r in rows:
            assert math.isfinite(r["loss_mb"]) and r["local_excess"] >= -1e-5 and 0 <= r["dominant_correct"] <= 1
        assert by["mixup"]["mask_std"] < 1e-6 and by["cutmix"]["mask_std"] > 0.2
        assert by["mixer"]["own_share"] == pytest.approx(by["mixer-shuffled"]["own_share"], abs=1e-6)
        for bad in (dict(batches=0), dict(batch_size=1), dict(batch_size=33)):
            with pytest.raises(InvalidArgumentError):
                m.compare_masks(x, **bad)
    with small_moco(mix=samix.SAMix(), variant="cluster", clusters=4, kmeans_iterations=2) as m:
        m.fit(x, epochs=1, batch_size=16, verbose=False)
        rows = m.compare_masks(x, batches=1, batch_size=8)
        assert len(rows) == 4 and "loss_mb_local" not in rows[0] and math.isfinite(rows[0]["loss_mb"])
        with pytest.raises(InvalidStateError, match="pseudo-labels"):
            m.compare_masks(x[:20], batches=1, batch_size=8)
    with small_moco(mix="mixup") as m, pytest.raises(InvalidStateError, match="no Mixer"):
        m.compare_masks(x, batches=1, batch_size=8)


def test_bad_arguments():
    x, y = colour_data(16)
    for kw, exc in [(dict(mix="cutmix"), InvalidArgumentError), (dict(mix=samix.AutoMix()), SamixTypeError),
                    (dict(mix=3), SamixTypeError), (dict(variant="cluster"), InvalidArgumentError),
                    (dict(variant="both", mix=samix.SAMix()), InvalidArgumentError),
                    (dict(mix=samix.SAMix(), mask_adjust="sometimes"), InvalidArgumentError),
                    (dict(mix=samix.SAMix(), positive_extension="up"), InvalidArgumentError),
                    (dict(mix=samix.SAMix(mask_layer=3)), InvalidArgumentError),
                    (dict(mix=samix.SAMix(), variant="cluster", clusters=1), InvalidArgumentError),
                    (dict(queue_size=0), InvalidArgumentError), (dict(temperature=0.0), InvalidArgumentError),
                    (dict(momentum=1.5), InvalidArgumentError), (dict(seed=-1), InvalidArgumentError)]:
        with pytest.raises(exc):
            samix.ssl.MoCo("resnet20", 3, **{**SMALL, **kw})
    with pytest.raises(InvalidArgumentError):
        samix.ssl.MoCo("nonet", 3, **SMALL)
    with small_moco() as m:
        with pytest.raises(SamixTypeError):
            m.fit(x.astype(np.float32), epochs=1, batch_size=8, verbose=False)
        with pytest.raises(ShapeError):
            m.fit(x[:, :1], epochs=1, batch_size=8, verbose=False)
        with pytest.raises(InvalidArgumentError):
            m.fit(x, epochs=1, batch_size=32, verbose=False)          # larger than the data
        with pytest.raises(InvalidArgumentError):
            m.fit(x, epochs=1, batch_size=8, val=(x, y), verbose=False)  # kNN bank needs y
        with pytest.raises(InvalidArgumentError):
            m.fit(x, y, epochs=0, verbose=False)
        with pytest.raises(SamixTypeError):
            samix.ssl.knn_eval("encoder", x, y, x, y)
        with pytest.raises(InvalidArgumentError):
            samix.ssl.knn_eval(m, x, y, x, y, k=0)
        with pytest.raises(InvalidArgumentError):
            samix.ssl.linear_probe(m, x, y, x, y, scaling="pca")
        assert m.history == []


@settings(max_examples=60)
@given(name=st.sampled_from(["queue_size", "temperature", "momentum", "neck_hidden", "embedding_dim",
                             "shuffle_bn_groups", "alpha"]),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 0), st.text(max_size=2),
                       st.none()))
def test_invalid_options_never_build_a_model(name, value):
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    valid = number and ((name in ("temperature", "alpha") and value > 0) or (name == "momentum" and 0 <= value <= 1))
    if valid:
        return
    before = samix.live_handles("ssl")
    with pytest.raises(SamixError):
        samix.ssl.MoCo("resnet20", 3, mix="mixup", **{**SMALL, name: value})
    assert samix.live_handles("ssl") == before


def test_handles_are_freed():
    x, y = colour_data(16)
    base = samix.live_handles()
    for case in CASES.values():
        m = small_moco(**case)
        assert samix.live_handles("ssl") >= 1
        samix.ssl.knn_eval(m, x, y, x, y, k=3)
        m.close()
        m.close()
    assert samix.live_handles() == base and samix.live_handles("ssl") == 0
