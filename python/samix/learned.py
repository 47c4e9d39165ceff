"""Learned mixing policies: AutoMix, SAMix and SAMix^P, trained by :class:`samix.Trainer`.

The Mixer (SAMix) or Mix Block (AutoMix) is trained end to end with the classifier: a momentum copy
of the network feeds stage features to the Mixer, which generates per-pixel masks for every pair
of images (docs/method.md §2). Parameter names follow OpenMixup's ``AutoMixup`` / ``PixelMixBlock``; the
defaults are the CIFAR configs, so ``samix.SAMix()`` and ``samix.AutoMix()`` work as they are::

    trainer = samix.Trainer(model, mix=samix.SAMix(eta=0.5), seed=0)
    trainer.fit(x, y, epochs=10, val=(xt, yt))     # history: val_accuracy (online) + val_momentum_accuracy
    masks = trainer.mixer_masks(x[:16])             # (16, 1, H, W) partner masks in [0, 1]
    trainer.save_mixer("mixer.bin")                 # SAMix^P: reuse the frozen Mixer elsewhere
    t2 = samix.Trainer(other_model, mix=samix.SAMix.pretrained("mixer.bin"))

Every value is validated by the engine when the policy is created (an invalid value raises
:class:`~samix.errors.InvalidArgumentError` with the engine's message), so a policy that constructs
is usable by any :class:`~samix.Trainer` whose backbone has stage ``mask_layer``.
"""

from __future__ import annotations

import ctypes
import math
import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._cstr import c_string
from ._arrays import as_f32, as_labels, shape_array
from ._lib import check, lib
from ._schema import checked, option_schema
from .errors import InvalidArgumentError, SamixTypeError, ShapeError

__all__ = ["LearnedMix", "AutoMix", "SAMix", "PretrainedMixer", "MIXER_LOSSES", "MASK_LOSS_MODES", "engine_defaults",
           "AUTOMIX_DEFAULTS", "SAMIX_DEFAULTS", "PRETRAINED_DEFAULTS"]

# Defaults, types, ranges, choices and docs come from the engine's option schema (one ABI call at
# import, cached): the values below are never written twice.
_LEARNED = option_schema("learned")
_PRETRAINED = option_schema("pretrained")
#: ``name -> default`` of AutoMix / SAMix / SAMix^P, from the engine's schema.
AUTOMIX_DEFAULTS = _LEARNED.defaults("automix")
SAMIX_DEFAULTS = _LEARNED.defaults("samix")
PRETRAINED_DEFAULTS = _PRETRAINED.defaults("samix-p")

#: Mixer objectives: ``"eta_balanced"`` (local two-class term + η × global mixup CE; the paper's
#: loss and SAMix's default), ``"official"`` (global mixup CE only: what OpenMixup's shipped SAMix
#: configs compute, and AutoMix's objective), ``"bce"`` (sigmoid BCE with η weighting the negatives).
MIXER_LOSSES = _LEARNED["mixer_loss"].choices
#: Mask regularisers (OpenMixup ``mask_loss_mode``).
MASK_LOSS_MODES = _LEARNED["mask_loss_mode"].choices

_UNSET = object()


def _real(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise SamixTypeError(f"{name} must be a real number, got {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f):
        raise InvalidArgumentError(f"{name} must be finite, got {f}")
    return f


def _str(v: Any, name: str, choices: Optional[Sequence[str]] = None) -> str:
    if not isinstance(v, str):
        raise SamixTypeError(f"{name} must be a str, got {type(v).__name__}")
    if "\n" in v or "\r" in v:
        raise InvalidArgumentError(f"{name} must not contain line breaks")
    if choices is not None and v.lower().replace("+", "").replace("_", "") not in {
            c.lower().replace("+", "").replace("_", "") for c in choices}:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(choices)}, got {v!r}")
    return v


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, tuple):
        return ",".join(_fmt(x) for x in v)
    if v is None:
        return "none"
    return str(v)


