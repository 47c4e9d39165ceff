"""Python strings passed to the C library as ``const char *``."""

from __future__ import annotations

from typing import Any

from .errors import InvalidArgumentError, SamixTypeError


def c_string(value: Any, name: str) -> bytes:
    """``value`` (str) as UTF-8 bytes for the C ABI.

    An embedded NUL byte is refused: C would silently cut the string there, so
    ``models.create("resnet20\\x00evil")`` would build a resnet20.
    """
    if not isinstance(value, str):
        raise SamixTypeError(f"{name} must be a str, got {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgumentError(f"{name} must not contain a NUL byte, got {value!r}")
    return value.encode()
