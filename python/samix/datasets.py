"""Image-classification datasets read by the engine's readers, returned as NumPy arrays.

Supported layouts: CIFAR-10 / CIFAR-100 official binary versions (``cifar-10-batches-bin/``,
``cifar-100-binary/``) and MNIST-style IDX files (Fashion-MNIST, MNIST; ``.gz`` or plain), e.g.
Debian's ``dataset-fashion-mnist`` package in ``/usr/share/datasets/fashion-mnist``.

Images are returned as ``uint8`` arrays of shape ``(N, C, H, W)`` (NCHW, as the engine uses) and
labels as ``int64`` arrays of shape ``(N,)``. A :class:`Dataset` unpacks like a tuple::

    x, y = samix.datasets.fashion_mnist(split="train")
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

import numpy as np

from ._lib import check, lib
from .errors import InvalidArgumentError, SamixTypeError

__all__ = ["Dataset", "load", "fashion_mnist", "cifar10", "cifar100", "FASHION_MNIST_DIR"]

#: Where Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

Split = Literal["train", "test"]


@dataclass(repr=False)
class Dataset:
    """An in-memory dataset: ``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64.

    Iterating yields ``images`` then ``labels``, so ``x, y = dataset`` works.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    name: str = ""

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.images
        yield self.labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return (f"Dataset({self.name!r}, images={n}×{c}×{h}×{w} uint8, "
                f"num_classes={self.num_classes})")


def _split_code(split: str) -> int:
    if split not in ("train", "test"):
        raise InvalidArgumentError(f"split must be 'train' or 'test', got {split!r}")
    return 0 if split == "train" else 1


def _path_bytes(directory: str | os.PathLike[str]) -> bytes:
    if not isinstance(directory, (str, bytes, os.PathLike)):
        raise SamixTypeError(f"directory must be a path, got {type(directory).__name__}")
    p = os.fsencode(directory)
    if b"\0" in p:
        raise InvalidArgumentError("directory contains a NUL byte")
    return p


def load(directory: str | os.PathLike[str], split: Split = "train", kind: str = "auto") -> Dataset:
    """Loads one split of a dataset from ``directory`` (the dataset folder or its parent).

    Args:
        directory: folder holding the files.
        split: ``"train"`` or ``"test"``.
        kind: ``"auto"`` (detect), ``"cifar10"``, ``"cifar100"``, ``"cifar100-coarse"`` or ``"idx"``.

    Returns:
        A :class:`Dataset` with images (N, C, H, W) uint8 and labels (N,) int64.

    Raises:
        SamixIOError: files missing, truncated or malformed.
    """
    if not isinstance(kind, str):
        raise SamixTypeError(f"kind must be a str, got {type(kind).__name__}")
    handle = ctypes.c_uint64(0)
    check(lib.samix_dataset_load(_path_bytes(directory), _split_code(split), kind.encode(),
                                 ctypes.addressof(handle)))
    try:
        return _materialize(handle.value)
    finally:
        check(lib.samix_dataset_free(handle.value))


def _materialize(h: int) -> Dataset:
    dims = np.zeros(5, dtype=np.int64)
    check(lib.samix_dataset_shape(h, dims.ctypes.data))
    n, c, hh, w, k = (int(v) for v in dims)
    images = np.empty((n, c, hh, w), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int64)
    check(lib.samix_dataset_copy(h, images.ctypes.data, images.size, labels.ctypes.data, labels.size))
    needed = ctypes.c_int64(0)
    check(lib.samix_dataset_info(h, None, 0, ctypes.addressof(needed)))
    buf = ctypes.create_string_buffer(int(needed.value))
    check(lib.samix_dataset_info(h, ctypes.addressof(buf), len(buf), ctypes.addressof(needed)))
    name, *names = buf.value.decode("utf-8", "replace").split("\n")
    return Dataset(images, labels, k, names, name)


def fashion_mnist(root: str | os.PathLike[str] = FASHION_MNIST_DIR, split: Split = "train") -> Dataset:
    """Fashion-MNIST (IDX files): 60000 train / 10000 test images of 1×28×28, 10 classes.

    ``root`` defaults to Debian's ``dataset-fashion-mnist`` location.
    """
    return load(root, split, "idx")


def cifar10(root: str | os.PathLike[str], split: Split = "train") -> Dataset:
    """CIFAR-10 binary version (``cifar-10-batches-bin``): 50000/10000 images of 3×32×32, 10 classes."""
    return load(root, split, "cifar10")


def cifar100(root: str | os.PathLike[str], split: Split = "train",
             labels: Literal["fine", "coarse"] = "fine") -> Dataset:
    """CIFAR-100 binary version (``cifar-100-binary``): 3×32×32 images, 100 fine or 20 coarse classes."""
    if labels not in ("fine", "coarse"):
        raise InvalidArgumentError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    return load(root, split, "cifar100" if labels == "fine" else "cifar100-coarse")


class _DatasetHandle:
    """A temporary engine dataset built from uint8 images (N, C, H, W) and labels (N,) (copied)."""

    def __init__(self, images: Any, labels: Any, num_classes: int, name: str = "x") -> None:
        from ._arrays import as_labels

        if not isinstance(images, np.ndarray):
            images = np.asarray(images)
        if images.dtype != np.uint8:
            raise SamixTypeError(
                f"{name} must be uint8 images (N, C, H, W) with values 0-255 as returned by samix.datasets, "
                f"got dtype {images.dtype}")
        if images.ndim != 4:
            from .errors import ShapeError

            raise ShapeError(f"{name} must have shape (N, C, H, W), got {images.shape}")
        images = np.ascontiguousarray(images)
        y = as_labels(labels, f"{name} labels")
        if y.shape[0] != images.shape[0]:
            from .errors import ShapeError

            raise ShapeError(f"{images.shape[0]} images but {y.shape[0]} labels")
        h = ctypes.c_uint64(0)
        n, c, hh, w = images.shape
        check(lib.samix_dataset_create(images.ctypes.data, y.ctypes.data, n, c, hh, w, num_classes,
                                       ctypes.addressof(h)))
        self.handle = h.value

    def __enter__(self) -> "_DatasetHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        check(lib.samix_dataset_free(self.handle))