class LearnedMix:
    """Base of the learned policies: a validated set of options passed to the engine.

    Subclasses define ``method`` (engine name) and ``_FIELDS``: (name, default, converter). The
    option names are OpenMixup's where they exist.
    """

    method: str = ""
    _FIELDS: tuple = ()
    #: Fields shown in the repr even when they hold their default.
    _REPR_ALWAYS: tuple = ()

    def __init__(self, **kwargs: Any) -> None:
        values = {}
        for name, default, conv in self._FIELDS:
            v = kwargs.pop(name, default)
            values[name] = v if v is None and default is None else conv(v, name)
        if kwargs:
            known = ", ".join(n for n, _, _ in self._FIELDS)
            raise TypeError(f"{type(self).__name__}() got unexpected argument(s) {', '.join(sorted(kwargs))}; "
                            f"known: {known}")
        self._values = values
        check(lib.samix_learned_check(c_string(self.method, "method"), c_string(self.options(), "options")))

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_values":
            raise AttributeError(f"{type(self).__name__} is immutable; use .replace({name}=...)")
        object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> "LearnedMix":
        """A copy with some options changed (validated again)."""
        return type(self)(**{**self._values, **changes})

    def to_dict(self) -> dict:
        """The options as a dict (constructor arguments)."""
        return dict(self._values)

    def options(self) -> str:
        """The ``key=value`` lines passed to the engine."""
        return "".join(f"{k}={_fmt(v)}\n" for k, v in self._values.items())

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values == self._values  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self._values.items()))))

    def __repr__(self) -> str:
        defaults = {n: d for n, d, _ in self._FIELDS}
        parts = [f"{k}={v!r}" for k, v in self._values.items() if k in self._REPR_ALWAYS or v != defaults[k]]
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- used by samix.Trainer --------------------------------------------------------------------

    def _create_trainer(self, model_handle: int, optimizer: Any, schedule: Any, seed: int) -> int:
        h = ctypes.c_uint64(0)
        check(lib.samix_trainer_create_learned(model_handle, c_string(self.method, "method"), c_string(self.options(), "options"),
                                               c_string(optimizer.name, "optimizer"), float(optimizer.lr), float(optimizer.momentum),
                                               float(optimizer.weight_decay), 1 if optimizer.nesterov else 0,
                                               c_string(schedule.spec(), "schedule"), schedule.warmup_steps, int(seed),
                                               ctypes.addressof(h)))
        return h.value


def _schema_field(group: Any, method: str, name: str) -> tuple:
    """(name, default, converter) of a schema option: the converter checks its type, range and choices."""
    opt = group[name]
    return (name, opt.default(method), lambda v, n, _o=opt: checked(_o, v))


_COMMON_NAMES = ("alpha", "momentum", "mask_layer", "mask_loss", "mask_adjust", "lam_margin")
_TAIL_NAMES = ("mask_loss_margin", "mask_loss_scope", "momentum_end", "momentum_reference_steps",
               "mask_adjust_uses_mixer_lambda", "mix_shuffle_no_repeat", "switch_off", "evaluate_mix_heads",
               "momentum_stops_at_mask_layer")


def _fields(method: str, middle: tuple) -> tuple:
    return tuple(_schema_field(_LEARNED, method, n) for n in _COMMON_NAMES + middle + _TAIL_NAMES)


def _with_schema_doc(cls: type, group: Any, method: str) -> type:
    """Appends the engine schema's line of every option the class takes to its docstring."""
    names = {n for n, _, _ in cls._FIELDS}  # type: ignore[attr-defined]
    lines = "\n".join("        " + o.describe(method) for n, o in group.options.items() if n in names)
    cls.__doc__ = (cls.__doc__ or "") + "\n    Options (engine schema: type, default, range, doc):\n" + lines + "\n"
    return cls


_A = AUTOMIX_DEFAULTS
_S = SAMIX_DEFAULTS
_P = PRETRAINED_DEFAULTS


