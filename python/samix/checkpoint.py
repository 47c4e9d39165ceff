"""Checkpoint files: safetensors (float32 tensors + a ``__metadata__`` string map).

Model files hold the state dict under PyTorch-style dotted names; trainer checkpoints add the
optimizer state, the objective's modules, counters and the trainer's creation arguments (see
:meth:`samix.Trainer.save_checkpoint`). Both are readable by the ``safetensors`` library
(``safetensors.numpy.load_file(path)``) and by plain NumPy; saves are atomic (temporary file in the
same directory, fsync, rename), so a crash mid-save never destroys an existing file.
"""

from __future__ import annotations

import ctypes
import json
import os
from typing import Any, Mapping, Union

from ._cstr import c_string
from ._lib import check, lib
from .errors import InvalidArgumentError, SamixTypeError

__all__ = ["read_metadata", "PathLike"]

PathLike = Union[str, "os.PathLike[str]"]


def path_arg(path: Any, name: str = "path") -> bytes:
    """``path`` (str or os.PathLike) as the bytes the C library expects."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise SamixTypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}") from None
    b = p if isinstance(p, bytes) else os.fsencode(p)
    if not b or b"\0" in b:
        raise InvalidArgumentError(f"{name} must be a non-empty path without NUL bytes, got {path!r}")
    return b


class MetadataArgs:
    """Keeps the C arrays of caller metadata alive for one call."""

    def __init__(self, metadata: Mapping[str, Any] | None) -> None:
        items = []
        for k, v in (metadata or {}).items():
            if not isinstance(k, str):
                raise SamixTypeError(f"metadata keys must be str, got {type(k).__name__}")
            if not isinstance(v, str):
                raise SamixTypeError(f"metadata values must be str, got {type(v).__name__} for {k!r}")
            items.append((c_string(k, "metadata key"), c_string(v, f"metadata value of {k!r}")))
        self.n = len(items)
        self.keys = (ctypes.c_char_p * max(self.n, 1))(*[k for k, _ in items])
        self.values = (ctypes.c_char_p * max(self.n, 1))(*[v for _, v in items])

    @property
    def key_ptr(self) -> int:
        return ctypes.addressof(self.keys)

    @property
    def value_ptr(self) -> int:
        return ctypes.addressof(self.values)


def read_metadata(path: PathLike) -> dict[str, str]:
    """The ``__metadata__`` map of a safetensors file (reads only its header).

    Raises :class:`~samix.errors.SamixIOError` for a missing, truncated or malformed file.
    """
    p = path_arg(path)
    needed = ctypes.c_int64(0)
    check(lib.samix_checkpoint_metadata(p, None, 0, ctypes.addressof(needed)))
    buf = ctypes.create_string_buffer(int(needed.value))
    check(lib.samix_checkpoint_metadata(p, ctypes.addressof(buf), len(buf), ctypes.addressof(needed)))
    return json.loads(buf.value.decode("utf-8"))
