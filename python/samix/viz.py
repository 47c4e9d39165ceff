"""Pictures of what a mixing policy does (matplotlib, an optional extra: ``pip install matplotlib``).

::

    r = samix.mix(x, y, method="cutmix", num_classes=10, seed=0)
    fig = samix.viz.show_mixed(x, r, mean=CIFAR_MEAN, std=CIFAR_STD)   # a cell's value: shown as PNG
    samix.viz.save_mixed(x, r, "cutmix.png", mean=CIFAR_MEAN, std=CIFAR_STD)

The grid has one column per sample and three rows: the originals, the partner-weight masks
(white = the pixel comes from the partner; ``MixResult.masks``) and the mixed images, titled with the
realised λ (weight of the original). matplotlib is imported only when a picture is made.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from .errors import InvalidArgumentError, SamixTypeError, ShapeError
from .mixing import MixResult, mix

__all__ = ["show_mixed", "save_mixed"]

_INSTALL_HINT = ("samix.viz needs matplotlib, an optional extra that is not installed: "
                 "pip install matplotlib (or the extra: pip install 'samix[viz]')")


_FIGURE_CLASS: Any = None


def _figure_class() -> Any:
    """``MixFigure``: a ``matplotlib.figure.Figure`` that IPython/Jupyter displays by itself.

    A Figure made without pyplot is displayed by Jupyter only when the inline backend has registered
    its formatter (after some pyplot use); ``_repr_png_`` makes the figure show as a PNG whenever it
    is a cell's value, in a fresh kernel too, without touching pyplot's global state.
    """
    global _FIGURE_CLASS
    if _FIGURE_CLASS is None:
        try:
            from matplotlib.figure import Figure
        except ImportError as e:
            raise ImportError(_INSTALL_HINT) from e

        class MixFigure(Figure):
            def _repr_png_(self) -> bytes:
                import io

                buf = io.BytesIO()
                self.savefig(buf, format="png", dpi=self.dpi)
                return buf.getvalue()

        MixFigure.__module__ = __name__
        _FIGURE_CLASS = MixFigure
    return _FIGURE_CLASS


def _channel_stats(v: Union[float, Sequence[float], np.ndarray, None], c: int, name: str,
                   default: float) -> np.ndarray:
    if v is None:
        return np.full(c, default, np.float32)
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    if a.size == 1:
        a = np.full(c, float(a[0]), np.float32)
    if a.size != c or not np.all(np.isfinite(a)):
        raise InvalidArgumentError(f"{name} must be a finite number or {c} numbers (one per channel), got {v!r}")
    return a


def _displayable(x: np.ndarray, mean: np.ndarray, std: np.ndarray, channels_last: bool) -> np.ndarray:
    """(N, H, W, C) floats in [0, 1] from an NCHW (or NHWC) batch, undoing the normalisation."""
    if channels_last:
        x = np.moveaxis(x, -1, 1)
    if x.dtype == np.uint8:
        img = x.astype(np.float32) / 255.0
    else:
        img = x.astype(np.float32) * std[None, :, None, None] + mean[None, :, None, None]
    return np.clip(np.nan_to_num(np.moveaxis(img, 1, -1)), 0.0, 1.0)


def _prepare(x: Any, result: Optional[MixResult], mean: Any, std: Any, ncols: int, channels_last: bool,
             mix_kwargs: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, MixResult]:
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or not 1 <= int(ncols) <= 256:
        raise InvalidArgumentError(f"ncols must be an int in 1..256, got {ncols!r}")
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind not in "fu" or (a.dtype.kind == "u" and a.dtype != np.uint8):
        raise SamixTypeError(f"x must be a float or uint8 image batch, got dtype {a.dtype}")
    if a.ndim != 4:
        raise ShapeError(f"x must have shape (N, C, H, W), got {a.shape}")
    c = a.shape[3] if channels_last else a.shape[1]
    if c not in (1, 3):
        raise ShapeError(f"x must have 1 or 3 channels to be shown, got {c}")
    if result is None:
        result = mix(a, channels_last=channels_last, **mix_kwargs)
    elif not isinstance(result, MixResult):
        raise SamixTypeError(f"result must be a samix.MixResult (from samix.mix), got {type(result).__name__}")
    elif mix_kwargs:
        raise InvalidArgumentError(f"mixing options {sorted(mix_kwargs)} are only used when result is None")
    images = np.asarray(result.images)  # a CPU torch tensor when samix.mix was given tensors
    if images.shape != a.shape:
        raise ShapeError(f"result.images has shape {images.shape}, x has {a.shape}")
    if result.masks is None:
        raise InvalidArgumentError("result has no masks: call samix.mix(..., return_masks=True)")
    m = _channel_stats(mean, c, "mean", 0.0)
    s = _channel_stats(std, c, "std", 1.0)
    n = min(int(ncols), a.shape[0])
    orig = _displayable(a[:n], m, s, channels_last)
    mixed_src = images[:n]
    if a.dtype == np.uint8 and mixed_src.dtype != np.uint8:
        mixed_src = np.clip(mixed_src, 0, 255).astype(np.uint8)
    mixed = _displayable(mixed_src, m, s, channels_last)
    return orig, np.clip(result.masks[:n], 0.0, 1.0), mixed, result


def show_mixed(x: Any, result: Optional[MixResult] = None, mean: Any = None, std: Any = None, ncols: int = 8,
               channels_last: bool = False, titles: bool = True, figsize: Optional[tuple[float, float]] = None,
               **mix_kwargs: Any) -> Any:
    """A matplotlib figure: originals, partner-weight masks and mixed images, one column per sample.

    Args:
        x: the batch that was mixed, (N, C, H, W) (or (N, H, W, C) with ``channels_last``), float
            (normalised with ``mean``/``std``) or uint8 pixels; C is 1 or 3.
        result: what ``samix.mix(x, ...)`` returned (with masks). If None, ``samix.mix(x, **mix_kwargs)``
            is called (e.g. ``method="fmix", seed=0``).
        mean, std: per-channel normalisation of float ``x`` (a number or C numbers), undone for display.
            Default: 0 and 1 (``x`` already in [0, 1]).
        ncols: number of samples shown (the first ``ncols``).
        titles: write λ (weight of the original) and the partner index above the mixed images.
        figsize: matplotlib figure size in inches (default: 1.3 inch per column).

    Returns:
        A ``matplotlib.figure.Figure`` subclass with ``_repr_png_``: Jupyter shows it as a PNG when it
        is a cell's value (also in a fresh kernel, no pyplot needed; ``IPython.display.display(fig)``
        elsewhere in a cell); ``fig.savefig`` writes it.

    Raises:
        ImportError: matplotlib is not installed (``pip install matplotlib``).
    """
    Figure = _figure_class()
    orig, masks, mixed, r = _prepare(x, result, mean, std, ncols, channels_last, mix_kwargs)
    n = orig.shape[0]
    fig = Figure(figsize=figsize or (1.3 * n + 0.8, 4.4), layout="constrained")
    axes = fig.subplots(3, n, squeeze=False)
    rows = [("original", orig), ("mask (partner)", masks), ("mixed", mixed)]
    for row, (label, imgs) in enumerate(rows):
        for j in range(n):
            ax = axes[row][j]
            img = imgs[j]
            if img.ndim == 3 and img.shape[-1] == 1:
                img = img[..., 0]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, fontsize=9)
            if titles and row == 2:
                ax.set_title(f"λ={float(r.lam[j]):.2f} ↔ {int(r.partner[j])}", fontsize=8)
    return fig


def save_mixed(x: Any, result: Optional[MixResult] = None, path: Union[str, "os.PathLike[str]", None] = None,
               dpi: int = 100, **kwargs: Any) -> None:
    """Writes :func:`show_mixed`'s figure to ``path`` (PNG unless the suffix says otherwise).

    ``kwargs`` are those of :func:`show_mixed` (``mean``, ``std``, ``ncols``, mixing options, ...).
    """
    if path is None:
        raise InvalidArgumentError("save_mixed needs a path")
    try:
        target = os.fspath(path)
    except TypeError:
        raise SamixTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    fig = show_mixed(x, result, **kwargs)
    fig.savefig(target, dpi=dpi, format=None if os.path.splitext(str(target))[1] else "png")
