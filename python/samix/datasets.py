"""Image-classification datasets read by the engine's readers, returned as NumPy arrays.

Supported layouts: CIFAR-10 / CIFAR-100 official binary versions (``cifar-10-batches-bin/``,
``cifar-100-binary/``, read by the engine), the official python-pickle versions
(``cifar-10-batches-py/``: ``data_batch_1..5``, ``test_batch``, ``batches.meta``;
``cifar-100-python/``: ``train``, ``test``, ``meta``), read with a restricted unpickler that only
rebuilds NumPy arrays, dicts, lists, strings and numbers (no other code can run), and MNIST-style
IDX files (Fashion-MNIST, MNIST; ``.gz`` or plain), e.g. Debian's ``dataset-fashion-mnist``
package in ``/usr/share/datasets/fashion-mnist``. Both CIFAR layouts give identical arrays.

Images are returned as ``uint8`` arrays of shape ``(N, C, H, W)`` (NCHW, as the engine uses) and
labels as ``int64`` arrays of shape ``(N,)``. A :class:`Dataset` unpacks like a tuple::

    x, y = samix.datasets.fashion_mnist(split="train")
"""

from __future__ import annotations

import ctypes
import io
import os
import pickle
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

import numpy as np

from ._cstr import c_string
from ._lib import check, lib
from .errors import InvalidArgumentError, SamixIOError, SamixTypeError

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


def load(directory: str | os.PathLike[str], split: Split = "train", kind: str = "auto", *,
         allow_partial: bool = False) -> Dataset:
    """Loads one split of a dataset from ``directory`` (the dataset folder or its parent).

    Args:
        directory: folder holding the files.
        split: ``"train"`` or ``"test"``.
        kind: ``"auto"`` (detect), ``"cifar10"``, ``"cifar100"``, ``"cifar100-coarse"`` or ``"idx"``.
        allow_partial: accept CIFAR binary files with fewer or more records than the official ones
            (10000 per CIFAR-10 batch; CIFAR-100 50000/10000) — custom subsets. Off by default, so a
            truncated download is an error, not a smaller dataset.

    Returns:
        A :class:`Dataset` with images (N, C, H, W) uint8 and labels (N,) int64.

    Raises:
        SamixIOError: files missing, truncated or malformed.
    """
    if not isinstance(kind, str):
        raise SamixTypeError(f"kind must be a str, got {type(kind).__name__}")
    code = _split_code(split)
    path = _path_bytes(directory)
    handle = ctypes.c_uint64(0)
    try:
        check(lib.samix_dataset_load(path, code, c_string(kind, "kind"), 1 if allow_partial else 0,
                                     ctypes.addressof(handle)))
    except SamixIOError:
        # No binary/IDX files: the python-pickle CIFAR layout, if present.
        found = _find_cifar_pickle(os.fsdecode(path), kind)
        if found is None:
            raise
        return _load_cifar_pickle(found[0], found[1], split, allow_partial)
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


def cifar10(root: str | os.PathLike[str], split: Split = "train", *, allow_partial: bool = False) -> Dataset:
    """CIFAR-10, binary (``cifar-10-batches-bin``) or python-pickle (``cifar-10-batches-py``) version:
    50000/10000 images of 3×32×32, 10 classes. ``root`` is the data folder or its parent;
    ``allow_partial`` as in :func:`load`."""
    return load(root, split, "cifar10", allow_partial=allow_partial)


def cifar100(root: str | os.PathLike[str], split: Split = "train",
             labels: Literal["fine", "coarse"] = "fine", *, allow_partial: bool = False) -> Dataset:
    """CIFAR-100, binary (``cifar-100-binary``) or python-pickle (``cifar-100-python``) version:
    3×32×32 images, 100 fine or 20 coarse classes. ``root`` is the data folder or its parent."""
    if labels not in ("fine", "coarse"):
        raise InvalidArgumentError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    return load(root, split, "cifar100" if labels == "fine" else "cifar100-coarse", allow_partial=allow_partial)


# -- CIFAR python-pickle layout -----------------------------------------------------------------------

#: CIFAR-10 class names (the engine's defaults when batches.meta is absent).
CIFAR10_CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_PICKLE_LAYOUTS = {
    # kind: (folder, files that mark it)
    "cifar10": ("cifar-10-batches-py", ("test_batch", "data_batch_1")),
    "cifar100": ("cifar-100-python", ("test", "train")),
}


