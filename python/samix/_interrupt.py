"""Clean Ctrl-C during long engine calls (``Trainer.fit``, ``MoCo.fit``).

Python runs signal handlers only between bytecodes of the main thread. While the Swift engine
runs, no bytecode runs, except inside the ctypes callbacks the engine makes (after every step of
``Trainer.fit``, after every epoch of ``MoCo.fit``). With the default handler, the
``KeyboardInterrupt`` would be raised inside such a callback, where ctypes can only print
"Exception ignored on calling ctypes callback function" and go on.

:func:`interrupt_guard` therefore swaps, for the duration of the call, the default SIGINT handler
for one that only records the request; the callbacks read :attr:`InterruptGuard.requested` and ask
the engine to stop at the next step, and the caller raises ``KeyboardInterrupt`` once the engine has
returned and the Python object is consistent again. The previous handler is restored on exit.
Nothing is installed outside the main thread or when the program has its own SIGINT handler (its
handler then keeps running as before).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

__all__ = ["InterruptGuard", "interrupt_guard"]


class InterruptGuard:
    """Whether Ctrl-C was pressed while the guard was active."""

    def __init__(self) -> None:
        self.requested = False

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
    _active = guard if installed else None
    try:
        yield guard
    finally:
        if installed:
            _active = None
            signal.signal(signal.SIGINT, previous)
