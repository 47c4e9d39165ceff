"""Hand-crafted mixup policies (Mixup, CutMix, SmoothMix, ResizeMix, GridMix, FMix, SaliencyMix) and
timm's Mixup/CutMix switcher, computed by the Swift engine.

Conventions (timm / OpenMixup): ``lam[i]`` is the weight of the ORIGINAL sample ``i`` and
``1 - lam[i]`` that of its partner ``x[partner[i]]``; ``masks[i]`` is the PARTNER weight per pixel, so
``mixed[i] = (1 - masks[i]) * x[i] + masks[i] * x[partner[i]]`` for blending policies.

One-shot use::

    r = samix.mix(x, y, method="cutmix", alpha=1.0, num_classes=10, seed=0)
    r.images, r.targets, r.lam, r.partner, r.masks, r.boxes

Repeated use with one random stream::

    policy = samix.MixPolicy("fmix", alpha=0.2, seed=0)
    r = policy(x, y, num_classes=10)

timm style (mixes ``x`` in place when it is a C-contiguous float32 array, like timm)::

    mixup_fn = samix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=10)
    x, targets = mixup_fn(x, y)

Arrays: C-contiguous float32 inputs are used in place; others are converted once. ``out=`` must be
a C-contiguous float32 array of the input's shape; ``out=x`` mixes in place.

PyTorch: CPU float32 C-contiguous tensors without grad are used zero-copy (``tensor.numpy()`` views)
and the call returns tensors where it was given one (``Mixup``: the same tensor, mixed in place, and
the targets as a tensor). Other tensors raise a :class:`samix.SamixError` naming the fix (``.cpu()``,
``.detach()``, ``.float()``, ``.contiguous()``); see ``samix._interop``.
"""

from __future__ import annotations

import ctypes
import math
from typing import Any, Literal, Optional

import numpy as np

from ._cstr import c_string
from ._arrays import F32, I64, address, as_f32, as_labels, check_out, shape_array
from ._interop import is_tensor, label_array, tensor_array, to_tensor
from ._result import MixResult
from ._handle import Handle
from ._lib import DEFAULT_ALPHA, check, lib
from .errors import InvalidArgumentError, SamixTypeError, ShapeError

__all__ = ["METHODS", "MODEL_METHODS", "MixResult", "MixPolicy", "Mixup", "mix", "mix_dense_targets"]

#: Methods accepted by :func:`mix` and :class:`MixPolicy`.
METHODS = ("mixup", "cutmix", "smoothmix", "resizemix", "gridmix", "fmix", "saliencymix")
#: Methods of :func:`mix` that need a classifier (``model=``): its attention (AttentiveMix) or its input
#: saliency (PuzzleMix). ManifoldMix and AlignMix mix hidden features, so they are trainer objectives only
#: (``samix.Trainer(mix="manifoldmix" | "alignmix")``).
MODEL_METHODS = ("attentivemix", "puzzlemix")

_mix_timm = lib.samix_policy_mix_timm  # bound once: Mixup.__call__'s hot path

_PARTNERS = {None: 0, "permutation": 1, "derangement": 2, "flip": 3, "roll": 4}
_MODES = {"batch": 0, "pair": 1, "elem": 2}


def _float_arg(v: Any, name: str) -> float:
    if type(v) is float:  # the common case first: these run on every mixing call
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise SamixTypeError(f"{name} must be a number, got {type(v).__name__}")
    return float(v)


def _int_arg(v: Any, name: str, lo: int = -(2**63), hi: int = 2**63 - 1) -> int:
    if type(v) is int and lo <= v <= hi:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise SamixTypeError(f"{name} must be an int, got {type(v).__name__}")
    v = int(v)
    if not lo <= v <= hi:
        raise InvalidArgumentError(f"{name} must be in [{lo}, {hi}], got {v}")
    return v


def alpha_arg(alpha: Any) -> float:
    """The ABI's ``alpha`` for a user's value: None → ``DEFAULT_ALPHA`` (the method's default); a
    number is passed on for the engine to validate, except the sentinel itself, which would
    otherwise silently mean "default"."""
    if alpha is None:
        return DEFAULT_ALPHA
    a = _float_arg(alpha, "alpha")
    if a == DEFAULT_ALPHA:
        raise InvalidArgumentError(f"alpha must be a finite value > 0 (None = the method's default), got {alpha!r}")
    return a


