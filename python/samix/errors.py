"""Exceptions raised by samix.

Every failure reported by the engine becomes a subclass of :class:`SamixError` that also derives
from the built-in exception a Python user would expect, so ``except ValueError`` keeps working::

    SamixError
    ├── InvalidArgumentError (ValueError)   bad value: alpha <= 0, unknown name, label out of range
    ├── ShapeError (ValueError)             wrong rank, shape or size
    ├── NumericalError (ValueError)         NaN/Inf input, diverged computation
    ├── InvalidHandleError (ValueError)     object already closed/freed
    ├── SamixTypeError (TypeError)          wrong dtype or argument type, wrong kind of object
    ├── SamixMemoryError (MemoryError)      allocation failed
    ├── SamixIOError (OSError)              file missing, unreadable or malformed
    ├── InvalidStateError (RuntimeError)    operation not valid in the object's state
    ├── DistributedError (RuntimeError)     MPI missing/failing, ranks disagree, a rank died or hung
    └── InternalError (RuntimeError)        a bug in samix
"""

from __future__ import annotations

__all__ = [
    "SamixError",
    "InvalidArgumentError",
    "ShapeError",
    "NumericalError",
    "InvalidHandleError",
    "SamixTypeError",
    "SamixMemoryError",
    "SamixIOError",
    "InvalidStateError",
    "InternalError",
    "DistributedError",
    "Status",
    "error_for_status",
]

from enum import IntEnum


class Status(IntEnum):
    """Status codes of the C ABI (``samix_status`` in ``samix.h``)."""

    OK = 0
    INVALID_ARGUMENT = 1
    SHAPE = 2
    NULL_POINTER = 3
    INVALID_HANDLE = 4
    WRONG_HANDLE_KIND = 5
    OUT_OF_MEMORY = 6
    IO = 7
    NUMERICAL = 8
    INVALID_STATE = 9
    INTERNAL = 10
    DISTRIBUTED = 11
    INTERRUPTED = 12  # raised as KeyboardInterrupt by samix._lib.check


class SamixError(Exception):
    """Base class of all samix errors. ``status`` is the C status code (or None if raised in Python)."""

    status: Status | None

    def __init__(self, message: str, status: Status | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidArgumentError(SamixError, ValueError):
    """An argument has an invalid value."""


class ShapeError(SamixError, ValueError):
    """Array ranks, shapes or sizes do not fit."""


class NumericalError(SamixError, ValueError):
    """NaN/Inf where finite values are required, or a diverged computation."""


class InvalidHandleError(SamixError, ValueError):
    """The object was closed/freed (or the handle was never valid)."""


class SamixTypeError(SamixError, TypeError):
    """An argument has the wrong type or dtype, or a handle is of the wrong kind."""


class SamixMemoryError(SamixError, MemoryError):
    """The engine could not allocate memory."""


class SamixIOError(SamixError, OSError):
    """A file is missing, unreadable or malformed."""


class InvalidStateError(SamixError, RuntimeError):
    """The operation is not valid in the object's current state."""


class DistributedError(SamixError, RuntimeError):
    """Distributed training failed: Open MPI missing or failing, ranks that disagree (model, settings,
    parameters), or a rank that died or hung past the collective timeout."""


class InternalError(SamixError, RuntimeError):
    """An unexpected failure inside samix (a bug; please report it)."""


_BY_STATUS: dict[int, type[SamixError]] = {
    Status.INVALID_ARGUMENT: InvalidArgumentError,
    Status.SHAPE: ShapeError,
    Status.NULL_POINTER: InvalidArgumentError,
    Status.INVALID_HANDLE: InvalidHandleError,
    Status.WRONG_HANDLE_KIND: SamixTypeError,
    Status.OUT_OF_MEMORY: SamixMemoryError,
    Status.IO: SamixIOError,
    Status.NUMERICAL: NumericalError,
    Status.INVALID_STATE: InvalidStateError,
    Status.INTERNAL: InternalError,
    Status.DISTRIBUTED: DistributedError,
}


def error_for_status(status: int, message: str) -> SamixError:
    """The exception instance for a non-zero C status code and its message."""
    try:
        st: Status | None = Status(status)
    except ValueError:
        st = None
    cls = _BY_STATUS.get(status, InternalError)
    if st is None:
        message = f"unknown status {status}: {message}"
    return cls(message, st)
