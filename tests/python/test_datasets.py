"""samix.datasets: real files, and fuzzed/malformed files that must raise, never crash."""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import samix
from samix import datasets
from samix.errors import InvalidArgumentError, SamixIOError, SamixTypeError


def test_fashion_mnist_matches_raw_idx(fashion_dir):
    ds = datasets.fashion_mnist(split="test")
    x, y = ds
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert ds.num_classes == 10 and len(ds.class_names) == 10 and len(ds) == 10000
    # Compare with a direct NumPy parse of the same IDX files.
    raw = gzip.decompress((fashion_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    ref = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(10000, 1, 28, 28)
    lab = np.frombuffer(gzip.decompress((fashion_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()),
                        dtype=np.uint8, offset=8)
    np.testing.assert_array_equal(x, ref)
    np.testing.assert_array_equal(y, lab)
    assert "Dataset(" in repr(ds) and "10000×1×28×28" in repr(ds)


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError):
        datasets.load("/tmp", split="validation")
    with pytest.raises(InvalidArgumentError):
        datasets.load("/tmp", kind="imagenet")
    with pytest.raises(SamixTypeError):
        datasets.load(123)
    with pytest.raises(SamixTypeError):
        datasets.load("/tmp", kind=3)
    with pytest.raises(InvalidArgumentError):
        datasets.load("/tmp\0x")
    with pytest.raises(SamixIOError):
        datasets.load("/nonexistent/dir")
    with pytest.raises(SamixIOError):
        datasets.cifar10("/tmp")
    with pytest.raises(InvalidArgumentError):
        datasets.cifar100("/tmp", labels="medium")


def _idx(dims: list[int], payload: bytes, dtype_code: int = 0x08) -> bytes:
    return struct.pack(">BBBB", 0, 0, dtype_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


@settings(max_examples=150)
@given(
    n=st.integers(0, 6), h=st.integers(0, 5), w=st.integers(0, 5),
    label_max=st.integers(0, 255), truncate=st.integers(-3, 3),
    dtype_code=st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0D, 0x42]),
    gz=st.booleans(), label_n_delta=st.sampled_from([0, 0, 0, 1, -1]),
)
def test_fuzzed_idx_files_load_or_raise_io_error(n, h, w, label_max, truncate, dtype_code, gz, label_n_delta):
    rng = np.random.default_rng(n * 1000 + h * 10 + w)
    pixels = rng.integers(0, 256, size=n * h * w, dtype=np.uint8).tobytes()
    if truncate < 0:
        pixels = pixels[:max(0, len(pixels) + truncate)]
    elif truncate > 0:
        pixels = pixels + b"\x00" * truncate
    ln = max(0, n + label_n_delta)
    labels = rng.integers(0, label_max + 1, size=ln, dtype=np.uint8).tobytes()
    files = {"train-images-idx3-ubyte": _idx([n, h, w], pixels, dtype_code),
             "train-labels-idx1-ubyte": _idx([ln], labels)}
    with tempfile.TemporaryDirectory() as d:
        for name, data in files.items():
            if gz:
                (Path(d) / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (Path(d) / name).write_bytes(data)
        label_values = np.frombuffer(labels, np.uint8)
        valid = (len(pixels) == n * h * w and dtype_code == 0x08 and ln == n and h > 0 and w > 0
                 and int(label_values.max(initial=0)) < 10)
        try:
            ds = datasets.load(d, "train", "idx")
        except (SamixIOError, InvalidArgumentError) as e:
            assert not valid, f"valid files rejected: {e}"
        else:
            assert valid, "malformed files accepted"
            assert ds.images.shape == (n, 1, h, w)
            np.testing.assert_array_equal(ds.images.reshape(-1), np.frombuffer(pixels, np.uint8))
            np.testing.assert_array_equal(ds.labels, label_values)


@settings(max_examples=150)
@given(data=st.binary(max_size=200), which=st.sampled_from(["images", "labels", "both"]), gz=st.booleans())
def test_random_bytes_as_idx_raise_io_error(data, which, gz):
    good_img = _idx([1, 2, 2], b"\x01\x02\x03\x04")
    good_lab = _idx([1], b"\x03")
    img = data if which in ("images", "both") else good_img
    lab = data if which in ("labels", "both") else good_lab
    with tempfile.TemporaryDirectory() as d:
        suffix = ".gz" if gz else ""
        enc = gzip.compress if gz else (lambda b: b)
        (Path(d) / f"t10k-images-idx3-ubyte{suffix}").write_bytes(enc(img))
        (Path(d) / f"t10k-labels-idx1-ubyte{suffix}").write_bytes(enc(lab))
        try:
            datasets.load(d, "test", "auto", allow_partial=True)
        except (SamixIOError, InvalidArgumentError):
            pass


@settings(max_examples=100)
@given(sizes=st.lists(st.integers(0, 3 * 3073 + 5), min_size=6, max_size=6), label=st.integers(0, 255))
def test_fuzzed_cifar10_binary(sizes, label):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "cifar-10-batches-bin"
        root.mkdir()
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for name, size in zip(names, sizes):
            b = bytearray(np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes())
            for r in range(0, size, 3073):
                b[r] = label
            (root / name).write_bytes(bytes(b))
        try:
            ds = datasets.cifar10(d, "test", allow_partial=True)
        except (SamixIOError, InvalidArgumentError):
            ok = sizes[5] > 0 and sizes[5] % 3073 == 0 and label < 10
            assert not ok
        else:
            assert sizes[5] % 3073 == 0 and label < 10
            assert ds.images.shape == (sizes[5] // 3073, 3, 32, 32)
            assert (ds.labels == label).all()


def test_many_loads_free_their_handles(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx([2, 2, 2], bytes(range(8))))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx([2], b"\x01\x02"))
    before = samix.live_handles("any")
    for _ in range(300):
        x, y = datasets.load(tmp_path, "test")
    assert samix.live_handles("any") == before
    assert x.shape == (2, 1, 2, 2) and list(y) == [1, 2]
