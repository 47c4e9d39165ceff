"""Clean Ctrl-C during long engine calls (fits, evaluations, kNN, linear probes).

Python runs signal handlers only between bytecodes of the main thread. While the Swift engine
runs, no bytecode runs, except inside the ctypes callbacks the engine makes (after every step of
``Trainer.fit``, after every epoch of ``MoCo.fit``). With the default handler, the
``KeyboardInterrupt`` would be raised inside such a callback, where ctypes can only print
"Exception ignored on calling ctypes callback function" and go on.

:func:`interrupt_guard` therefore swaps, for the duration of the call, the default SIGINT handler
for one that only records the request; the callbacks read :attr:`InterruptGuard.requested` and ask
the engine to stop at the next step, and the caller raises ``KeyboardInterrupt`` once the engine has
returned and the Python object is consistent again. The previous handler is restored on exit.

Calls that change no state the caller keeps (evaluations, feature extraction, kNN, the linear
probe, mask comparisons) have no record callback; :func:`interruptible` installs the engine's
per-thread interrupt check (``samix_set_interrupt_check``) instead, which the engine calls between
batches: the call then fails with ``SAMIX_E_INTERRUPTED`` and :func:`samix._lib.check` raises
``KeyboardInterrupt``.
Nothing is installed outside the main thread or when the program has its own SIGINT handler (its
handler then keeps running as before).
"""

from __future__ import annotations

import ctypes
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

__all__ = ["InterruptGuard", "interrupt_guard", "interruptible"]


class InterruptGuard:
    """Whether Ctrl-C was pressed while the guard was active."""

    def __init__(self, installed: bool = False) -> None:
        self.requested = False
        #: Whether this guard's handler receives SIGINT (main thread, default handler before).
        self.installed = installed

    def _handler(self, signum: int, frame: Any) -> None:
        self.requested = True

    def check(self) -> None:
        """Raises ``KeyboardInterrupt`` if Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt


_active: Optional[InterruptGuard] = None


@contextmanager
def interrupt_guard() -> Iterator[InterruptGuard]:
    """Context manager yielding the active :class:`InterruptGuard` (nested uses share the outer one)."""
    global _active
    if _active is not None:
        yield _active
        return
    guard = InterruptGuard()
    installed = False
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                previous = signal.signal(signal.SIGINT, guard._handler)
                installed = True
        except (ValueError, OSError):  # embedded interpreters without signal support
            installed = False
    guard.installed = installed
    _active = guard if installed else None
    try:
        yield guard
    finally:
        if installed:
            _active = None
            signal.signal(signal.SIGINT, previous)


#: C type of samix_interrupt_check.
INTERRUPT_CHECK = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)
_check_depth = threading.local()


@contextmanager
def interruptible() -> Iterator[InterruptGuard]:
    """Context manager for one long engine call without a record callback: Ctrl-C makes the
    engine stop at its next batch and ``KeyboardInterrupt`` is raised (by ``check`` of the call's
    status, or on exit if the call had already finished). Nested uses share the outer check."""
    from ._lib import check, lib

    with interrupt_guard() as guard:
        depth = getattr(_check_depth, "value", 0)
        callback = None
        if guard.installed and depth == 0:
            # Entering this callback runs Python's pending signal handlers, i.e. the guard's.
            callback = INTERRUPT_CHECK(lambda _user: 1 if guard.requested else 0)
            check(lib.samix_set_interrupt_check(callback, None))
        _check_depth.value = depth + 1
        try:
            yield guard
        finally:
            _check_depth.value = depth
            if callback is not None:
                lib.samix_set_interrupt_check(None, None)
        guard.check()
