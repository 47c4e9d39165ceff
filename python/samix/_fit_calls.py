"""The engine fit calls of ``Trainer.fit`` and ``MoCo.fit`` with the user's epoch callbacks between them.

A record callback runs inside the engine call, which holds the object's lock, so user code that uses
the object (evaluate, save a checkpoint, kNN) cannot run there. Instead the record callback queues
the epoch record in ``pending`` and stops the call after that epoch; :func:`repeat_fit_call` runs
the user's callbacks with no call active and repeats the call, which continues the run in memory.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ._interrupt import InterruptGuard
from ._lib import check

__all__ = ["repeat_fit_call"]


def repeat_fit_call(call: Callable[[], int], pending: list, errors: list, guard: InterruptGuard,
                    callbacks: Sequence[Callable[[dict], Any]], finished: Callable[[], bool]) -> None:
    """Runs ``call()`` (one engine fit call returning its status) until the run is done.

    ``pending``: epoch records the record callback queued before stopping the call (it appends only
    when there are callbacks); ``errors``: exceptions it caught (re-raised first). A callback
    returning False, Ctrl-C (``guard``) or ``finished()`` ends the loop.
    """
    while True:
        pending.clear()
        status = call()
        if errors:
            raise errors[0]
        check(status)
        guard.check()
        if not pending or any(cb(pending[-1]) is False for cb in callbacks):
            return
        guard.check()
        if finished():
            return