class AutoMix(LearnedMix):
    """AutoMix (Liu et al., ECCV 2022): Mix Block with cross-attention over a shared projection,
    linear value, nearest upsampling, L1 mask loss; the Mixer objective is the mixup CE through the
    momentum network. Defaults: OpenMixup's CIFAR config
    (``r18_l2_a2_near_L1_01_mlr5e_2``).

    Args:
        alpha: λ ~ Beta(alpha, alpha) for both draws of a step.
        momentum: EMA momentum m₀ of the momentum network (cosine to ``momentum_end``).
        mask_layer: 0-based backbone stage feeding the Mix Block (2: the stride-4 stage on CIFAR).
        mask_loss: weight of the mask regulariser.
        mask_adjust: probability of rescaling the classifier's mask to mean λ.
        lam_margin: use a constant (Mixup) mask when λ or 1 − λ ≤ lam_margin.
        mask_loss_mode: one of :data:`MASK_LOSS_MODES` (``"L1"``).
        mixer_loss: one of :data:`MIXER_LOSSES` (``"official"``: mixup CE).
        eta: η of ``"eta_balanced"`` / ``"bce"``.
        lam_concat: append a λ channel (AutoMix's ImageNet Mix Block).
        mask_loss_margin: δ of the mask loss.
        mask_loss_scope: ``"batch"`` (one mean and variance over the whole batch: OpenMixup's, the
            default) or ``"sample"`` (each mask's mean near its λ; a project option, see README).
        momentum_end: final EMA momentum.
        momentum_reference_steps: run length the momentum schedule was tuned for (OpenMixup's
            200,000 steps); the EMA step is rescaled to the actual run. None: the literal schedule.
        mask_adjust_uses_mixer_lambda: reproduce the reference's mask_adjust bug (docs/method.md §9 quirk 1).
        mix_shuffle_no_repeat: permutations without fixed points.
        switch_off: skip the Mixer objective with probability 1 − switch_off (0: never skip).
        evaluate_mix_heads: also report the mixup heads ("momentum_mix", "online_mix").
        momentum_stops_at_mask_layer: run the momentum encoder's clean forward only up to
            ``mask_layer`` (a project option; the reference runs every stage, so later stages' BN
            statistics also see clean images).

    A :class:`samix.Trainer` with the default ``Schedule("cosine")`` anneals AutoMix/SAMix to
    0.5 × lr (OpenMixup's 0.1 → ``min_lr`` 0.05); ``Schedule("cosine", min_lr=...)`` overrides it.
    """

    method = "automix"
    _FIELDS = _fields("automix", ("mask_loss_mode", "mixer_loss", "eta", "lam_concat"))
    _REPR_ALWAYS = _COMMON_NAMES

    # Signature defaults are the schema's values (evaluated at import), so help() and IDEs show them.
    def __init__(self, alpha: float = _A["alpha"], momentum: float = _A["momentum"], mask_layer: int = _A["mask_layer"],
                 mask_loss: float = _A["mask_loss"], mask_adjust: float = _A["mask_adjust"],
                 lam_margin: float = _A["lam_margin"], **options: Any) -> None:
        super().__init__(alpha=alpha, momentum=momentum, mask_layer=mask_layer, mask_loss=mask_loss,
                         mask_adjust=mask_adjust, lam_margin=lam_margin, **options)


class SAMix(LearnedMix):
    """SAMix (Li et al., 2021): Mixer with adaptive λ encoding R_k, mixing attention, a BN + ELU
    value network, bilinear upsampling, L1 + variance mask loss, and the η-balanced Mixer objective
    (local two-class term + η × global mixup CE). Defaults: OpenMixup's CIFAR config
    (``r18_l2_a2_bili_val_dp0_mul_x_cat_L1_var_01_mlr5e_2``) with the paper's η-balanced loss; use
    ``mixer_loss="official"`` for what the shipped configs compute.

    Args:
        alpha, momentum, mask_layer, mask_loss, mask_adjust, lam_margin: as :class:`AutoMix`.
        lam_mul_k: k of the cubic λ rescale R_k, one value or a tuple drawn from per Mixer call
            (0.25 on CIFAR; -1 = plain λ).
        eta: η of the η-balanced (or BCE) Mixer objective.
        mixer_loss: one of :data:`MIXER_LOSSES`.
        mask_loss_mode: one of :data:`MASK_LOSS_MODES` (``"L1+Variance"``).
        value_dropout: dropout of the value network.
        Others: as :class:`AutoMix`.

    In :class:`samix.ssl.MoCo` a SAMix policy selects SAMix-I / SAMix-C and contributes ``alpha``,
    ``eta``, ``mask_layer``, ``mask_loss``, ``mask_loss_mode``, ``mask_loss_margin``, ``lam_mul_k``,
    ``value_dropout`` and ``mixer_loss``; the supervised-only options are not used there.
    """

    method = "samix"
    _FIELDS = _fields("samix", ("lam_mul_k", "eta", "mixer_loss", "mask_loss_mode", "value_dropout"))
    _REPR_ALWAYS = _COMMON_NAMES + ("lam_mul_k", "eta", "mixer_loss")

    def __init__(self, alpha: float = _S["alpha"], momentum: float = _S["momentum"], mask_layer: int = _S["mask_layer"],
                 mask_loss: float = _S["mask_loss"], mask_adjust: float = _S["mask_adjust"],
                 lam_margin: float = _S["lam_margin"], lam_mul_k: Union[float, Sequence[float]] = _S["lam_mul_k"],
                 eta: float = _S["eta"], mixer_loss: str = _S["mixer_loss"], **options: Any) -> None:
        super().__init__(alpha=alpha, momentum=momentum, mask_layer=mask_layer, mask_loss=mask_loss,
                         mask_adjust=mask_adjust, lam_margin=lam_margin, lam_mul_k=lam_mul_k, eta=eta,
                         mixer_loss=mixer_loss, **options)

    @staticmethod
    def pretrained(path: Union[str, "os.PathLike[str]"], alpha: float = _P["alpha"], lam_margin: float = _P["lam_margin"],
                   mask_adjust: float = _P["mask_adjust"],
                   batch_statistics: bool = _P["batch_statistics"]) -> "PretrainedMixer":
        """SAMix^P: train a new network with the frozen Mixer saved by :meth:`samix.Trainer.save_mixer`
        (no momentum network, no Mixer training). See :class:`PretrainedMixer`."""
        return PretrainedMixer(path, alpha=alpha, lam_margin=lam_margin, mask_adjust=mask_adjust,
                               batch_statistics=batch_statistics)