def _find_cifar_pickle(directory: str, kind: str) -> tuple[str, str] | None:
    """(folder, "cifar10" | "cifar100" | "cifar100-coarse") of a python-pickle CIFAR layout in
    ``directory`` or its standard sub-folder, or None."""
    kinds = {"auto": ["cifar10", "cifar100"], "cifar10": ["cifar10"], "cifar100": ["cifar100"],
             "cifar100-coarse": ["cifar100"]}.get(kind, [])
    for k in kinds:
        folder, markers = _PICKLE_LAYOUTS[k]
        for d in (directory, os.path.join(directory, folder)):
            if all(os.path.isfile(os.path.join(d, m)) for m in markers):
                return d, ("cifar100-coarse" if kind == "cifar100-coarse" else k)
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only what the CIFAR files contain: builtin containers, bytes/str, numbers, and
    NumPy arrays (``numpy.core.multiarray._reconstruct`` / ``numpy.ndarray`` / ``numpy.dtype``, plus
    ``_codecs.encode`` that protocol-2 pickles use for bytes). Any other global (os.system,
    builtins.eval, ...) is refused, so a malicious file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            if module == "_codecs":
                import _codecs

                return _codecs.encode
            if name == "_reconstruct":
                try:
                    from numpy._core.multiarray import _reconstruct  # NumPy ≥ 2
                except ImportError:  # pragma: no cover - NumPy 1.x
                    from numpy.core.multiarray import _reconstruct
                return _reconstruct
            return getattr(np, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a CIFAR file")


def _unpickle(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SamixIOError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise SamixIOError(f"{path}: refused or malformed pickle: {e}") from None
    except Exception as e:  # truncated or corrupt data raises assorted errors
        raise SamixIOError(f"{path}: malformed pickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise SamixIOError(f"{path}: expected a dict, got {type(obj).__name__}")
    # Python 2 pickles (the official files) have bytes keys; accept str keys too.
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _field(d: dict, key: str, path: str) -> Any:
    if key not in d:
        raise SamixIOError(f"{path}: missing '{key}' entry")
    return d[key]


def _batch(path: str, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    data = _field(d, "data", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise SamixIOError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {desc}")
    labels = _field(d, label_key, path)
    try:
        y = np.asarray(labels)
        if y.dtype.kind not in "iu" or y.ndim != 1:
            raise ValueError
        y = y.astype(np.int64)
    except (ValueError, TypeError):
        raise SamixIOError(f"{path}: '{label_key}' must be a list of integer labels") from None
    if y.shape[0] != data.shape[0]:
        raise SamixIOError(f"{path}: {data.shape[0]} images but {y.shape[0]} labels")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise SamixIOError(f"{path}: label {int(y.max() if y.max() >= num_classes else y.min())} is outside "
                           f"0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), y


def _names(path: str, key: str, count: int) -> list[str] | None:
    if not os.path.isfile(path):
        return None
    try:
        raw = _unpickle(path).get(key)
    except SamixIOError:
        return None
    if not isinstance(raw, list) or len(raw) != count:
        return None
    out = [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in raw]
    return out if all(isinstance(n, str) for n in out) else None


#: Images per official CIFAR file (the engine's CIFARReader checks the binary files the same way).
_OFFICIAL_RECORDS = {"cifar10": 10_000, "cifar100-train": 50_000, "cifar100-test": 10_000}


def _load_cifar_pickle(folder: str, kind: str, split: str, allow_partial: bool = False) -> Dataset:
    """Reads the python-pickle CIFAR layout into the same arrays, names and class list as the
    engine's binary reader (with the same official-size rule unless ``allow_partial``)."""
    if kind == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        parts = [_batch(os.path.join(folder, f), "labels", 10) for f in files]
        expected = [_OFFICIAL_RECORDS["cifar10"]] * len(files)
        names = _names(os.path.join(folder, "batches.meta"), "label_names", 10) or list(CIFAR10_CLASS_NAMES)
        k, title = 10, f"CIFAR-10 {split}"
    else:
        fine = kind == "cifar100"
        k = 100 if fine else 20
        files = ["train" if split == "train" else "test"]
        parts = [_batch(os.path.join(folder, files[0]), "fine_labels" if fine else "coarse_labels", k)]
        expected = [_OFFICIAL_RECORDS[f"cifar100-{files[0]}"]]
        names = _names(os.path.join(folder, "meta"), "fine_label_names" if fine else "coarse_label_names", k) or []
        title = f"CIFAR-100 {split} ({'fine' if fine else 'coarse'})"
    for f, p, e in zip(files, parts, expected):
        if not allow_partial and p[0].shape[0] != e:
            raise SamixIOError(f"{os.path.join(folder, f)}: holds {p[0].shape[0]} images, the official file holds {e} "
                               "(truncated or modified; load with allow_partial=True to read a custom subset)")
    images = np.ascontiguousarray(np.concatenate([p[0] for p in parts]))
    labels = np.concatenate([p[1] for p in parts])
    if images.shape[0] == 0:
        raise SamixIOError(f"{folder}: the {split} split has no images")
    return Dataset(images, labels, k, names, title)


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
