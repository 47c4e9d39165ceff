"""``samix.MixupCollate``: a DataLoader ``collate_fn`` that stacks uint8 samples and mixes them
(timm's ``FastCollateMixup`` role: mixing runs in the loader's worker processes, the batch stays uint8
until the GPU/model normalises it).

::

    collate = samix.MixupCollate(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=10, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=128, collate_fn=collate, num_workers=4,
                                         multiprocessing_context="spawn")
    for images_u8, targets in loader:   # (N, C, H, W) uint8 tensor, (N, 10) float32 tensor
        ...

The collate object pickles (arguments and generator state), so spawn/forkserver workers get a
copy. So that workers do not all draw the same λ sequence, a copy running in DataLoader worker ``w``
(``torch.utils.data.get_worker_info()``, asked only when torch is already imported) first moves its
generator to its own stream, a fixed function of the pickled state and ``w``: runs stay deterministic
for a given seed and ``num_workers``. In the main process (``num_workers=0``) the stream is used as is.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional, Sequence

import numpy as np

from ._interop import is_tensor, label_array, to_tensor
from .errors import InvalidArgumentError, SamixTypeError, ShapeError
from .mixing import Mixup

__all__ = ["MixupCollate"]


class MixupCollate(Mixup):
    """Collate ``[(image, label), ...]`` into a mixed batch ``(images, soft targets)``.

    Takes the arguments of :class:`samix.Mixup` (``num_classes``, ``mixup_alpha``, ``cutmix_alpha``,
    ``mode``, ``label_smoothing``, ``seed``, ``multi_label``, ...) plus:

    Args:
        tensors: return PyTorch tensors (True), NumPy arrays (False), or what the samples were (None,
            the default: tensors for tensor samples, NumPy for NumPy samples). torch is imported only
            for tensors.

    Samples: ``image`` is a (C, H, W) uint8 (0-255) or float32 array or CPU tensor, all of one shape
    and dtype; ``label`` an int class index (or a (num_classes,) vector with ``multi_label=True``).
    uint8 batches are mixed in float32 and rounded back to uint8 (timm's ``np.rint``), so CutMix
    pixels are copied exactly and Mixup pixels are the nearest integer of the blend.

    Returns:
        ``(images (N, C, H, W) of the samples' dtype, targets (N, num_classes) float32)``.
    """

    def __init__(self, *args: Any, tensors: Optional[bool] = None, **kwargs: Any) -> None:
        if tensors is not None and not isinstance(tensors, bool):
            raise SamixTypeError(f"tensors must be True, False or None, got {tensors!r}")
        super().__init__(*args, **kwargs)
        if args:  # keep pickling by keyword: positional args of Mixup in order
            names = ("mixup_alpha", "cutmix_alpha", "cutmix_minmax", "prob", "switch_prob", "mode", "correct_lam",
                     "label_smoothing", "num_classes", "seed", "multi_label")
            self._init_args.update(dict(zip(names, args)))
        self._init_args["tensors"] = tensors
        self.tensors = tensors

    def _enter_worker_stream(self) -> None:
        """In DataLoader worker ``w``, move to the stream ``splitmix(state + (w + 1) * golden)`` once."""
        pid = os.getpid()
        if getattr(self, "_stream_pid", None) == pid:
            return
        self._stream_pid = pid
        torch = sys.modules.get("torch")
        info = torch.utils.data.get_worker_info() if torch is not None and hasattr(torch, "utils") else None
        if info is None:
            return
        mask = (1 << 64) - 1
        z = (self.rng_state + (int(info.id) + 1) * 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        self.rng_state = z ^ (z >> 31)

    def __call__(self, batch: Sequence[Any], _: Any = None) -> tuple[Any, Any]:  # type: ignore[override]
        self._enter_worker_stream()
        if not isinstance(batch, (list, tuple)) or not batch:
            raise InvalidArgumentError(f"batch must be a non-empty list of (image, label) pairs, "
                                       f"got {type(batch).__name__}{'' if batch else ' (empty)'}")
        images, labels = [], []
        any_tensor = False
        for i, sample in enumerate(batch):
            if not isinstance(sample, (list, tuple)) or len(sample) < 2:
                raise InvalidArgumentError(f"batch[{i}] must be an (image, label) pair, got {type(sample).__name__}")
            img, lab = sample[0], sample[1]
            if is_tensor(img):
                any_tensor = True
                img = label_array(img, f"batch[{i}] image")  # CPU check + NumPy view; stacking copies
            img = np.asarray(img)
            if img.dtype not in (np.uint8, np.float32):
                raise SamixTypeError(f"batch[{i}] image has dtype {img.dtype}; MixupCollate takes uint8 (0-255) "
                                     f"or float32 images")
            if img.ndim != 3:
                raise ShapeError(f"batch[{i}] image must be (C, H, W), got shape {img.shape}")
            if images and (img.shape != images[0].shape or img.dtype != images[0].dtype):
                raise ShapeError(f"batch[{i}] image is {img.dtype} {img.shape}, batch[0] is "
                                 f"{images[0].dtype} {images[0].shape}: all samples must match")
            images.append(img)
            labels.append(label_array(lab, f"batch[{i}] label") if is_tensor(lab) else lab)
        stacked = np.stack(images)
        uint8 = stacked.dtype == np.uint8
        x = stacked.astype(np.float32) if uint8 else stacked
        if self.multi_label:
            y: Any = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in labels])
        else:
            try:
                y = np.array([int(v) for v in labels], dtype=np.int64)
            except (TypeError, ValueError):
                raise SamixTypeError("labels must be int class indices (use multi_label=True for label vectors)") \
                    from None
        x, targets = self._call_array(x, y, in_place=True)
        if uint8:
            np.rint(x, out=x)
            np.clip(x, 0, 255, out=x)
            out = x.astype(np.uint8)
        else:
            out = x
        want_tensors = any_tensor if self.tensors is None else self.tensors
        if want_tensors:
            return to_tensor(out), to_tensor(targets)
        return out, targets

    def __repr__(self) -> str:
        return "MixupCollate" + super().__repr__()[len("Mixup"):]
