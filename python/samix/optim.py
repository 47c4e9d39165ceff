"""Optimizer and learning-rate schedule settings for :class:`samix.Trainer`.

The optimizer state itself lives in the engine, inside the trainer (it is created over the model's
parameters plus any extra trainable modules of the mixing objective).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .errors import InvalidArgumentError

__all__ = ["SGD", "AdamW", "Schedule"]


def _finite(v: float, name: str, lo: float = 0.0) -> float:
    v = float(v)
    if not math.isfinite(v) or v < lo:
        raise InvalidArgumentError(f"{name} must be finite and ≥ {lo}, got {v}")
    return v


@dataclass(frozen=True)
class SGD:
    """SGD with momentum, Nesterov and L2 weight decay (PyTorch semantics)."""

    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False

    def __post_init__(self) -> None:
        _finite(self.lr, "lr")
        _finite(self.weight_decay, "weight_decay")
        if not 0.0 <= float(self.momentum) < 1.0:
            raise InvalidArgumentError(f"momentum must be in [0, 1), got {self.momentum}")

    name = "sgd"


@dataclass(frozen=True)
class AdamW:
    """AdamW (decoupled weight decay), betas (0.9, 0.999)."""

    lr: float = 1e-3
    weight_decay: float = 0.05

    def __post_init__(self) -> None:
        _finite(self.lr, "lr")
        _finite(self.weight_decay, "weight_decay")

    name = "adamw"
    momentum = 0.0
    nesterov = False


@dataclass(frozen=True)
class Schedule:
    """Learning-rate schedule over all training steps: ``"cosine"`` (to 0) or ``"constant"``, after a
    linear warm-up of ``warmup_steps`` steps."""

    kind: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "constant"):
            raise InvalidArgumentError(f"schedule must be 'cosine' or 'constant', got {self.kind!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise InvalidArgumentError(f"warmup_steps must be an int ≥ 0, got {self.warmup_steps!r}")
