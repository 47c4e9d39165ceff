"""The engine's option schema (``samix_option_schema``): every front-end option's name, type, default,
range or choices and one-line doc, declared once in the engine (``OptionSchema`` in Swift).

Read once at import (one ABI call, cached); :mod:`samix.learned`, :mod:`samix.ssl` and
:mod:`samix.training` take their defaults, choices, validation and docstrings from it.
"""

from __future__ import annotations

import ctypes
import json
import math
from typing import Any, Optional

import numpy as np

from ._lib import check, lib
from .errors import InvalidArgumentError, SamixTypeError

__all__ = ["option_schema", "Option", "Group"]


class Option:
    """One option of the engine's schema."""

    __slots__ = ("name", "type", "default_text", "method_defaults", "methods", "min", "max", "min_exclusive",
                 "max_exclusive", "range", "choices", "allows_none", "doc")

    def __init__(self, d: dict) -> None:
        self.name: str = d["name"]
        self.type: str = d["type"]
        self.default_text: Optional[str] = d.get("default")
        self.method_defaults: dict = d.get("method_defaults", {})
        self.methods: tuple = tuple(d.get("methods", ()))
        self.min: Optional[float] = d.get("min")
        self.max: Optional[float] = d.get("max")
        self.min_exclusive: bool = d.get("min_exclusive", False)
        self.max_exclusive: bool = d.get("max_exclusive", False)
        self.range: Optional[str] = d.get("range")
        self.choices: tuple = tuple(d.get("choices", ()))
        self.allows_none: bool = d.get("allows_none", False)
        self.doc: str = d.get("doc", "")

    def applies(self, method: Optional[str]) -> bool:
        return method is None or not self.methods or method in self.methods

    def default(self, method: Optional[str] = None) -> Any:
        """The default as a Python value (None when the schema declares none, or "none")."""
        text = self.method_defaults.get(method, self.default_text) if method is not None else self.default_text
        return None if text is None else self.parse(text)

    def parse(self, text: str) -> Any:
        """A value in the engine's text form as a Python value."""
        if self.allows_none and text.lower() == "none":
            return None
        if self.type == "real":
            return float(text)
        if self.type == "int":
            return int(text)
        if self.type == "bool":
            return text.lower() in ("1", "true", "yes", "on")
        if self.type == "list":
            return tuple(float(x) for x in text.split(","))
        return text

    def in_range(self, v: float) -> bool:
        if self.min is not None and not (v > self.min if self.min_exclusive else v >= self.min):
            return False
        if self.max is not None and not (v < self.max if self.max_exclusive else v <= self.max):
            return False
        return True

    def check_range(self, v: float) -> None:
        """Raises :class:`InvalidArgumentError` naming the option when ``v`` is outside its range."""
        if not self.in_range(v):
            raise InvalidArgumentError(f"{self.name} must be in {self.range}, got {v}"
                                       if self.range and self.range[0] in "[(" else
                                       f"{self.name} must be {self.range}, got {v}")

    def describe(self, method: Optional[str] = None) -> str:
        """One docstring line: ``name (type, default ...; range ...): doc``."""
        if method is None and self.method_defaults:
            d = ", ".join(f"{v} ({k})" for k, v in sorted(self.method_defaults.items()))
        else:
            d = self.method_defaults.get(method, self.default_text) if method else self.default_text
        parts = [self.type]
        if d is not None:
            parts.append(f"default {d}")
        if self.range:
            parts.append(f"range {self.range}")
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        return f"{self.name} ({'; '.join(parts)}): {self.doc}"


class Group:
    """A named set of options ("learned", "pretrained", "ssl", "trainer")."""

    def __init__(self, d: dict) -> None:
        self.name: str = d["group"]
        self.methods: tuple = tuple(d.get("methods", ()))
        self.options: dict[str, Option] = {o["name"]: Option(o) for o in d["options"]}

    def __getitem__(self, name: str) -> Option:
        return self.options[name]

    def __contains__(self, name: object) -> bool:
        return name in self.options

    def defaults(self, method: Optional[str] = None) -> dict[str, Any]:
        """``name -> default`` of every option of ``method`` that has a default."""
        return {n: o.default(method) for n, o in self.options.items()
                if o.applies(method) and (o.method_defaults.get(method, o.default_text) if method else o.default_text) is not None}

    def docs(self, method: Optional[str] = None, indent: str = "        ") -> str:
        """Docstring lines of every option of ``method``."""
        return "\n".join(indent + o.describe(method) for o in self.options.values() if o.applies(method))


_CACHE: dict[str, Group] = {}


def _load() -> dict[str, Group]:
    if not _CACHE:
        needed = ctypes.c_int64(0)
        check(lib.samix_option_schema(b"all", None, 0, ctypes.addressof(needed)))
        buf = ctypes.create_string_buffer(max(int(needed.value), 1))
        check(lib.samix_option_schema(b"all", ctypes.addressof(buf), len(buf), ctypes.addressof(needed)))
        for g in json.loads(buf.value.decode())["groups"]:
            _CACHE[g["group"]] = Group(g)
    return _CACHE


def option_schema(group: str) -> Group:
    """The engine's options of ``group``: ``"learned"`` (AutoMix / SAMix), ``"pretrained"`` (SAMix^P),
    ``"ssl"`` (MoCo and its mixing) or ``"trainer"`` (``Trainer(mix=...)`` names)."""
    if not isinstance(group, str):
        raise SamixTypeError(f"group must be a str, got {type(group).__name__}")
    groups = _load()
    if group not in groups:
        raise InvalidArgumentError(f"unknown option group {group!r}; expected {', '.join(groups)}")
    return groups[group]


def checked(opt: Option, v: Any) -> Any:
    """``v`` checked against the option's type, range and choices (None passes where allowed)."""
    name = opt.name
    if v is None and opt.allows_none:
        return None
    if opt.type == "real":
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise SamixTypeError(f"{name} must be a real number, got {type(v).__name__}")
        f = float(v)
        if not math.isfinite(f):
            raise InvalidArgumentError(f"{name} must be finite, got {f}")
        opt.check_range(f)
        return f
    if opt.type == "int":
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise SamixTypeError(f"{name} must be an int, got {type(v).__name__}")
        opt.check_range(float(v))
        return int(v)
    if opt.type == "bool":
        if not isinstance(v, (bool, np.bool_)):
            raise SamixTypeError(f"{name} must be a bool, got {type(v).__name__}")
        return bool(v)
    if opt.type == "list":
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            v = (v,)
        if not isinstance(v, (tuple, list)):
            raise SamixTypeError(f"{name} must be a number or a sequence of numbers, got {type(v).__name__}")
        if not v:
            raise InvalidArgumentError(f"{name} needs at least one value")
        out = []
        for x in v:
            if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
                raise SamixTypeError(f"{name} must be a number or a sequence of numbers, got {type(x).__name__}")
            if not math.isfinite(float(x)):
                raise InvalidArgumentError(f"{name} must be finite, got {float(x)}")
            opt.check_range(float(x))
            out.append(float(x))
        return tuple(out)
    if not isinstance(v, str):
        raise SamixTypeError(f"{name} must be a str, got {type(v).__name__}")
    if "\n" in v or "\r" in v:
        raise InvalidArgumentError(f"{name} must not contain line breaks")
    if opt.choices:
        def key(s: str) -> str:
            return "".join(c for c in s.lower() if c not in "+_- ")
        if key(v) not in {key(c) for c in opt.choices}:
            raise InvalidArgumentError(f"{name} must be one of {', '.join(opt.choices)}, got {v!r}")
    return v
