"""Base class of Python objects that own a samix handle (model, optimizer, policy, trainer, ...)."""

from __future__ import annotations

import threading
from typing import Any, Callable

from ._lib import check
from .errors import InvalidHandleError


class Handle:
    """Owns one live handle of the C library and frees it exactly once.

    ``close()`` frees the native object; it is also called by ``__del__`` and by ``with`` blocks.
    Using a closed object raises :class:`~samix.errors.InvalidHandleError`. ``close()`` is
    idempotent and thread-safe.
    """

    _free_fn: Callable[[int], int]  # set by subclasses: the C free function
    _handle: int

    def __init__(self, handle: int) -> None:
        self._handle = int(handle)
        self._close_lock = threading.Lock()

    @property
    def handle(self) -> int:
        """The raw C handle (raises if closed)."""
        h = self._handle
        if not h:
            raise InvalidHandleError(f"{type(self).__name__} is closed")
        return h

    @property
    def closed(self) -> bool:
        return not self._handle

    def close(self) -> None:
        """Frees the native object (idempotent)."""
        lock = getattr(self, "_close_lock", None)
        if lock is None:
            return
        with lock:
            h = self._handle
            if not h:
                return
            self._handle = 0
        check(type(self)._free_fn(h))

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown or already freed: nothing to do
            pass
