"""``MixResult``, the outcome of one mixing step, in a module of its own so its class identity is stable:
``importlib.reload(samix.mixing)`` re-imports it from here instead of defining a second class, so
``isinstance(r, samix.MixResult)`` and :mod:`samix.viz` keep accepting every result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

__all__ = ["MixResult"]


@dataclass(repr=False)
class MixResult:
    """Outcome of one mixing step.

    Attributes:
        images: mixed batch, same shape as the input (float32; a ``torch.Tensor`` sharing the engine's
            output when the input ``x`` or ``out`` was a tensor).
        targets: (N, num_classes) soft targets, or None when no labels were given (a ``torch.Tensor``
            when ``x`` was a tensor).
        lam: (N,) realised weight of each original sample.
        label_lam: (N,) weight of each sample's own label in ``targets``.
        partner: (N,) int64 partner index of each sample.
        masks: (N, H, W) partner-weight maps, or None when not requested.
        boxes: (N, 4) int64 boxes ``(y0, y1, x0, x1)`` of box policies (-1 rows for samples without one).
    """

    images: Any
    targets: Optional[Any]
    lam: np.ndarray
    label_lam: np.ndarray
    partner: np.ndarray
    masks: Optional[np.ndarray]
    boxes: np.ndarray

    def __repr__(self) -> str:
        t = "None" if self.targets is None else f"{self.targets.shape}"
        return (f"MixResult(images={self.images.shape}, targets={t}, "
                f"lam=[{', '.join(f'{v:.3f}' for v in self.lam[:4])}{', …' if len(self.lam) > 4 else ''}])")