def _path(v: Any, name: str) -> str:
    if not isinstance(v, (str, os.PathLike)):
        raise SamixTypeError(f"{name} must be a str or os.PathLike, got {type(v).__name__}")
    s = os.fspath(v)
    if not isinstance(s, str):
        raise SamixTypeError(f"{name} must be a text path")
    return _str(os.path.abspath(s), name)


class PretrainedMixer(LearnedMix):
    """SAMix^P (docs/method.md §6): masks from a saved, frozen Mixer and its frozen encoder train a new
    classifier with the mixup CE — no momentum network and no Mixer objective, so a step costs one
    extra no-grad encoder pass. The new classifier may have another architecture or class count;
    its images must have the encoder's channel count.

    Args:
        path: file written by :meth:`samix.Trainer.save_mixer`.
        alpha: λ ~ Beta(alpha, alpha).
        lam_margin: constant (Mixup) mask when λ or 1 − λ ≤ lam_margin.
        mask_adjust: probability of rescaling a mask to mean λ.
        batch_statistics: run the frozen encoder/Mixer with batch statistics (as when the Mixer was
            trained); False uses the saved running statistics.
    """

    method = "samix-p"
    _FIELDS = (("path", None, _path),) + tuple(_schema_field(_PRETRAINED, "samix-p", n)
                                               for n in ("alpha", "lam_margin", "mask_adjust", "batch_statistics"))
    _REPR_ALWAYS = ("path", "alpha", "lam_margin", "mask_adjust")

    def __init__(self, path: Union[str, "os.PathLike[str]"], alpha: float = _P["alpha"], lam_margin: float = _P["lam_margin"],
                 mask_adjust: float = _P["mask_adjust"], batch_statistics: bool = _P["batch_statistics"]) -> None:
        if path is None:
            raise SamixTypeError("path must be a str or os.PathLike, got NoneType")
        super().__init__(path=path, alpha=alpha, lam_margin=lam_margin, mask_adjust=mask_adjust,
                         batch_statistics=batch_statistics)


_with_schema_doc(AutoMix, _LEARNED, "automix")
_with_schema_doc(SAMix, _LEARNED, "samix")
_with_schema_doc(PretrainedMixer, _PRETRAINED, "samix-p")


