"""Data-parallel training on Open MPI, the way PyTorch DDP trains on several GPUs.

Launch the same script on every rank::

    mpirun -np 4 --hostfile hosts python train.py

Nothing in the script changes: under ``mpirun`` with more than one rank a :class:`samix.Trainer` is
data-parallel from its creation (detected from Open MPI's environment; ``SAMIX_DISTRIBUTED=off``
opts out, ``SAMIX_DISTRIBUTED=mpi`` forces MPI). Every rank passes the whole training set with the
same seed; the engine builds each global batch of ``batch_size`` images identically on every rank,
trains each rank on its contiguous shard, averages the gradients over ranks before every
optimizer step, and evaluates sharded sets with the figures reduced over ranks. Only rank 0 writes
checkpoints; use :func:`is_main` to print or save your own files once.

Without ``mpirun`` this module reports a single process (rank 0 of 1) and never loads MPI, so a
machine without Open MPI runs everything; asking for distributed use there raises
:class:`samix.errors.DistributedError` naming what is missing. A collective that waits longer than
``SAMIX_DISTRIBUTED_TIMEOUT`` seconds (default 300: a rank died or hung) aborts the whole job.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ._lib import check, lib
from .errors import InvalidArgumentError

__all__ = ["rank", "size", "is_main", "is_distributed", "barrier", "allreduce"]

_OPS = {"sum": 0, "max": 1, "min": 2, "mean": 0}


@functools.lru_cache(maxsize=1)
def _info() -> tuple[int, int]:
    out = np.zeros(2, dtype=np.int64)
    check(lib.samix_distributed_info(out.ctypes.data))
    return int(out[0]), int(out[1])


def rank() -> int:
    """This process's rank in 0..size()-1 (0 without mpirun)."""
    return _info()[0]


def size() -> int:
    """Number of processes of the job (1 without mpirun)."""
    return _info()[1]


def is_main() -> bool:
    """Whether this is rank 0, the rank that prints and writes files."""
    return rank() == 0


def is_distributed() -> bool:
    """Whether the job has more than one rank."""
    return size() > 1


def barrier() -> None:
    """Waits until every rank arrives."""
    check(lib.samix_distributed_barrier())


def allreduce(value: Any, op: str = "sum") -> Any:
    """Reduces a number or NumPy array element-wise over every rank; every rank gets the result.

    Args:
        value: a number or array (any shape; float32 is reduced as float32, everything else as
            float64 and converted back to its dtype).
        op: ``"sum"``, ``"mean"`` (sum / size), ``"max"`` or ``"min"``.

    Returns:
        a new array of ``value``'s shape and dtype, or a Python number for a number.
    """
    if op not in _OPS:
        raise InvalidArgumentError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    scalar = np.ndim(value) == 0 and not isinstance(value, np.ndarray)
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"allreduce needs numbers, got dtype {a.dtype}")
    work = np.array(a, dtype=np.float32 if a.dtype == np.float32 and op in ("sum", "mean") else np.float64,
                    order="C", copy=True)
    dtype = 0 if work.dtype == np.float32 else 1
    check(lib.samix_distributed_allreduce(work.ctypes.data if work.size else None, work.size, dtype, _OPS[op]))
    if op == "mean":
        work = work / size()
    out = work if a.dtype.kind == "f" and op == "mean" else work.astype(a.dtype, copy=False)
    if scalar:
        return out.item()
    return out
