"""samix.viz: mixing pictures (matplotlib is optional; tests needing it are skipped without it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import samix
from samix.errors import InvalidArgumentError, SamixTypeError, ShapeError

MEAN = np.array([0.5, 0.4, 0.3], np.float32)
STD = np.array([0.2, 0.25, 0.3], np.float32)


def batch(n=6, c=3, s=8, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.random((n, c, s, s), dtype=np.float32)  # display values in [0, 1)
    m, sd = (MEAN, STD) if c == 3 else (MEAN[:1], STD[:1])
    return raw, ((raw - m[None, :, None, None]) / sd[None, :, None, None]).astype(np.float32)


def test_missing_matplotlib_gives_install_hint():
    code = textwrap.dedent("""
        import sys
        sys.modules["matplotlib"] = None  # as if not installed
        import numpy as np, samix
        x = np.zeros((2, 1, 4, 4), np.float32)
        try:
            samix.viz.show_mixed(x, method="mixup", seed=0)
        except ImportError as e:
            print("ImportError:", e)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ImportError:" in r.stdout and "pip install matplotlib" in r.stdout


def test_show_mixed_grid_contents():
    pytest.importorskip("matplotlib")
    raw, x = batch()
    r = samix.mix(x, method="cutmix", alpha=1.0, per_sample=True, seed=3)
    fig = samix.viz.show_mixed(x, r, mean=MEAN, std=STD, ncols=4)
    axes = fig.axes
    assert len(axes) == 3 * 4
    # Row 1: un-normalised originals; row 2: partner-weight masks; row 3: mixed, titled with λ.
    for j in range(4):
        shown = np.asarray(axes[j].get_images()[0].get_array())
        np.testing.assert_allclose(shown, raw[j].transpose(1, 2, 0), atol=1e-5)
        mask = np.asarray(axes[4 + j].get_images()[0].get_array())
        np.testing.assert_array_equal(mask, r.masks[j])
        mixed = np.asarray(axes[8 + j].get_images()[0].get_array())
        expect = np.clip(r.images[j] * STD[:, None, None] + MEAN[:, None, None], 0, 1).transpose(1, 2, 0)
        np.testing.assert_allclose(mixed, expect, atol=1e-5)
        assert f"λ={r.lam[j]:.2f}" in axes[8 + j].get_title()
    assert axes[0].get_ylabel() == "original" and axes[8].get_ylabel() == "mixed"


def test_show_mixed_mixes_when_no_result_and_handles_gray_uint8():
    pytest.importorskip("matplotlib")
    x = (np.arange(2 * 1 * 6 * 6) % 256).astype(np.uint8).reshape(2, 1, 6, 6)
    fig = samix.viz.show_mixed(x, method="mixup", seed=1, ncols=8)
    assert len(fig.axes) == 3 * 2
    shown = np.asarray(fig.axes[0].get_images()[0].get_array())
    np.testing.assert_allclose(shown, x[0, 0] / 255.0, atol=1e-6)


def test_save_mixed_writes_png(tmp_path):
    mpl = pytest.importorskip("matplotlib")
    _, x = batch(4, 1, 10)
    path = tmp_path / "mix.png"
    samix.viz.save_mixed(x, None, path, mean=0.5, std=0.2, method="fmix", seed=0)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    del mpl


def test_bad_arguments():
    pytest.importorskip("matplotlib")
    _, x = batch(3)
    r = samix.mix(x, method="mixup", seed=0)
    with pytest.raises(ShapeError):
        samix.viz.show_mixed(x[0], r)
    with pytest.raises(ShapeError):
        samix.viz.show_mixed(x[:2], r)
    with pytest.raises(SamixTypeError):
        samix.viz.show_mixed(x, "not a result")
    with pytest.raises(InvalidArgumentError):
        samix.viz.show_mixed(x, r, mean=[0.1, 0.2])
    with pytest.raises(InvalidArgumentError):
        samix.viz.show_mixed(x, r, ncols=0)
    with pytest.raises(InvalidArgumentError):
        samix.viz.show_mixed(x, r, method="cutmix")
    with pytest.raises(InvalidArgumentError):
        samix.viz.show_mixed(x, samix.mix(x, method="mixup", return_masks=False))
    with pytest.raises(ShapeError):
        samix.viz.show_mixed(np.zeros((2, 2, 4, 4), np.float32), method="mixup")
    with pytest.raises(InvalidArgumentError):
        samix.viz.save_mixed(x, r)