def from_options(method: str, options: str) -> LearnedMix:
    """The policy for an engine method name and ``key=value`` lines (as stored in checkpoints)."""
    cls = {"automix": AutoMix, "samix": SAMix, "samix-p": PretrainedMixer}.get(method)
    if cls is None:
        raise InvalidArgumentError(f"unknown learned mixing method {method!r}")
    fields = {n: (d, c) for n, d, c in cls._FIELDS}
    kwargs: dict[str, Any] = {}
    for line in options.splitlines():
        if not line.strip():
            continue
        k, _, v = line.partition("=")
        if k not in fields:
            raise InvalidArgumentError(f"unknown {method} option {k!r}")
        default = fields[k][0]
        if v == "none":
            kwargs[k] = None
        elif isinstance(default, bool):
            kwargs[k] = v == "1"
        elif isinstance(default, tuple):
            kwargs[k] = tuple(float(x) for x in v.split(","))
        elif isinstance(default, float):
            kwargs[k] = float(v)
        elif isinstance(default, int):
            kwargs[k] = int(v)
        else:
            kwargs[k] = v
    return cls(**kwargs)


# -- trainer helpers (used by samix.Trainer) ---------------------------------------------------------


def trainer_heads(handle: int) -> list[str]:
    """Names of the networks a trainer reports ("online", then e.g. "momentum")."""
    needed, count = ctypes.c_int64(0), ctypes.c_int64(0)
    check(lib.samix_trainer_heads(handle, None, 0, ctypes.addressof(needed), ctypes.addressof(count)))
    buf = ctypes.create_string_buffer(max(int(needed.value), 1))
    check(lib.samix_trainer_heads(handle, ctypes.addressof(buf), len(buf), ctypes.addressof(needed),
                                  ctypes.addressof(count)))
    names = buf.value.decode().split("\n")
    return names[:int(count.value)]


def engine_defaults(method: str) -> dict[str, str]:
    """The engine's default options of ``"automix"`` / ``"samix"`` as raw ``key -> value`` strings
    (what the Python signature defaults are checked against)."""
    if not isinstance(method, str):
        raise SamixTypeError(f"method must be a str, got {type(method).__name__}")
    needed = ctypes.c_int64(0)
    check(lib.samix_learned_defaults(method.encode(), None, 0, ctypes.addressof(needed)))
    buf = ctypes.create_string_buffer(max(int(needed.value), 1))
    check(lib.samix_learned_defaults(method.encode(), ctypes.addressof(buf), len(buf), ctypes.addressof(needed)))
    return dict(line.partition("=")[::2] for line in buf.value.decode().splitlines() if "=" in line)


def mixer_masks(handle: int, in_channels: int, x: Any, lam: float, partner: Any, seed: int) -> np.ndarray:
    """Partner masks (N, 1, H, W) of the trainer's Mixer for a float batch."""
    xa = as_f32(x, "x", ndim=4)
    if xa.shape[0] < 2:
        raise ShapeError(f"the Mixer needs a batch of at least 2 images, got shape {xa.shape}")
    lam = _real(lam, "lam")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise InvalidArgumentError(f"seed must be an int in [0, 2**64), got {seed!r}")
    n, _, h, w = xa.shape
    p = None
    if partner is not None:
        p = as_labels(partner, "partner")
        if p.shape != (n,):
            raise ShapeError(f"partner must have shape ({n},), got {p.shape}")
    out = np.empty((n, 1, h, w), dtype=np.float32)
    shape = shape_array(xa.shape)
    check(lib.samix_trainer_mixer_masks(handle, xa.ctypes.data, shape.ctypes.data, lam,
                                        None if p is None else p.ctypes.data, int(seed), out.ctypes.data, out.size))
    return out


def mix_result(masks_fn: Any, x: Any, lam: float, partner: Any, seed: int) -> Any:
    """A :class:`samix.MixResult` of ``x`` mixed with the masks ``masks_fn(x, lam, partner, seed)``."""
    from .mixing import MixResult

    xa = as_f32(x, "x", ndim=4)
    n = xa.shape[0]
    if partner is None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
            raise InvalidArgumentError(f"seed must be an int in [0, 2**64), got {seed!r}")
        partner = np.random.default_rng(int(seed)).permutation(n)
    p = as_labels(partner, "partner")
    m = masks_fn(xa, lam=lam, partner=p, seed=seed)
    mixed = xa * (1.0 - m) + xa[p] * m
    realised = (1.0 - m.reshape(n, -1).mean(axis=1)).astype(np.float32)
    return MixResult(images=mixed.astype(np.float32), targets=None, lam=realised,
                     label_lam=np.full(n, lam, dtype=np.float32), partner=p, masks=m[:, 0],
                     boxes=np.full((n, 4), -1, dtype=np.int64))
