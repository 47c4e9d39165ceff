"""Library-level functions: version, threads, BLAS, live handles."""

from __future__ import annotations

import operator
from typing import Any

from ._lib import check, lib, library_path
from ._version import __version__
from .errors import InvalidArgumentError, SamixTypeError

_KINDS = {"any": 0, "model": 1, "optimizer": 2, "policy": 3, "trainer": 4, "schedule": 5, "dataset": 6, "ssl": 7}


def set_num_threads(n: int) -> None:
    """Sets the number of worker threads samix kernels use (1...256).

    The default is the number of online CPUs, or ``$SAMIX_NUM_THREADS`` when set.
    """
    try:
        n = operator.index(n)
    except TypeError:
        raise SamixTypeError(f"number of threads must be an int, got {type(n).__name__}") from None
    if not -(2**63) <= n < 2**63:
        raise InvalidArgumentError(f"number of threads must be in 1...256, got {n}")
    check(lib.samix_set_num_threads(n))


def get_num_threads() -> int:
    """Number of worker threads samix kernels use."""
    return int(lib.samix_get_num_threads())


def blas_info() -> str:
    """Description of the BLAS library the engine uses."""
    return lib.samix_blas_info().decode()


def library_version() -> str:
    """Version string reported by the loaded libsamix.so."""
    return lib.samix_version().decode()


def live_handles(kind: str = "any") -> int:
    """Number of live native objects of ``kind`` ('any', 'model', 'optimizer', 'policy', 'trainer',
    'schedule', 'dataset', 'ssl'); useful to check that objects are freed."""
    if kind not in _KINDS:
        raise InvalidArgumentError(f"unknown handle kind {kind!r}; expected one of {sorted(_KINDS)}")
    return int(lib.samix_live_handles(_KINDS[kind]))


def info() -> dict[str, Any]:
    """Version, library path, ABI version, BLAS and thread count, as a dict."""
    return {
        "version": __version__,
        "library_version": library_version(),
        "library": str(library_path),
        "abi_version": int(lib.samix_abi_version()),
        "blas": blas_info(),
        "threads": get_num_threads(),
    }
