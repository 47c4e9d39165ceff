"""Library-level functions: threads, errors, handle counting; all bad input must raise cleanly."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import samix
from samix import _lib
from samix.errors import (InvalidArgumentError, SamixError, SamixTypeError, Status,
                          error_for_status)


def test_threads_roundtrip():
    old = samix.get_num_threads()
    try:
        samix.set_num_threads(1)
        assert samix.get_num_threads() == 1
        samix.set_num_threads(3)
        assert samix.get_num_threads() == 3
    finally:
        samix.set_num_threads(old)


@given(st.integers(min_value=-(2**70), max_value=2**70).filter(lambda n: not 1 <= n <= 256))
def test_bad_thread_counts_raise(n):
    old = samix.get_num_threads()
    with pytest.raises(InvalidArgumentError):
        samix.set_num_threads(n)
    assert samix.get_num_threads() == old


@given(st.one_of(st.floats(), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2)))
def test_non_int_thread_counts_raise_type_error(v):
    with pytest.raises(TypeError):
        samix.set_num_threads(v)


def test_error_hierarchy_maps_every_status():
    expected = {
        Status.INVALID_ARGUMENT: ValueError, Status.SHAPE: ValueError, Status.NULL_POINTER: ValueError,
        Status.INVALID_HANDLE: ValueError, Status.WRONG_HANDLE_KIND: TypeError,
        Status.OUT_OF_MEMORY: MemoryError, Status.IO: OSError, Status.NUMERICAL: ValueError,
        Status.INVALID_STATE: RuntimeError, Status.INTERNAL: RuntimeError,
    }
    for status, base in expected.items():
        e = error_for_status(status, "msg")
        assert isinstance(e, SamixError) and isinstance(e, base) and e.status == status
        assert str(e) == "msg"
    assert isinstance(error_for_status(12345, "x"), RuntimeError)
    assert "12345" in str(error_for_status(12345, "x"))


def test_engine_message_reaches_python():
    with pytest.raises(InvalidArgumentError, match=r"samix_set_num_threads: .*got 0"):
        samix.set_num_threads(0)


def test_last_error_is_thread_local():
    failures = []
    barrier = threading.Barrier(6)

    def worker(k: int) -> None:
        barrier.wait()
        for _ in range(300):
            status = _lib.lib.samix_set_num_threads(-k)
            msg = _lib.last_error()
            if status != Status.INVALID_ARGUMENT or f"got -{k}" not in msg:
                failures.append((k, status, msg))
                return

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_live_handles_kinds():
    assert samix.live_handles() >= 0
    for kind in ("model", "optimizer", "policy", "trainer", "schedule"):
        assert samix.live_handles(kind) >= 0
    with pytest.raises(InvalidArgumentError):
        samix.live_handles("nope")


def test_info_dict():
    d = samix.info()
    assert d["version"] == samix.__version__
    assert d["abi_version"] == _lib.ABI_VERSION
    assert d["threads"] == samix.get_num_threads()
    assert "OpenBLAS" in d["blas"]


def test_type_error_class_is_samix_error():
    assert issubclass(SamixTypeError, TypeError) and issubclass(SamixTypeError, SamixError)