def _lam_arg(lam: Any) -> float:
    """A fixed λ in [0, 1], or NaN (sample it) for None."""
    if lam is None:
        return math.nan
    v = _float_arg(lam, "lam")
    if not 0.0 <= v <= 1.0:
        raise InvalidArgumentError(f"lam must be in [0, 1], got {v}")
    return v


def _seed(seed: Any) -> int:
    return _int_arg(seed, "seed", 0, 2**64 - 1)


def _batch_args(x: Any, y: Any, out: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """The (N, ...) float32 batch, the output array (new, ``x`` itself, or a checked ``out``) and the
    int64 labels (None without ``y``)."""
    xa = as_f32(x, "x", ndim=4)
    if out is None:
        out = np.empty_like(xa)
    elif out is not xa:
        check_out(out, xa.shape)
        if np.shares_memory(out, xa) and out.ctypes.data != xa.ctypes.data:
            raise ShapeError("out partially overlaps x (use out=x to mix in place)")
    labels = None
    if y is not None:
        labels = as_labels(y, "y")
        if labels.shape[0] != xa.shape[0]:
            raise ShapeError(f"y has {labels.shape[0]} labels for a batch of {xa.shape[0]}")
    return xa, out, labels


class _PolicyBase(Handle):
    _free_fn = lib.samix_policy_free

    @property
    def rng_state(self) -> int:
        """The generator state (save it and assign it back to resume the random stream exactly)."""
        s = ctypes.c_uint64(0)
        check(lib.samix_policy_rng_state(self.handle, ctypes.addressof(s), 0))
        return int(s.value)

    @rng_state.setter
    def rng_state(self, value: int) -> None:
        s = ctypes.c_uint64(_seed(value))
        check(lib.samix_policy_rng_state(self.handle, ctypes.addressof(s), 1))

    def _mix(self, x: Any, y: Any, num_classes: Optional[int], label_smoothing: float, lam: Optional[float],
             out: Optional[np.ndarray], return_masks: bool, channels_last: bool,
             details: bool = True) -> MixResult:
        # Hot path (called once per training batch): every NumPy → pointer conversion costs ~2 µs, so
        # the small outputs share one buffer (one conversion) and the shape array is cached.
        ndarray = np.ndarray
        plain = type(x) is ndarray and (out is None or type(out) is ndarray) and (y is None or type(y) is ndarray)
        x_tensor = None if plain or not is_tensor(x) else x
        out_tensor = None if plain or not is_tensor(out) else out
        if x_tensor is not None or out_tensor is not None or (not plain and is_tensor(y)):
            r = self._mix(tensor_array(x, "x") if x_tensor is not None else x,
                          label_array(y, "y") if is_tensor(y) else y, num_classes, label_smoothing, lam,
                          tensor_array(out, "out") if out_tensor is not None else out, return_masks,
                          channels_last, details)
            if out_tensor is not None:
                r.images = out_tensor
            elif x_tensor is not None:
                r.images = to_tensor(r.images)
            if x_tensor is not None or out_tensor is not None:
                r.targets = to_tensor(r.targets)
            return r
        xa, out, labels = _batch_args(x, y, out)
        n = xa.shape[0]
        h, w = (xa.shape[1], xa.shape[2]) if channels_last else (xa.shape[2], xa.shape[3])
        k = 0
        if labels is not None:
            if num_classes is None:
                raise InvalidArgumentError("num_classes is required when labels are given")
            k = _int_arg(num_classes, "num_classes", 1, 1 << 24)
        fixed = _lam_arg(lam)
        ls = _float_arg(label_smoothing, "label_smoothing")
        # One buffer: partner (n int64), boxes (4n int64), lam (n f32), label_lam (n f32), targets (n·k f32).
        nd = 5 * n if details else 0
        buf = np.empty(8 * nd + 4 * ((2 * n if details else 0) + n * k), dtype=np.uint8)
        base = address(buf)
        o_lam = 8 * nd
        o_targets = o_lam + (8 * n if details else 0)
        masks = np.empty((n, h, w), dtype=np.float32) if return_masks else None
        shape_entry = self._shape_entry(xa.shape)
        shape = shape_entry[2]
        xp = address(xa)
        check(self._abi_mix(
            xp, xp if out is xa else address(out), shape, 1 if channels_last else 0,
            None if labels is None else address(labels), k, ls, fixed,
            base + o_targets if k else None,
            base + o_lam if details else None, base + o_lam + 4 * n if details else None,
            base if details else None, None if masks is None else address(masks),
            base + 8 * n if details else None))
        targets = buf[o_targets:].view(np.float32).reshape(n, k) if k else None
        if not details:
            return MixResult(out, targets, None, None, None, masks, None)  # type: ignore[arg-type]
        ints = buf[:8 * nd].view(np.int64)
        floats = buf[o_lam:o_targets].view(np.float32)
        return MixResult(out, targets, floats[:n], floats[n:], ints[:n], masks, ints[n:].reshape(n, 4))

    def _abi_mix(self, *args: Any) -> int:
        """samix_policy_mix on this policy's handle (``args`` from ``x`` on)."""
        return lib.samix_policy_mix(self.handle, *args)

    #: (shape, C int64[4] array holding it, its address); one attribute, read once per call, so a call keeps
    #: the array it passes alive even if another thread caches a new shape meanwhile.
    _shape_cache: tuple[Any, Any, int] = ((), None, 0)

    def _shape_entry(self, shape: tuple[int, ...]) -> tuple[Any, Any, int]:
        c = self._shape_cache
        if c[0] != shape:
            arr = shape_array(shape)
            c = self._shape_cache = (shape, arr, address(arr))
        return c


class MixPolicy(_PolicyBase):
    """A hand-crafted mixing policy with its own seeded random stream.

    Args:
        method: one of :data:`METHODS`.
        alpha: Beta(alpha, alpha) parameter; None uses the method's default (OpenMixup CIFAR value:
            1.0 for mixup/resizemix, 0.2 for cutmix/gridmix/fmix/saliencymix; smoothmix has none).
        per_sample: one lambda (and box/mask) per sample instead of one per batch.
        partner: how partners are chosen: None (method default), "permutation", "derangement",
            "flip" or "roll".
        seed: seed of the policy's random stream.
    """

    def __init__(self, method: str = "mixup", alpha: Optional[float] = None, per_sample: bool = False,
                 partner: Optional[str] = None, seed: int = 0) -> None:
        h = ctypes.c_uint64(0)
        check(lib.samix_policy_create(*_policy_args(method, alpha, per_sample, partner, seed), ctypes.addressof(h)))
        super().__init__(h.value)
        self.method = method.lower()
        self.alpha = alpha
        self.per_sample = bool(per_sample)
        self.partner = partner
        self._init_args = dict(method=self.method, alpha=alpha, per_sample=self.per_sample, partner=partner)

    def __reduce__(self) -> tuple:
        """Pickles the arguments and the generator state (:attr:`rng_state`): the unpickled policy
        continues the same random stream (e.g. in a DataLoader worker started with spawn)."""
        return (_unpickle_policy, (type(self), self._init_args, self.rng_state))

    def __call__(self, x: Any, y: Any = None, num_classes: Optional[int] = None, label_smoothing: float = 0.0,
                 lam: Optional[float] = None, out: Optional[np.ndarray] = None, return_masks: bool = True,
                 channels_last: bool = False) -> MixResult:
        """Mixes one batch.

        Args:
            x: images (N, C, H, W), or (N, H, W, C) with ``channels_last=True``. NaN/Inf propagate
                into the mixed pixels (as in NumPy), except for ``saliencymix``, whose saliency map
                needs finite pixels (NumericalError).
            y: optional (N,) integer labels; then ``num_classes`` is required and soft targets returned.
            num_classes: number of classes of the soft targets.
            label_smoothing: epsilon of the soft targets, in [0, 1).
            lam: fix lambda (weight of the original) instead of sampling it.
            out: array written in place (``out=x`` mixes in place); default a new array.
            return_masks: also return the (N, H, W) partner-weight maps.
            channels_last: ``x`` is NHWC.
        """
        return self._mix(x, y, num_classes, label_smoothing, lam, out, return_masks, channels_last)

    def __repr__(self) -> str:
        a = "default" if self.alpha is None else self.alpha
        return (f"MixPolicy({self.method!r}, alpha={a}, per_sample={self.per_sample}, "
                f"partner={self.partner or 'default'}{', closed' if self.closed else ''})")


def _policy_args(method: Any, alpha: Any, per_sample: bool, partner: Any, seed: Any) -> tuple:
    """samix_policy_create's (method, alpha, per_sample, partner mode, seed), validated."""
    if not isinstance(method, str):
        raise SamixTypeError(f"method must be a str, got {type(method).__name__}")
    if method.lower() in MODEL_METHODS:
        raise InvalidArgumentError(f"{method!r} needs a classifier: use samix.mix(x, y, method={method.lower()!r}, "
                                   f"model=...) or samix.Trainer(mix={method.lower()!r})")
    if partner not in _PARTNERS:
        raise InvalidArgumentError(f"partner must be one of {[p for p in _PARTNERS if p]} or None, got {partner!r}")
    a = alpha_arg(alpha)
    return c_string(method, "method"), a, 1 if per_sample else 0, _PARTNERS[partner], _seed(seed)


_mix_once = lib.samix_mix


class _OneShotPolicy(_PolicyBase):
    """``samix.mix``'s policy: validated like :class:`MixPolicy`, created, run and freed by one samix_mix call
    (no handle: a handle's creation, Python object and release cost more than the mixing of a CIFAR batch)."""

    _shared_shape: tuple[Any, Any, int] = ((), None, 0)

    def __init__(self, method: Any, alpha: Any, per_sample: bool, partner: Any, seed: Any) -> None:
        self._args = _policy_args(method, alpha, per_sample, partner, seed)  # no Handle.__init__: nothing to free

    def _abi_mix(self, *args: Any) -> int:
        return _mix_once(*self._args, *args)

    def _shape_entry(self, shape: tuple[int, ...]) -> tuple[Any, Any, int]:
        c = _OneShotPolicy._shared_shape  # one tuple shared by all calls (read once: keeps its array alive)
        if c[0] != shape:
            arr = shape_array(shape)
            c = _OneShotPolicy._shared_shape = (shape, arr, address(arr))
        return c


def _unpickle_policy(cls: type, kwargs: dict, rng_state: int) -> "_PolicyBase":
    p = cls(**kwargs)
    p.rng_state = rng_state
    return p


def mix(x: Any, y: Any = None, method: str = "mixup", alpha: Optional[float] = None,
        num_classes: Optional[int] = None, label_smoothing: float = 0.0, lam: Optional[float] = None,
        per_sample: bool = False, partner: Optional[str] = None, seed: int = 0,
        out: Optional[np.ndarray] = None, return_masks: bool = True, channels_last: bool = False,
        model: Any = None) -> MixResult:
    """Mixes one batch with a hand-crafted policy (see :class:`MixPolicy` for the arguments).

    ``method="attentivemix"`` / ``"puzzlemix"`` (:data:`MODEL_METHODS`) take a classifier ``model``
    (:class:`samix.models.Model`, run in eval mode, its weights untouched): AttentiveMix keeps the top cells of
    the model's last-stage attention, PuzzleMix labels blocks by the input saliency ``|dCE/dx|`` (needs
    ``y``) and transports salient pixels. ``x`` is then the NCHW float batch the model consumes; the
    images come back in a new array (or ``out``); ``boxes`` rows are -1.

    PyTorch: ``x`` and ``out`` may be CPU float32 C-contiguous tensors without grad (used zero-copy;
    ``out=x`` mixes the tensor in place); ``images`` and ``targets`` then come back as tensors (the
    other fields stay NumPy). GPU, ``requires_grad``, fp16/bf16 and non-contiguous tensors raise a
    :class:`samix.SamixError` saying what to change.

    Returns:
        :class:`MixResult` with ``images`` (``out`` when given), ``targets`` (N, num_classes) when ``y``
        is given, ``lam``, ``label_lam``, ``partner``, ``masks`` (N, H, W) and ``boxes`` (N, 4).
    """
    if isinstance(method, str) and method.lower() in MODEL_METHODS:
        if per_sample or partner is not None or channels_last:
            raise InvalidArgumentError(f"{method} supports neither per_sample, partner nor channels_last")
        if is_tensor(x) or is_tensor(out) or is_tensor(y):
            r = _model_mix(tensor_array(x, "x") if is_tensor(x) else x, label_array(y, "y") if is_tensor(y) else y,
                           method.lower(), model, alpha, num_classes, label_smoothing, lam, seed,
                           tensor_array(out, "out") if is_tensor(out) else out, return_masks)
            if is_tensor(x) or is_tensor(out):
                r.images = out if is_tensor(out) else to_tensor(r.images)
                r.targets = to_tensor(r.targets)
            return r
        return _model_mix(x, y, method.lower(), model, alpha, num_classes, label_smoothing, lam, seed, out, return_masks)
    if model is not None:
        raise InvalidArgumentError(f"model= is only used by {', '.join(MODEL_METHODS)}, not {method!r}")
    return _OneShotPolicy(method, alpha, per_sample, partner, seed)._mix(
        x, y, num_classes, label_smoothing, lam, out, return_masks, channels_last)


def _model_mix(x: Any, y: Any, method: str, model: Any, alpha: Optional[float], num_classes: Optional[int],
               label_smoothing: float, lam: Optional[float], seed: int, out: Optional[np.ndarray],
               return_masks: bool) -> MixResult:
    from .models import Model  # models imports nothing from here; deferred to keep import order free

    if not isinstance(model, Model):
        raise SamixTypeError(f"{method} needs model=samix.models.Model(...), got {type(model).__name__}")
    xa, out, labels = _batch_args(x, y, out)
    n, _, h, w = xa.shape
    k = 0
    if labels is not None:
        k = model.num_classes if num_classes is None else _int_arg(num_classes, "num_classes", 1, 1 << 24)
    elif method == "puzzlemix":
        raise InvalidArgumentError("puzzlemix needs labels y (its saliency is the gradient of the cross-entropy)")
    fixed = _lam_arg(lam)
    a = alpha_arg(alpha)
    targets = np.empty((n, k), np.float32) if labels is not None else None
    lam_arr = np.empty(n, np.float32)
    label_lam = np.empty(n, np.float32)
    partner = np.empty(n, np.int64)
    masks = np.empty((n, h, w), np.float32) if return_masks else None
    shape = shape_array(xa.shape)
    check(lib.samix_model_policy_mix(
        model.handle, c_string(method, "method"), a, _seed(seed), xa.ctypes.data, out.ctypes.data, shape.ctypes.data,
        None if labels is None else labels.ctypes.data, k, _float_arg(label_smoothing, "label_smoothing"), fixed,
        None if targets is None else targets.ctypes.data, lam_arr.ctypes.data, label_lam.ctypes.data,
        partner.ctypes.data, None if masks is None else masks.ctypes.data))
    return MixResult(out, targets, lam_arr, label_lam, partner, masks, np.full((n, 4), -1, np.int64))


class Mixup(_PolicyBase):
    """timm's ``Mixup`` (``timm.data.Mixup``) with the same arguments and semantics.

    Partner of sample ``i`` is ``N - 1 - i`` (timm's ``x.flip(0)``); odd batches work too (timm asserts).
    ``__call__(x, target)`` returns ``(x, soft_targets)``, like timm:

    * a writeable C-contiguous float32 NumPy array ``x`` is mixed in place and returned;
    * a PyTorch CPU float32 contiguous tensor (no grad) is mixed in place, zero-copy, and returned,
      with the targets as a float32 tensor (torch is never imported for NumPy inputs). GPU,
      ``requires_grad``, fp16/bf16, uint8 and non-contiguous tensors raise a :class:`samix.SamixError`
      saying what to change (uint8 batches: :class:`samix.MixupCollate`);
    * other arrays (other dtypes, views, lists) are converted once; the mixed batch is then a new
      array and ``x`` is left untouched.

    A ``Mixup`` pickles (its arguments and its generator state: the copy continues the same random
    stream), so it can live in a DataLoader ``collate_fn`` with spawn/forkserver workers.

    Args:
        mixup_alpha: Mixup Beta(alpha, alpha); 0 disables Mixup.
        cutmix_alpha: CutMix Beta(alpha, alpha); 0 disables CutMix.
        cutmix_minmax: (lo, hi) fractions of the image side for CutMix boxes (forces CutMix, alpha 1).
        prob: probability of mixing a batch (``batch`` mode) or a pair/element.
        switch_prob: probability of CutMix instead of Mixup when both are enabled.
        mode: ``"batch"``, ``"pair"`` or ``"elem"``.
        correct_lam: use the clipped box area as the CutMix label weight.
        label_smoothing: epsilon of the soft targets (timm's default 0.1).
        num_classes: number of classes of the targets. Defaults to 1000 like timm; set it to your
            dataset's class count (CIFAR-10: 10), labels must lie in [0, num_classes).
        seed: seed of the random stream.
        multi_label: targets are dense (N, num_classes) float label vectors (multi-hot, or already
            soft) instead of (N,) class indices. They are smoothed like timm's one-hot rows,
            ``t_s = t * (1 - eps) + eps / num_classes`` (for a one-hot ``t`` exactly timm's on/off
            values), then mixed with the partner's: ``label_lam[i] * t_s[i] + (1 - label_lam[i]) * t_s[partner[i]]``,
            for a BCE loss as with timm's ``--bce-loss``. With one-hot targets the result equals the
            class-index result.
    """

    def __init__(self, mixup_alpha: float = 1.0, cutmix_alpha: float = 0.0,
                 cutmix_minmax: Optional[tuple[float, float]] = None, prob: float = 1.0, switch_prob: float = 0.5,
                 mode: Literal["batch", "pair", "elem"] = "batch", correct_lam: bool = True,
                 label_smoothing: float = 0.1, num_classes: int = 1000, seed: int = 0,
                 multi_label: bool = False) -> None:
        if mode not in _MODES:
            raise InvalidArgumentError(f"mode must be 'batch', 'pair' or 'elem', got {mode!r}")
        if cutmix_minmax is None:
            lo = hi = math.nan
        else:
            try:
                lo, hi = (_float_arg(v, "cutmix_minmax") for v in cutmix_minmax)
            except (TypeError, ValueError):
                raise SamixTypeError(f"cutmix_minmax must be a (lo, hi) pair, got {cutmix_minmax!r}") from None
        if not isinstance(multi_label, (bool, np.bool_)):
            raise SamixTypeError(f"multi_label must be a bool, got {type(multi_label).__name__}")
        self.num_classes = _int_arg(num_classes, "num_classes", 1, 1 << 24)
        h = ctypes.c_uint64(0)
        check(lib.samix_policy_create_timm(
            _float_arg(mixup_alpha, "mixup_alpha"), _float_arg(cutmix_alpha, "cutmix_alpha"), lo, hi,
            _float_arg(prob, "prob"), _float_arg(switch_prob, "switch_prob"), _MODES[mode], 1 if correct_lam else 0,
            _float_arg(label_smoothing, "label_smoothing"), self.num_classes, _seed(seed), ctypes.addressof(h)))
        super().__init__(h.value)
        self._init_args = dict(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, cutmix_minmax=cutmix_minmax,
                               prob=prob, switch_prob=switch_prob, mode=mode, correct_lam=correct_lam,
                               label_smoothing=label_smoothing, num_classes=num_classes, seed=seed,
                               multi_label=bool(multi_label))
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = 1.0 if cutmix_minmax is not None else float(cutmix_alpha)
        self.cutmix_minmax = cutmix_minmax
        self.prob = float(prob)
        self.switch_prob = float(switch_prob)
        self.mode = mode
        self.correct_lam = bool(correct_lam)
        self.label_smoothing = float(label_smoothing)
        self.multi_label = bool(multi_label)

    def __reduce__(self) -> tuple:
        """Pickles the arguments and the generator state: the copy continues the same random stream."""
        return (_unpickle_policy, (type(self), self._init_args, self.rng_state))

    def __call__(self, x: Any, target: Any) -> tuple[Any, Any]:
        """Mixes ``x`` (N, C, H, W) and returns ``(mixed x, soft targets (N, num_classes))``.

        ``target``: (N,) integer class indices, or (N, num_classes) floats with ``multi_label=True``.
        """
        if target is None:
            raise InvalidArgumentError("Mixup needs the labels: call mixup(x, target) with (N,) class indices "
                                       "(to mix images without labels use samix.mix or samix.MixPolicy)")
        if type(x) is np.ndarray and type(target) is np.ndarray and not self.multi_label:
            # Hot path, once per training batch: a float32 NCHW batch mixed in place with int64 labels
            # needs none of the conversions of the general path; one 5-argument ABI call (a ctypes call
            # costs ~0.15 µs per argument) and buffer-protocol addresses (``address``) instead of
            # ``.ctypes.data``. Same draws and results as the general path.
            fx = x.flags
            if (x.dtype == F32 and target.dtype == I64 and x.ndim == 4 and target.ndim == 1
                    and fx.c_contiguous and fx.aligned and fx.writeable and target.flags.c_contiguous
                    and target.shape[0] == x.shape[0]):
                shape = x.shape
                c = self._shape_cache
                if c[0] != shape:
                    c = self._shape_entry(shape)
                targets = np.empty((shape[0], self.num_classes), dtype=F32)
                check(_mix_timm(self.handle, address(x), c[2], address(target), address(targets)))
                return x, targets
        if is_tensor(x):
            xa = tensor_array(x, "x")  # a view: mixing it mixes the tensor
            ya = label_array(target, "target") if is_tensor(target) else target
            _, t = self._call_array(xa, ya, in_place=True)
            return x, to_tensor(t)
        if is_tensor(target):
            target = label_array(target, "target")
        in_place = (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous
                    and x.flags.aligned and x.flags.writeable)
        return self._call_array(x, target, in_place)

    def _call_array(self, x: Any, target: Any, in_place: bool) -> tuple[np.ndarray, np.ndarray]:
        if not self.multi_label:
            r = self._mix(x, target, self.num_classes, self.label_smoothing, None, x if in_place else None,
                          False, False, details=False)
            return r.images, r.targets
        dense = as_f32(target, "target", ndim=2)
        n = dense.shape[0]
        if dense.shape[1] != self.num_classes:
            raise ShapeError(f"multi_label targets must have shape (N, {self.num_classes}), got {dense.shape}")
        r = self._mix(x, None, None, 0.0, None, x if in_place else None, False, False, details=True)
        if r.images.shape[0] != n:
            raise ShapeError(f"target has {n} rows for a batch of {r.images.shape[0]}")
        return r.images, mix_dense_targets(dense, r.label_lam, r.partner, self.label_smoothing)

    def mix(self, x: Any, target: Any, out: Optional[np.ndarray] = None, return_masks: bool = False) -> MixResult:
        """Like ``__call__`` but returns the full :class:`MixResult` (lam, partner, boxes, ...)."""
        if self.multi_label:
            raise InvalidArgumentError("Mixup.mix returns class-index targets; with multi_label=True call the "
                                       "Mixup itself, or mix(x, None) and samix.mixing.mix_dense_targets")
        return self._mix(x, target, self.num_classes, self.label_smoothing, None, out, return_masks, False)

    def __repr__(self) -> str:
        return (f"Mixup(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, "
                f"cutmix_minmax={self.cutmix_minmax}, prob={self.prob}, switch_prob={self.switch_prob}, "
                f"mode={self.mode!r}, correct_lam={self.correct_lam}, label_smoothing={self.label_smoothing}, "
                f"num_classes={self.num_classes}{', multi_label=True' if self.multi_label else ''})")


def mix_dense_targets(targets: Any, label_lam: Any, partner: Any, label_smoothing: float = 0.0) -> np.ndarray:
    """Soft targets from dense (N, K) label vectors (multi-label), timm's formula generalised.

    ``t_s = t * (1 - eps) + eps / K`` (a one-hot row becomes timm's on/off values), then
    ``out[i] = label_lam[i] * t_s[i] + (1 - label_lam[i]) * t_s[partner[i]]``. Returns float32 (N, K).
    """
    t = as_f32(targets, "targets", ndim=2)
    lam = as_f32(label_lam, "label_lam", ndim=1)
    idx = as_labels(partner, "partner")
    n, k = t.shape
    if lam.shape[0] != n or idx.shape[0] != n:
        raise ShapeError(f"targets have {n} rows but label_lam {lam.shape[0]} and partner {idx.shape[0]}")
    if n and (idx.min() < 0 or idx.max() >= n):
        raise InvalidArgumentError(f"partner indices must lie in [0, {n})")
    eps = _float_arg(label_smoothing, "label_smoothing")
    if not 0.0 <= eps < 1.0:
        raise InvalidArgumentError(f"label_smoothing must be in [0, 1), got {eps}")
    ts = t * np.float32(1.0 - eps) + np.float32(eps / k)
    w = lam[:, None]
    return (w * ts + (np.float32(1.0) - w) * ts[idx]).astype(np.float32, copy=False)
