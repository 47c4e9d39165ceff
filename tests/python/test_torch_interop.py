"""PyTorch interop (issue 15): CPU tensors mixed in place zero-copy, tensors out, one clear samix error
per unsupported tensor, MixupCollate in a DataLoader with a spawn worker. Skipped (with the reason
printed) when torch is not installed: torch is not a dependency of samix or of its test venv."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None
    print("test_torch_interop: torch is not installed, PyTorch interop tests skipped")

pytestmark = pytest.mark.skipif(torch is None, reason="torch is not installed (optional)")

import samix  # noqa: E402
from samix.errors import InvalidArgumentError, SamixTypeError  # noqa: E402


def _batch(n=6, seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, 3, 8, 8)).astype(np.float32), g.integers(0, 10, n).astype(np.int64)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_mixup_mixes_the_tensor_in_place_and_returns_tensors(mode):
    x, y = _batch()
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=10, seed=1)
    xt, yt = torch.from_numpy(x.copy()), torch.from_numpy(y)
    ptr = xt.data_ptr()
    out, t = samix.Mixup(**kw)(xt, yt)
    assert out is xt and xt.data_ptr() == ptr
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and tuple(t.shape) == (6, 10)
    ref_x, ref_t = samix.Mixup(**kw)(x.copy(), y)
    np.testing.assert_array_equal(xt.numpy(), ref_x)
    np.testing.assert_array_equal(t.numpy(), ref_t)
    assert not np.array_equal(xt.numpy(), x)


def test_mix_with_tensors_and_out():
    x, y = _batch()
    xt = torch.from_numpy(x.copy())
    r = samix.mix(xt, torch.from_numpy(y), method="cutmix", num_classes=10, seed=0)
    assert isinstance(r.images, torch.Tensor) and isinstance(r.targets, torch.Tensor)
    np.testing.assert_array_equal(xt.numpy(), x)  # no out: x untouched
    ref = samix.mix(x, y, method="cutmix", num_classes=10, seed=0)
    np.testing.assert_array_equal(r.images.numpy(), ref.images)
    r2 = samix.mix(xt, y, method="cutmix", num_classes=10, seed=0, out=xt)  # in place
    assert r2.images is xt
    np.testing.assert_array_equal(xt.numpy(), ref.images)
    o = torch.empty_like(xt)
    r3 = samix.mix(x, y, method="mixup", num_classes=10, seed=0, out=o)
    assert r3.images is o and isinstance(r3.targets, torch.Tensor)


def test_unsupported_tensors_get_one_clear_samix_error_each():
    x, y = _batch()
    m = samix.Mixup(num_classes=10)
    yt = torch.from_numpy(y)
    with pytest.raises(InvalidArgumentError, match=r"requires grad.*detach\(\)"):
        m(torch.from_numpy(x).requires_grad_(), yt)
    for dt in (torch.bfloat16, torch.float16, torch.float64):
        with pytest.raises(SamixTypeError, match=r"dtype torch\..*\.float\(\)"):
            m(torch.from_numpy(x).to(dt), yt)
    with pytest.raises(SamixTypeError, match=r"contiguous"):
        m(torch.from_numpy(x).transpose(2, 3), yt)
    with pytest.raises(SamixTypeError, match=r"contiguous"):
        m(torch.from_numpy(x).contiguous(memory_format=torch.channels_last), yt)
    with pytest.raises(SamixTypeError, match=r"on meta.*\.cpu\(\)"):  # a non-CPU device (no GPU needed)
        m(torch.empty((6, 3, 8, 8), device="meta"), yt)
    with pytest.raises(SamixTypeError, match=r"uint8"):
        m(torch.zeros((6, 3, 8, 8), dtype=torch.uint8), yt)
    with pytest.raises(SamixTypeError, match=r"contiguous"):
        samix.mix(torch.from_numpy(x), out=torch.from_numpy(x).transpose(2, 3), method="mixup")


def test_collate_with_tensor_samples_returns_tensors():
    g = np.random.default_rng(0)
    imgs = torch.from_numpy(g.integers(0, 256, (4, 3, 8, 8)).astype(np.uint8))
    batch = [(imgs[i], torch.tensor(i)) for i in range(4)]
    c = samix.MixupCollate(num_classes=10, seed=0)
    out, t = c(batch)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and isinstance(t, torch.Tensor)
    ref, rt = samix.MixupCollate(num_classes=10, seed=0, tensors=False)([(b[0].numpy(), int(b[1])) for b in batch])
    np.testing.assert_array_equal(out.numpy(), ref)
    np.testing.assert_array_equal(t.numpy(), rt)


class _U8Dataset(torch.utils.data.Dataset if torch is not None else object):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = np.random.default_rng(i)
        return g.integers(0, 256, (3, 8, 8)).astype(np.uint8), i % 10


def test_collate_in_a_spawn_dataloader_worker():
    collate = samix.MixupCollate(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=10, seed=3, tensors=True)
    pickle.dumps(collate)
    loader = torch.utils.data.DataLoader(_U8Dataset(), batch_size=4, collate_fn=collate, num_workers=1,
                                         multiprocessing_context="spawn")
    batches = list(loader)
    assert len(batches) == 2
    for xb, tb in batches:
        assert xb.dtype == torch.uint8 and tuple(xb.shape) == (4, 3, 8, 8)
        assert tb.dtype == torch.float32 and tuple(tb.shape) == (4, 10)
        np.testing.assert_allclose(tb.sum(1).numpy(), 1.0, atol=1e-5)
    # deterministic: the same loader again gives the same batches
    again = list(torch.utils.data.DataLoader(_U8Dataset(), batch_size=4, collate_fn=collate, num_workers=1,
                                             multiprocessing_context="spawn"))
    for (a, ta), (b, tb) in zip(batches, again):
        assert torch.equal(a, b) and torch.equal(ta, tb)


def test_viz_accepts_tensor_results():
    pytest.importorskip("matplotlib")
    x, y = _batch()
    xt = torch.from_numpy(x)
    fig = samix.viz.show_mixed(xt, samix.mix(xt, y, method="cutmix", num_classes=10, seed=0))
    assert fig._repr_png_().startswith(b"\x89PNG")
