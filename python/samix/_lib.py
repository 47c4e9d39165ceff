"""Loading ``libsamix.so`` and declaring its C functions (see ``samix.h``).

The library is looked up in this order:

1. ``$SAMIX_LIBRARY`` — path of a ``libsamix.so`` to use instead of the bundled one (for example a
   debug build: ``swift build --product samix`` then ``SAMIX_LIBRARY=.build/debug/libsamix.so``).
2. ``<package>/lib/libsamix.so`` — put there by ``pip install .`` / ``pip install -e .``.

Right after loading, the library's ABI version is compared with :data:`ABI_VERSION`; a missing
library, a missing symbol or a different version raises an :class:`ImportError` that says how to fix it.

All functions are declared with ``argtypes``/``restype``; arrays are passed as ``c_void_p`` built
from ``arr.ctypes.data`` once per call. ctypes releases the GIL while a call runs.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import c_char_p, c_double, c_float, c_int32, c_int64, c_uint64, c_void_p
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError, Status, error_for_status

#: ABI version this package was written for (``SAMIX_ABI_VERSION`` in samix.h).
ABI_VERSION = 7

#: ``alpha`` argument meaning "the method's default" (``SAMIX_DEFAULT_ALPHA`` in samix.h; NaN is an error).
DEFAULT_ALPHA = -1.0

_FIX = (
    "Reinstall samix from its source tree so the Swift library is rebuilt and bundled: "
    "`pip install --force-reinstall /path/to/samix` (or `pip install -e .` in the checkout), "
    "or point SAMIX_LIBRARY at a matching libsamix.so."
)

_status = c_int32
_handle = c_uint64
_ptr = c_void_p
_i64 = c_int64

class _CString(c_char_p):
    """``const char *`` argument that refuses an embedded NUL byte: C would silently cut the string
    there (``"resnet20\\x00evil"`` would name resnet20), so every string crossing the ABI is checked."""

    @classmethod
    def from_param(cls, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)) and b"\0" in value:
            raise InvalidArgumentError(f"string argument {bytes(value)!r} contains a NUL byte")
        return c_char_p.from_param(value)


#: name -> (restype, argtypes). Mirrors samix.h; tests/python/test_abi.py checks the two agree.
SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    # library information and errors
    "samix_abi_version": (c_int32, []),
    "samix_version": (c_char_p, []),
    "samix_check_environment": (_status, []),
    "samix_last_error": (c_char_p, []),
    "samix_last_error_code": (_status, []),
    "samix_clear_error": (None, []),
    "samix_set_num_threads": (_status, [_i64]),
    "samix_get_num_threads": (_i64, []),
    "samix_set_interrupt_check": (_status, [_ptr, _ptr]),
    "samix_blas_info": (c_char_p, []),
    # handles
    "samix_live_handles": (_i64, [c_int32]),
    "samix_handle_kind": (c_int32, [_handle]),
    # datasets
    "samix_dataset_load": (_status, [c_char_p, c_int32, c_char_p, c_int32, _ptr]),
    "samix_dataset_create": (_status, [_ptr, _ptr, _i64, _i64, _i64, _i64, _i64, _ptr]),
    "samix_dataset_shape": (_status, [_handle, _ptr]),
    "samix_dataset_copy": (_status, [_handle, _ptr, _i64, _ptr, _i64]),
    "samix_dataset_info": (_status, [_handle, _ptr, _i64, _ptr]),
    "samix_dataset_free": (_status, [_handle]),
    # models
    "samix_model_create": (_status, [c_char_p, _i64, _i64, c_uint64, _ptr]),
    "samix_model_free": (_status, [_handle]),
    "samix_model_info": (_status, [_handle, _ptr, _ptr, _i64, _ptr]),
    "samix_model_set_training": (_status, [_handle, c_int32]),
    "samix_model_is_training": (_status, [_handle, _ptr]),
    "samix_model_forward": (_status, [_handle, _ptr, _ptr, _ptr, _i64]),
    "samix_model_forward_mode": (_status, [_handle, _ptr, _ptr, _ptr, _i64, c_int32]),
    "samix_model_loss_grad": (_status, [_handle, _ptr, _ptr, _ptr, c_double, _ptr, _ptr, _i64]),
    "samix_model_state_entry": (_status, [_handle, _i64, _ptr, _i64, _ptr, _ptr, _ptr, _ptr]),
    "samix_model_state_get": (_status, [_handle, _i64, _ptr, _i64]),
    "samix_model_load_state": (_status, [_handle, _i64, _ptr, _ptr, _ptr, _ptr, c_int32]),
    # checkpoints
    "samix_model_save": (_status, [_handle, c_char_p, _i64, _ptr, _ptr]),
    "samix_model_load": (_status, [_handle, c_char_p, c_int32]),
    "samix_checkpoint_metadata": (_status, [c_char_p, _ptr, _i64, _ptr]),
    "samix_trainer_save": (_status, [_handle, c_char_p, _i64, _ptr, _ptr]),
    "samix_trainer_load": (_status, [_handle, c_char_p, c_int32]),
    # mixing policies
    "samix_policy_create": (_status, [c_char_p, c_double, c_int32, c_int32, c_uint64, _ptr]),
    "samix_policy_create_timm": (_status, [c_double, c_double, c_double, c_double, c_double, c_double,
                                           c_int32, c_int32, c_double, _i64, c_uint64, _ptr]),
    "samix_policy_free": (_status, [_handle]),
    "samix_policy_rng_state": (_status, [_handle, _ptr, c_int32]),
    "samix_policy_mix": (_status, [_handle, _ptr, _ptr, _ptr, c_int32, _ptr, _i64, c_double, c_double,
                                   _ptr, _ptr, _ptr, _ptr, _ptr, _ptr]),
    "samix_mix": (_status, [c_char_p, c_double, c_int32, c_int32, c_uint64, _ptr, _ptr, _ptr, c_int32, _ptr, _i64,
                            c_double, c_double, _ptr, _ptr, _ptr, _ptr, _ptr, _ptr]),
    "samix_policy_mix_timm": (_status, [_handle, _ptr, _ptr, _ptr, _ptr]),
    "samix_model_policy_mix": (_status, [_handle, c_char_p, c_double, c_uint64, _ptr, _ptr, _ptr, _ptr, _i64,
                                         c_double, c_double, _ptr, _ptr, _ptr, _ptr, _ptr]),
    # trainers
    "samix_trainer_create": (_status, [_handle, c_char_p, c_double, c_double, c_char_p, c_double, c_double,
                                       c_double, c_int32, c_char_p, _i64, c_uint64, _ptr]),
    "samix_trainer_free": (_status, [_handle]),
    "samix_trainer_evaluate": (_status, [_handle, _handle, _i64, _ptr, _ptr]),
    "samix_trainer_checkpoint_config": (_status, [c_char_p, _ptr, _i64, _ptr]),
    "samix_trainer_fit": (_status, [_handle, _handle, _ptr, _ptr, _ptr, _handle, _ptr, _ptr, _ptr, _i64, _i64,
                                    c_int32, _i64, c_int32, _ptr, _ptr]),
    "samix_trainer_evaluate_array": (_status, [_handle, _ptr, _ptr, _ptr, _i64, _ptr, _ptr]),
    "samix_trainer_progress": (_status, [_handle, _ptr]),
    "samix_trainer_distribute": (_status, [_handle, c_int32, c_double, _ptr]),
    # distributed (Open MPI, loaded only under mpirun)
    "samix_distributed_info": (_status, [_ptr]),
    "samix_distributed_barrier": (_status, []),
    "samix_distributed_allreduce": (_status, [_ptr, _i64, c_int32, c_int32]),
    "samix_trainer_train_step": (_status, [_handle, _ptr, _ptr, _ptr, _i64, _ptr]),
    # learned mixing
    "samix_learned_check": (_status, [c_char_p, c_char_p]),
    "samix_learned_defaults": (_status, [c_char_p, _ptr, _i64, _ptr]),
    "samix_option_schema": (_status, [c_char_p, _ptr, _i64, _ptr]),
    "samix_trainer_create_learned": (_status, [_handle, c_char_p, c_char_p, c_char_p, c_double, c_double,
                                               c_double, c_int32, c_char_p, _i64, c_uint64, _ptr]),
    "samix_trainer_heads": (_status, [_handle, _ptr, _i64, _ptr, _ptr]),
    "samix_trainer_evaluate_heads_array": (_status, [_handle, _ptr, _ptr, _ptr, _i64, _ptr, _ptr, _i64]),
    "samix_trainer_evaluate_heads": (_status, [_handle, _handle, _i64, _ptr, _ptr, _i64]),
    "samix_trainer_mixer_masks": (_status, [_handle, _ptr, _ptr, c_double, _ptr, c_uint64, _ptr, _i64]),
    "samix_trainer_save_mixer": (_status, [_handle, c_char_p]),
    # self-supervised learning
    "samix_ssl_create": (_status, [c_char_p, _i64, c_char_p, c_char_p, c_uint64, _ptr]),
    "samix_ssl_free": (_status, [_handle]),
    "samix_ssl_fit": (_status, [_handle, _handle, _handle, _i64, _i64, c_double, c_double, _i64, _i64,
                                c_double, c_char_p, c_int32, _ptr, _ptr]),
    "samix_ssl_save_backbone": (_status, [_handle, c_char_p, _i64, _ptr, _ptr]),
    "samix_ssl_save_mixer": (_status, [_handle, c_char_p]),
    "samix_ssl_compare_masks": (_status, [_handle, _handle, _i64, _i64, c_uint64, _ptr, _ptr]),
    "samix_model_load_backbone": (_status, [_handle, c_char_p]),
    "samix_backbone_features": (_status, [_handle, _handle, c_int32, _ptr, _i64, _ptr]),
    "samix_backbone_knn": (_status, [_handle, _handle, _handle, _i64, c_double, _ptr]),
    "samix_backbone_linear_probe": (_status, [_handle, _handle, _handle, _i64, _i64, c_double, c_double,
                                              c_double, c_char_p, c_uint64, _ptr, _ptr]),
}

#: C type of samix_record_callback.
RECORD_CALLBACK = ctypes.CFUNCTYPE(c_int32, c_void_p, c_char_p)


def library_path_candidates() -> list[Path]:
    """Paths tried, in order, to find libsamix.so."""
    env = os.environ.get("SAMIX_LIBRARY")
    if env:
        return [Path(env)]
    return [Path(__file__).resolve().parent / "lib" / "libsamix.so"]


def _load() -> tuple[ctypes.CDLL, Path]:
    candidates = library_path_candidates()
    errors = []
    for path in candidates:
        if not path.is_file():
            errors.append(f"{path}: not found")
            continue
        try:
            return ctypes.CDLL(str(path)), path
        except OSError as e:
            errors.append(f"{path}: {e}")
    source = "SAMIX_LIBRARY" if os.environ.get("SAMIX_LIBRARY") else "the samix package"
    raise ImportError(
        f"samix: cannot load the native library libsamix.so from {source} "
        f"({'; '.join(errors)}). {_FIX}"
    )


def _declare(lib: ctypes.CDLL, path: Path) -> None:
    try:
        version_fn = lib.samix_abi_version
    except AttributeError:
        raise ImportError(f"samix: {path} is not a samix library (no samix_abi_version). {_FIX}") from None
    version_fn.restype = c_int32
    version_fn.argtypes = []
    found = version_fn()
    if found != ABI_VERSION:
        raise ImportError(
            f"samix: {path} has ABI version {found}, but this samix package needs version "
            f"{ABI_VERSION}. {_FIX}"
        )
    missing = []
    for name, (restype, argtypes) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = [_CString if t is c_char_p else t for t in argtypes]
    if missing:
        raise ImportError(f"samix: {path} lacks functions {', '.join(missing)}. {_FIX}")


lib, library_path = _load()
_declare(lib, library_path)


def last_error() -> str:
    """The calling thread's last error message from the library."""
    msg = lib.samix_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def check(status: int) -> None:
    """Raises the :class:`~samix.errors.SamixError` subclass for a non-zero status
    (``KeyboardInterrupt`` for ``SAMIX_E_INTERRUPTED``: the caller's Ctrl-C stopped the call)."""
    if status == Status.INTERRUPTED:
        raise KeyboardInterrupt
    if status != 0:
        raise error_for_status(status, last_error())


__all__ = ["ABI_VERSION", "DEFAULT_ALPHA", "SIGNATURES", "check", "last_error", "lib", "library_path",
           "library_path_candidates", "c_float", "c_double"]


# Invalid engine switches (SAMIX_NUM_THREADS=abc, =0, =1000, SAMIX_CONV=foo, ...) are an error at
# import, never silently replaced by defaults.
check(lib.samix_check_environment())
