"""NumPy argument handling shared by the public API.

Rules (documented in the package docstring):

* Float inputs: a C-contiguous, aligned ``float32`` ndarray is used in place (zero-copy). Anything
  else (other dtypes, non-contiguous views, lists) is converted **once** with
  ``np.ascontiguousarray(x, dtype=np.float32)``. Complex, object, string and bool arrays are rejected.
* Label inputs: integer arrays, converted once to C-contiguous ``int64``.
* ``out=`` arrays are written in place and must already be C-contiguous, writeable ``float32`` of the
  exact output shape; they are never silently replaced by a copy.
"""

from __future__ import annotations

import ctypes
from typing import Any, Sequence

import numpy as np

from .errors import ShapeError, SamixTypeError

F32 = np.dtype(np.float32)
I64 = np.dtype(np.int64)


def as_f32(x: Any, name: str, ndim: int | Sequence[int] | None = None) -> np.ndarray:
    """``x`` as a C-contiguous float32 array (no copy when it already is one)."""
    if type(x) is np.ndarray and x.dtype == F32 and (ndim is None or x.ndim == ndim):
        f = x.flags
        if f.c_contiguous and f.aligned:
            return x  # the common case, without the checks below (called once per training batch)
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise SamixTypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.dtype != F32 or not a.flags.c_contiguous or not a.flags.aligned:
        a = np.ascontiguousarray(a, dtype=F32)
    _check_ndim(a, name, ndim)
    return a


def as_labels(y: Any, name: str, ndim: int = 1) -> np.ndarray:
    """``y`` as a C-contiguous int64 array of rank ``ndim``."""
    if type(y) is np.ndarray and y.dtype == I64 and y.ndim == ndim and y.flags.c_contiguous:
        return y  # the common case, without the conversions below (called once per training batch)
    a = y if isinstance(y, np.ndarray) else np.asarray(y)
    if a.dtype.kind not in "iu":
        if a.size == 0 and a.dtype.kind == "f":  # np.asarray([]) is float64
            a = a.astype(I64)
        else:
            raise SamixTypeError(f"{name} must be an integer array of class indices, got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        raise ShapeError(f"{name} has values beyond int64")
    a = np.ascontiguousarray(a, dtype=I64)
    _check_ndim(a, name, ndim)
    return a


def check_out(out: Any, shape: tuple[int, ...], name: str = "out") -> np.ndarray:
    """Validates an ``out=`` array: float32, C-contiguous, writeable, exactly ``shape``."""
    if not isinstance(out, np.ndarray):
        raise SamixTypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != F32:
        raise SamixTypeError(f"{name} must have dtype float32, got {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.aligned:
        raise SamixTypeError(f"{name} must be C-contiguous and aligned (it is written in place)")
    if not out.flags.writeable:
        raise SamixTypeError(f"{name} is read-only")
    if tuple(out.shape) != tuple(shape):
        raise ShapeError(f"{name} must have shape {tuple(shape)}, got {tuple(out.shape)}")
    return out


def _data_field_offset() -> int | None:
    """Offset of the data pointer in an ndarray object (right after ``PyObject_HEAD``: numpy's C ABI
    ``PyArrayObject_fields``, which ``PyArray_DATA`` reads in every compiled extension), or None when this
    interpreter or numpy lays arrays out differently (then :func:`address` uses the buffer protocol)."""
    offset = object.__basicsize__
    try:
        probes = [np.arange(4, dtype=np.float32), np.zeros((3, 5), np.int64)[1:], np.empty(0, np.uint8)]
        probes.append(probes[0][2:])
        if all(ctypes.c_void_p.from_address(id(a) + offset).value == a.ctypes.data for a in probes):
            return offset
    except Exception:  # pragma: no cover - an unusual interpreter
        pass
    return None  # pragma: no cover


_DATA_OFFSET = _data_field_offset()
_c_char = ctypes.c_char
_addressof = ctypes.addressof
_void_at = ctypes.c_void_p.from_address


def address(a: np.ndarray) -> int:
    """Address of the first element of the ndarray ``a`` (``a.ctypes.data``), for a ``c_void_p`` argument.

    ``a.ctypes.data`` builds a ``numpy._ctypes`` object on every access (1.3–1.9 µs here), a writable
    buffer export costs about 0.6 µs; reading the array's data field, at the offset checked against
    ``.ctypes.data`` at import (``id`` is the object's address in CPython), about 0.25 µs. ``a`` must be
    an ``np.ndarray`` (the callers check ``type(a) is np.ndarray`` or built it themselves).
    """
    if _DATA_OFFSET is not None:
        return _void_at(id(a) + _DATA_OFFSET).value or 0
    try:
        return _addressof(_c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):  # read-only or empty
        return a.ctypes.data


def shape_array(shape: Sequence[int]) -> np.ndarray:
    """A C int64 array holding ``shape`` (to pass as ``const int64_t *``)."""
    return np.ascontiguousarray(np.asarray(shape, dtype=I64).reshape(-1))


def _check_ndim(a: np.ndarray, name: str, ndim: int | Sequence[int] | None) -> None:
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if a.ndim not in allowed:
        want = " or ".join(str(d) for d in allowed)
        raise ShapeError(f"{name} must have rank {want}, got shape {a.shape}")
