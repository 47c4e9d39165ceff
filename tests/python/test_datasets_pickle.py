"""CIFAR-10/100 python-pickle layouts: same arrays as the binary layout, safe unpickling."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from samix import datasets
from samix.errors import SamixIOError

C10_NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _pickle(path, obj, protocol=2):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def make_cifar10(root, sizes=(3, 2, 4, 1, 2), test=5, seed=0, bytes_keys=True, protocol=2):
    """Writes the same small CIFAR-10 in the binary and in the python-pickle layout."""
    rng = np.random.default_rng(seed)
    b = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
    binroot, pyroot = root / "bin" / "cifar-10-batches-bin", root / "py" / "cifar-10-batches-py"
    binroot.mkdir(parents=True)
    pyroot.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, n in zip(names, list(sizes) + [test]):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n)
        rec = np.concatenate([y.astype(np.uint8)[:, None], x], axis=1)
        (binroot / f"{name}.bin").write_bytes(rec.tobytes())
        _pickle(pyroot / name, {b("batch_label"): b(f"{name} of 6"), b("labels"): [int(v) for v in y], b("data"): x,
                                b("filenames"): [b(f"img{i}.png") for i in range(n)]}, protocol)
    (binroot / "batches.meta.txt").write_text("\n".join(C10_NAMES) + "\n")
    _pickle(pyroot / "batches.meta", {b("label_names"): [b(s) for s in C10_NAMES], b("num_vis"): 3072,
                                      b("num_cases_per_batch"): 10000}, protocol)
    return root / "bin", root / "py", pyroot


def make_cifar100(root, train=7, test=4, seed=1):
    rng = np.random.default_rng(seed)
    binroot, pyroot = root / "bin" / "cifar-100-binary", root / "py" / "cifar-100-python"
    binroot.mkdir(parents=True)
    pyroot.mkdir(parents=True)
    fine_names = [f"fine{i}" for i in range(100)]
    coarse_names = [f"coarse{i}" for i in range(20)]
    for name, n in (("train", train), ("test", test)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n)
        coarse = rng.integers(0, 20, n)
        rec = np.concatenate([coarse.astype(np.uint8)[:, None], fine.astype(np.uint8)[:, None], x], axis=1)
        (binroot / f"{name}.bin").write_bytes(rec.tobytes())
        _pickle(pyroot / name, {b"filenames": [b"x.png"] * n, b"batch_label": name.encode(),
                                b"fine_labels": [int(v) for v in fine], b"coarse_labels": [int(v) for v in coarse],
                                b"data": x})
    (binroot / "fine_label_names.txt").write_text("\n".join(fine_names) + "\n")
    (binroot / "coarse_label_names.txt").write_text("\n".join(coarse_names) + "\n")
    _pickle(pyroot / "meta", {b"fine_label_names": [s.encode() for s in fine_names],
                              b"coarse_label_names": [s.encode() for s in coarse_names]})
    return root / "bin", root / "py", pyroot


def assert_same(a, b):
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.images.dtype == b.images.dtype == np.uint8 and a.images.flags.c_contiguous
    assert a.labels.dtype == b.labels.dtype == np.int64
    assert (a.num_classes, a.class_names, a.name) == (b.num_classes, b.class_names, b.name)


@pytest.mark.parametrize("bytes_keys,protocol", [(True, 2), (False, 4)])
def test_cifar10_pickle_matches_binary(tmp_path, bytes_keys, protocol):
    binroot, pyroot, pydir = make_cifar10(tmp_path, bytes_keys=bytes_keys, protocol=protocol)
    for split in ("train", "test"):
        ref = datasets.cifar10(binroot, split, allow_partial=True)
        for root in (pyroot, pydir):  # the parent or the folder itself
            assert_same(datasets.cifar10(root, split, allow_partial=True), ref)
            assert_same(datasets.load(root, split, allow_partial=True), ref)  # auto-detected
    assert len(datasets.cifar10(pyroot, "train", allow_partial=True)) == 12
    assert datasets.cifar10(pyroot, allow_partial=True).class_names == C10_NAMES
    # Without batches.meta: the default names, like the binary reader without batches.meta.txt.
    os.remove(pydir / "batches.meta")
    assert datasets.cifar10(pyroot, "test", allow_partial=True).class_names == datasets.CIFAR10_CLASS_NAMES


def test_cifar100_pickle_matches_binary(tmp_path):
    binroot, pyroot, pydir = make_cifar100(tmp_path)
    for split in ("train", "test"):
        for labels in ("fine", "coarse"):
            ref = datasets.cifar100(binroot, split, labels=labels, allow_partial=True)
            got = datasets.cifar100(pyroot, split, labels=labels, allow_partial=True)
            assert_same(got, ref)
            assert got.num_classes == (100 if labels == "fine" else 20)
        assert_same(datasets.load(pydir, split, allow_partial=True), datasets.cifar100(binroot, split, allow_partial=True))


def test_malicious_pickle_is_refused(tmp_path):
    _, pyroot, pydir = make_cifar10(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    _pickle(pydir / "test_batch", {b"data": Evil(), b"labels": []})
    with pytest.raises(SamixIOError, match="not allowed"):
        datasets.cifar10(pyroot, "test", allow_partial=True)
    assert not marker.exists()

    class Evil2:
        def __reduce__(self):
            return (eval, ("1+1",))

    _pickle(pydir / "test_batch", Evil2())
    with pytest.raises(SamixIOError, match=r"\.eval. is not allowed"):
        datasets.cifar10(pyroot, "test", allow_partial=True)


def test_malformed_pickles_raise_io_errors(tmp_path):
    _, pyroot, pydir = make_cifar10(tmp_path)
    good = (pydir / "test_batch").read_bytes()
    x = np.zeros((2, 3072), np.uint8)
    cases = {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "garbage": b"\x80\x02garbage",
        "not a dict": pickle.dumps([1, 2, 3], protocol=2),
        "no data": pickle.dumps({b"labels": [1]}, protocol=2),
        "no labels": pickle.dumps({b"data": x}, protocol=2),
        "wrong shape": pickle.dumps({b"data": np.zeros((2, 3071), np.uint8), b"labels": [1, 2]}, protocol=2),
        "wrong dtype": pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, protocol=2),
        "label range": pickle.dumps({b"data": x, b"labels": [1, 10]}, protocol=2),
        "negative label": pickle.dumps({b"data": x, b"labels": [-1, 0]}, protocol=2),
        "label count": pickle.dumps({b"data": x, b"labels": [1]}, protocol=2),
        "label type": pickle.dumps({b"data": x, b"labels": [b"a", b"b"]}, protocol=2),
        "no images": pickle.dumps({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, protocol=2),
    }
    for what, data in cases.items():
        (pydir / "test_batch").write_bytes(data)
        with pytest.raises(SamixIOError, match="test_batch|no images") as ei:
            datasets.cifar10(pyroot, "test", allow_partial=True)
        assert isinstance(ei.value, OSError), what
    (pydir / "test_batch").write_bytes(good)
    assert len(datasets.cifar10(pyroot, "test", allow_partial=True)) == 5
    # A missing training batch.
    os.remove(pydir / "data_batch_3")
    with pytest.raises(SamixIOError, match="data_batch_3"):
        datasets.cifar10(pyroot, "train", allow_partial=True)
    # Neither layout: the engine's message.
    with pytest.raises(SamixIOError, match="no CIFAR-10"):
        datasets.cifar10(tmp_path / "nothing-here", "train", allow_partial=True)
