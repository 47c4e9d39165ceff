"""Optimizer and learning-rate schedule settings for :class:`samix.Trainer`.

The optimizer state itself lives in the engine, inside the trainer (it is created over the model's
parameters plus any extra trainable modules of the mixing objective).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

from ._schema import option_schema
from .errors import InvalidArgumentError

__all__ = ["SGD", "AdamW", "Schedule"]


def _finite(v: float, name: str, lo: float = 0.0) -> float:
    v = float(v)
    if not math.isfinite(v) or v < lo:
        raise InvalidArgumentError(f"{name} must be finite and ≥ {lo}, got {v}")
    return v


#: Defaults of the engine's option schema (group "optimizer"), per optimizer.
_SGD = option_schema("optimizer").defaults("sgd")
_ADAMW = option_schema("optimizer").defaults("adamw")


@dataclass(frozen=True)
class SGD:
    """SGD with momentum, Nesterov and L2 weight decay (PyTorch semantics)."""

    lr: float = _SGD["lr"]
    momentum: float = _SGD["momentum"]
    weight_decay: float = _SGD["weight_decay"]
    nesterov: bool = _SGD["nesterov"]

    def __post_init__(self) -> None:
        _finite(self.lr, "lr")
        _finite(self.weight_decay, "weight_decay")
        if not 0.0 <= float(self.momentum) < 1.0:
            raise InvalidArgumentError(f"momentum must be in [0, 1), got {self.momentum}")

    name = "sgd"


@dataclass(frozen=True)
class AdamW:
    """AdamW (decoupled weight decay), betas (0.9, 0.999)."""

    lr: float = _ADAMW["lr"]
    weight_decay: float = _ADAMW["weight_decay"]

    def __post_init__(self) -> None:
        _finite(self.lr, "lr")
        _finite(self.weight_decay, "weight_decay")

    name = "adamw"
    momentum = 0.0
    nesterov = False


@dataclass(frozen=True)
class Schedule:
    """Learning-rate schedule over all training steps: ``"cosine"`` or ``"constant"``, after a
    linear warm-up of ``warmup_steps`` steps.

    ``min_lr`` is the floor of the cosine: None = the method's reference floor, decided by the
    engine — 0.5 × lr for :class:`samix.AutoMix` / :class:`samix.SAMix` (OpenMixup's CIFAR configs
    anneal 0.1 → ``min_lr=5e-2`` "for the momentum encoder"), 0 for every other method; a number
    sets it (``min_lr=0`` anneals AutoMix/SAMix to 0)."""

    kind: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr: Optional[float] = None

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "constant"):
            raise InvalidArgumentError(f"schedule must be 'cosine' or 'constant', got {self.kind!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise InvalidArgumentError(f"warmup_steps must be an int ≥ 0, got {self.warmup_steps!r}")
        if self.min_lr is not None:
            if isinstance(self.min_lr, bool) or not isinstance(self.min_lr, (int, float)):
                raise InvalidArgumentError(f"min_lr must be a number or None, got {type(self.min_lr).__name__}")
            _finite(self.min_lr, "min_lr")
            if self.kind != "cosine":
                raise InvalidArgumentError("min_lr applies to the cosine schedule only")

    def spec(self) -> str:
        """The engine's schedule string: ``"constant"``, ``"cosine"`` (method floor) or
        ``"cosine:min_lr=X"``."""
        if self.kind == "cosine" and self.min_lr is not None:
            return f"cosine:min_lr={float(self.min_lr)!r}"
        return self.kind

    @classmethod
    def from_spec(cls, spec: str, warmup_steps: int = 0) -> "Schedule":
        """The schedule of an engine string written by :meth:`spec` (as stored in checkpoints)."""
        kind, sep, rest = str(spec).partition(":")
        if not sep:
            return cls(kind, warmup_steps=warmup_steps)  # type: ignore[arg-type]
        key, eq, value = rest.partition("=")
        if key != "min_lr" or not eq:
            raise InvalidArgumentError(f"unknown schedule {spec!r}")
        try:
            v = float(value)
        except ValueError:
            raise InvalidArgumentError(f"unknown schedule {spec!r}") from None
        return cls(kind, warmup_steps=warmup_steps, min_lr=v)  # type: ignore[arg-type]
