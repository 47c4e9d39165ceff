"""Self-supervised learning: MoCo v2, MoCo v2 + Mixup, SAMix-I and SAMix-C (docs/method.md §5), and the
frozen-backbone evaluations (kNN top-1, linear probe).

::

    moco = samix.ssl.MoCo("resnet18", mix=samix.SAMix(), variant="instance", seed=0)
    history = moco.fit(x_train, y_train, epochs=20, batch_size=128, knn_every=5, val=(x_test, y_test))
    samix.ssl.knn_eval(moco, x_train, y_train, x_test, y_test)          # top-1 in [0, 1]
    samix.ssl.linear_probe(moco, x_train, y_train, x_test, y_test)      # {"train_accuracy", "test_accuracy"}
    moco.save_backbone("moco.bin")
    model = samix.ssl.load_backbone("moco.bin", num_classes=10)         # a samix Model to fine-tune
    moco.save_mixer("mixer.bin")                                        # SAMix-I/C: the label-free Mixer,
    samix.Trainer(model, mix=samix.SAMix.pretrained("mixer.bin"))      # reused frozen (SAMix^P)

Images are uint8 (N, C, H, W) arrays (0-255, e.g. from :mod:`samix.datasets`); the engine draws the
MoCo v2 augmentations (random resized crop, flip, colour jitter, grayscale, blur) and normalises them
with the statistics of the first pre-training data (CIFAR/Fashion-MNIST constants, else computed).
Labels are never used for pre-training; they only form the kNN monitor's memory bank.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ._cstr import c_string
from ._arrays import as_labels
from ._handle import Handle
from ._lib import RECORD_CALLBACK, check, lib
from ._fit_calls import repeat_fit_call
from ._interrupt import interrupt_guard, interruptible
from .checkpoint import MetadataArgs, PathLike, path_arg
from .datasets import _DatasetHandle
from .errors import InvalidArgumentError, SamixIOError, SamixTypeError, ShapeError
from ._schema import option_schema
from .learned import SAMix, _real
from .models import Model
from . import distributed as _distributed

__all__ = ["MoCo", "SSL_DEFAULTS", "SSL_FIT_DEFAULTS", "knn_eval", "linear_probe", "features", "load_backbone", "backbone_info"]

Encoder = Union["MoCo", Model]

# MoCo's defaults and lower bounds come from the engine's option schema (group "ssl"; one ABI call
# at import, cached): signature defaults are the schema's values, so help() and IDEs show them.
_SSL = option_schema("ssl")
#: ``name -> default`` of MoCo + SAMix-I/C options, from the engine's schema.
SSL_DEFAULTS = _SSL.defaults("samix")
_D = SSL_DEFAULTS
#: ``name -> default`` of MoCo pre-training and its kNN monitor (group "ssl_fit").
SSL_FIT_DEFAULTS = option_schema("ssl_fit").defaults()
_F = SSL_FIT_DEFAULTS


def _lo(name: str) -> int:
    """The schema's lower bound of an integer option."""
    return int(_SSL[name].min)


_SAMIX_SSL_FIELDS = ("alpha", "eta", "mask_layer", "mask_loss", "mask_loss_mode", "mask_loss_margin", "lam_mul_k",
                     "value_dropout", "mixer_loss")


def _int(v: Any, name: str, lo: int, hi: int = 2**40) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise SamixTypeError(f"{name} must be an int, got {type(v).__name__}")
    if not lo <= int(v) <= hi:
        raise InvalidArgumentError(f"{name} must be in [{lo}, {hi}], got {v}")
    return int(v)


def _seed(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < 2**64:
        raise InvalidArgumentError(f"seed must be an int in [0, 2**64), got {v!r}")
    return int(v)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, tuple):
        return ",".join(_fmt(x) for x in v)
    return str(v)


def _parse_record(text: str) -> dict:
    out: dict[str, Any] = {}
    for line in text.splitlines():
        k, _, v = line.partition("=")
        if not k:
            continue
        try:
            out[k] = int(v) if k in ("epoch", "steps") else float(v)
        except ValueError:
            out[k] = v
    return out


class _Images:
    """uint8 images (+ labels) as a temporary engine dataset."""

    def __init__(self, x: Any, y: Any, name: str, num_classes: Optional[int] = None) -> None:
        a = x if isinstance(x, np.ndarray) else np.asarray(x)
        if a.dtype != np.uint8:
            raise SamixTypeError(f"{name} must be uint8 images (N, C, H, W) with values 0-255, got dtype {a.dtype}")
        if a.ndim != 4:
            raise ShapeError(f"{name} must have shape (N, C, H, W), got {a.shape}")
        if a.shape[0] == 0:
            raise ShapeError(f"{name} is empty")
        if y is None:
            labels = np.zeros(a.shape[0], dtype=np.int64)
        else:
            labels = as_labels(y, f"{name} labels")
            if labels.shape[0] != a.shape[0]:
                raise ShapeError(f"{name}: {a.shape[0]} images but {labels.shape[0]} labels")
            if labels.size and labels.min() < 0:
                raise InvalidArgumentError(f"{name} labels must be ≥ 0")
        k = num_classes if num_classes is not None else int(labels.max()) + 1
        self.count = int(a.shape[0])
        self.ds = _DatasetHandle(a, labels, k, name)

    @property
    def handle(self) -> int:
        return self.ds.handle

    def close(self) -> None:
        ds, self.ds = self.ds, None
        if ds is not None:
            ds.__exit__()

    def __enter__(self) -> "_Images":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _num_classes(*ys: Any) -> int:
    m = 0
    for y in ys:
        a = np.asarray(y)
        if a.size:
            m = max(m, int(a.max()) + 1)
    return max(m, 1)


class MoCo(Handle):
    """MoCo v2 in the engine, optionally with Mixup or SAMix inside (SAMix-I / SAMix-C).

    Args:
        model: backbone name (``samix.models.available()``), e.g. ``"resnet18"`` or ``"resnet20"``.
        in_channels: image channels (3 for CIFAR, 1 for Fashion-MNIST).
        queue_size: K, the number of negative keys (keep it below the training-set size).
        temperature: T of InfoNCE.
        momentum: EMA momentum of the key encoder (0.99 suits short CIFAR runs; MoCo uses 0.999).
        neck_hidden, embedding_dim: the MLP projection neck C → hidden → dim.
        neck_bn: BN in the neck (SimCLR-style) instead of MoCo v2's plain MLP.
        shuffle_bn_groups: groups of the one-device shuffle-BN (1 = plain BN).
        mix: None (MoCo v2), ``"mixup"`` (cross-view Mixup with instance-level mixed targets,
            λ ~ Beta(alpha, alpha)) or a :class:`samix.SAMix` policy (its alpha, eta, mask_layer,
            mask_loss, mask_loss_mode, mask_loss_margin, lam_mul_k, value_dropout and mixer_loss are used).
        variant: with SAMix, ``"instance"`` (SAMix-I) or ``"cluster"`` (SAMix-C: k-means pseudo-labels
            refreshed every epoch).
        alpha: Beta(alpha, alpha) of ``mix="mixup"``.
        clusters, kmeans_iterations: SAMix-C's k-means.
        kmeans_warm_start: SAMix-C: start each epoch's k-means from the previous centroids, so a
            cluster keeps its number and the cluster head its knowledge (the reference, False,
            re-clusters from scratch: new arbitrary numbers every epoch; see ``pseudo_labels_kept``
            in :attr:`history`).
        mask_adjust: SAMix's backbone-mask adjustment: ``"auto"`` (rescale samples whose mask mean is
            more than 0.1 from λ; the reference), ``"auto_label"``, ``"off"`` or a probability.
        positive_extension: SAMix-I's positive feature extension ("off", "interpolate", "extrapolate", "both").
        cluster_features: SAMix-C: encoder whose GAP features are clustered, ``"query"`` or ``"key"``;
            None = the engine's default, the reference's ``"query"``.
        cluster_pca_dim: SAMix-C: PCA-whitening dimension before k-means; 0 = none (L2-normalised
            features only); None = the engine's default, the reference's 256.
        detach_cluster_head_mixed: SAMix-C: detach the mixed features before the cluster head's mixup
            CE; None = the engine's default, the reference's False (that term also trains the Mixer).
        seed: seed of the initialisation and of every random draw of training.
    """

    _free_fn = lib.samix_ssl_free

    def __init__(self, model: str = "resnet18", in_channels: int = 3, *, queue_size: int = _D["queue_size"],
                 temperature: float = _D["temperature"], momentum: float = _D["momentum"],
                 neck_hidden: int = _D["neck_hidden"], embedding_dim: int = _D["embedding_dim"],
                 neck_bn: bool = _D["neck_bn"], shuffle_bn_groups: int = _D["shuffle_bn_groups"],
                 mix: Union[None, str, SAMix] = None, variant: str = _D["variant"], alpha: float = _D["alpha"],
                 clusters: int = _D["clusters"], kmeans_iterations: int = _D["kmeans_iterations"],
                 kmeans_warm_start: bool = _D["kmeans_warm_start"], mask_adjust: Union[str, float] = _D["mask_adjust"],
                 positive_extension: str = _D["positive_extension"], cluster_features: Optional[str] = None,
                 cluster_pca_dim: Optional[int] = None, detach_cluster_head_mixed: Optional[bool] = None,
                 seed: int = 0) -> None:
        if not isinstance(model, str):
            raise SamixTypeError(f"model must be a backbone name (str), got {type(model).__name__}")
        if not isinstance(variant, str) or variant not in _SSL["variant"].choices:
            raise InvalidArgumentError(f"variant must be 'instance' or 'cluster', got {variant!r}")
        if not isinstance(neck_bn, (bool, np.bool_)):
            raise SamixTypeError(f"neck_bn must be a bool, got {type(neck_bn).__name__}")
        opts: dict[str, Any] = {
            "queue_size": _int(queue_size, "queue_size", _lo("queue_size")), "temperature": _real(temperature, "temperature"),
            "momentum": _real(momentum, "momentum"), "neck_hidden": _int(neck_hidden, "neck_hidden", _lo("neck_hidden")),
            "embedding_dim": _int(embedding_dim, "embedding_dim", _lo("embedding_dim")), "neck_bn": bool(neck_bn),
            "shuffle_bn_groups": _int(shuffle_bn_groups, "shuffle_bn_groups", _lo("shuffle_bn_groups")),
        }
        if mix is None or (isinstance(mix, str) and mix in ("none", "moco")):
            mix_name = "none"
            if variant != "instance":
                raise InvalidArgumentError("variant='cluster' needs mix=samix.SAMix(...)")
        elif isinstance(mix, str) and mix == "mixup":
            mix_name = "mixup"
            opts["alpha"] = _real(alpha, "alpha")
            if variant != "instance":
                raise InvalidArgumentError("variant='cluster' needs mix=samix.SAMix(...)")
        elif isinstance(mix, SAMix):
            mix_name = "samix"
            for k in _SAMIX_SSL_FIELDS:
                opts[k] = getattr(mix, k)
            opts["variant"] = variant
            opts["clusters"] = _int(clusters, "clusters", _lo("clusters"))
            opts["kmeans_iterations"] = _int(kmeans_iterations, "kmeans_iterations", _lo("kmeans_iterations"))
            if not isinstance(kmeans_warm_start, (bool, np.bool_)):
                raise SamixTypeError(f"kmeans_warm_start must be a bool, got {type(kmeans_warm_start).__name__}")
            opts["kmeans_warm_start"] = bool(kmeans_warm_start)
            if isinstance(mask_adjust, str):
                if mask_adjust not in ("auto", "auto_label", "off"):
                    raise InvalidArgumentError(f"mask_adjust must be 'auto', 'auto_label', 'off' or a probability, "
                                               f"got {mask_adjust!r}")
                opts["mask_adjust"] = mask_adjust
            else:
                opts["mask_adjust"] = _real(mask_adjust, "mask_adjust")
            if not isinstance(positive_extension, str):
                raise SamixTypeError("positive_extension must be a str")
            opts["positive_extension"] = positive_extension
            if cluster_features is not None:
                if not isinstance(cluster_features, str) or cluster_features not in _SSL["cluster_features"].choices:
                    raise InvalidArgumentError(f"cluster_features must be 'query' or 'key', got {cluster_features!r}")
                opts["cluster_features"] = cluster_features
            if cluster_pca_dim is not None:
                opts["cluster_pca_dim"] = _int(cluster_pca_dim, "cluster_pca_dim", _lo("cluster_pca_dim"))
            if detach_cluster_head_mixed is not None:
                if not isinstance(detach_cluster_head_mixed, (bool, np.bool_)):
                    raise SamixTypeError(f"detach_cluster_head_mixed must be a bool, got {type(detach_cluster_head_mixed).__name__}")
                opts["detach_cluster_head_mixed"] = bool(detach_cluster_head_mixed)
        elif isinstance(mix, str):
            raise InvalidArgumentError(f"mix must be None, 'mixup' or a samix.SAMix policy, got {mix!r}")
        else:
            raise SamixTypeError(f"mix must be None, 'mixup' or a samix.SAMix policy, got {type(mix).__name__}")
        in_channels = _int(in_channels, "in_channels", 1, 4096)
        seed = _seed(seed)
        text = "".join(f"{k}={_fmt(v)}\n" for k, v in opts.items())
        h = ctypes.c_uint64(0)
        check(lib.samix_ssl_create(c_string(model, "model"), in_channels, c_string(mix_name, "mix"), c_string(text, "options"), seed,
                                   ctypes.addressof(h)))
        super().__init__(h.value)
        self.model_name = model
        self.in_channels = in_channels
        self.mix = mix
        self.variant = variant if mix_name == "samix" else None
        self.seed = seed
        self.options = opts
        #: One dict per pre-training epoch over all fit calls: epoch, loss, lr, seconds, steps,
        #: knn_top1 (when monitored), kmeans_inertia and pseudo_labels_kept (SAMix-C) and the step
        #: metrics (loss terms, λ, …).
        self.history: list[dict] = []

    @property
    def method(self) -> str:
        """``"moco"``, ``"moco-mixup"``, ``"samix-i"`` or ``"samix-c"``."""
        if self.variant is not None:
            return "samix-i" if self.variant == "instance" else "samix-c"
        return "moco-mixup" if self.mix == "mixup" else "moco"

    def fit(self, x: Any, y: Any = None, epochs: int = 1, batch_size: int = _F["batch_size"], lr: float = _F["lr"],
            weight_decay: float = _F["weight_decay"], knn_every: int = _F["knn_every"], knn_k: int = _F["knn_k"],
            knn_temperature: float = _F["knn_temperature"],
            val: Optional[tuple[Any, Any]] = None, callbacks: Sequence[Callable[[dict], Optional[bool]]] = (),
            verbose: bool = True, checkpoint: Optional[PathLike] = None) -> list[dict]:
        """Pre-trains for ``epochs`` epochs (one full cosine learning-rate schedule per call; weights,
        queue and normalisation carry over to later calls).

        Args:
            x: uint8 images (N, C, H, W); the last partial batch of each epoch is dropped.
            y: labels (N,) for the kNN memory bank (needed with ``val``); never used for training.
            epochs, batch_size, lr, weight_decay: SGD (momentum 0.9) with a cosine schedule to 0.
            knn_every: kNN top-1 on ``val`` every this many epochs and after the last (0: never).
            knn_k, knn_temperature: the weighted kNN monitor.
            val: (x, y) queries of the kNN monitor.
            callbacks: called with each epoch's record after the engine has returned from that
                epoch (so a callback may use this model: ``knn_eval(moco, …)``, ``save_backbone``);
                returning False stops the call.
            verbose: print one line per epoch to stderr.
            checkpoint: a file rewritten (atomically) after every epoch with everything this call needs
                to continue — encoders, Mixer, cluster heads, queue, SGD state, counters. When it
                exists, the call resumes from it: rerunning the same call (same data, epochs, batch
                size, seed) after an interruption, even in a new process, ends bit-identical to an
                uninterrupted run. Records then carry ``fit_epoch`` (the epoch within this call).

        Ctrl-C (SIGINT, also a Jupyter interrupt) stops the engine after the running step and raises
        ``KeyboardInterrupt``. Only finished epochs are recorded in :attr:`history` (and written to
        ``checkpoint``); an unfinished epoch is not counted. Rerun the same call with the same
        ``checkpoint`` to continue (an interrupted call does not count as a call, so the rerun uses
        the same seed, in this object or a new one).

        Under ``mpirun -np N`` (N > 1, see :mod:`samix.distributed`) the call trains data-parallel:
        every rank passes the same data and settings, trains its shard of each global batch of
        ``batch_size`` (a multiple of N) with shuffle-BN across ranks and one queue of all-gathered
        keys, and only rank 0 prints and writes ``checkpoint``.

        Returns:
            :attr:`history`.
        """
        epochs = _int(epochs, "epochs", 1)
        batch_size = _int(batch_size, "batch_size", 2)
        if _distributed.is_distributed() and not _distributed.is_main():
            verbose = False
        knn_every = _int(knn_every, "knn_every", 0)
        knn_k = _int(knn_k, "knn_k", 1)
        lr, weight_decay = _real(lr, "lr"), _real(weight_decay, "weight_decay")
        knn_temperature = _real(knn_temperature, "knn_temperature")
        if val is not None:
            if not isinstance(val, (tuple, list)) or len(val) != 2:
                raise SamixTypeError("val must be a pair (x, y)")
            if y is None:
                raise InvalidArgumentError("the kNN monitor on val needs the training labels y (its memory bank)")
        ckpt = None if checkpoint is None else path_arg(checkpoint, "checkpoint")
        k = _num_classes(*(v for v in (y, None if val is None else val[1]) if v is not None))
        errors: list[BaseException] = []

        def on_epoch(_user: Any, text: bytes) -> int:
            try:
                text = text.decode()
                if text.startswith("type=step"):  # after every step: Ctrl-C stops after it
                    return 1 if guard.requested else 0
                rec = _parse_record(text)
                rec["fit_epoch"] = rec.get("epoch")
                rec["epoch"] = len(self.history) + 1
                self.history.append(rec)
                if verbose:
                    knn = f"  knn_top1 {rec['knn_top1']:.4f}" if "knn_top1" in rec else ""
                    print(f"{self.method} epoch {rec['epoch']}  loss {rec['loss']:.4f}{knn}  ({rec['seconds']:.1f}s)",
                          file=sys.stderr, flush=True)
                if guard.requested:  # Ctrl-C during this epoch: stop here, the epoch is recorded
                    return 1
                if callbacks and rec["fit_epoch"] < epochs:
                    # The user's callbacks run after the engine returns (they may use this model,
                    # whose lock the engine holds during the call): stop after this epoch, run
                    # them, and repeat the call, which continues the run in memory.
                    pending.append(rec)
                    return 1
                if callbacks:
                    pending.append(rec)
                return 0
            except BaseException as e:
                errors.append(e)
                return 1

        cb = RECORD_CALLBACK(on_epoch)
        pending: list[dict] = []
        with _Images(x, y, "x", k) as train, interrupt_guard() as guard:
            vset = _Images(val[0], val[1], "val x", k) if val is not None else None
            try:
                repeat_fit_call(lambda: lib.samix_ssl_fit(self.handle, train.handle,
                                                          0 if vset is None else vset.handle, epochs, batch_size, lr,
                                                          weight_decay, knn_every, knn_k, knn_temperature, ckpt, 1,
                                                          cb, None),
                                pending, errors, guard, callbacks, lambda: pending[-1]["fit_epoch"] >= epochs)
            finally:
                if vset is not None:
                    vset.close()
        return self.history

    def save_backbone(self, path: PathLike, metadata: Optional[dict] = None) -> None:
        """Saves the query backbone (what is evaluated) with ``metadata`` (str → str); load it with
        :func:`load_backbone`."""
        args = MetadataArgs(metadata or {})
        check(lib.samix_ssl_save_backbone(self.handle, path_arg(path), args.n, args.key_ptr, args.value_ptr))

    def save_mixer(self, path: PathLike) -> None:
        """SAMix-I/C: saves the Mixer with the momentum encoder that feeds it — a Mixer learned without
        labels. Reuse it frozen for supervised training with ``samix.SAMix.pretrained(path)`` (SAMix^P)
        or draw its masks with ``samix.viz``. Plain MoCo and MoCo + Mixup have no Mixer and raise
        :class:`samix.errors.InvalidStateError`."""
        check(lib.samix_ssl_save_mixer(self.handle, path_arg(path)))

    def compare_masks(self, x: Any, batches: int = 10, batch_size: int = 128, seed: int = 0) -> list[dict]:
        """Does the trained Mixer make better mixed samples than hand-crafted masks for its own
        objective? (SAMix-I/C.) For the same images, two views, pairs and λ per batch, four masks mix
        the views and the momentum encoder scores each mixed batch with the Mixer objective L_mb:
        ``"mixer"`` (the Mixer's masks), ``"mixer-shuffled"`` (the same masks on other pairs: same
        shapes, not aligned with the content), ``"mixup"`` (constant 1 − λ) and ``"cutmix"`` (a box of
        area ≈ 1 − λ). Nothing in the model changes.

        Args:
            x: uint8 images (N, C, H, W), normalised like the last :meth:`fit`'s data; SAMix-C needs
                the data of its last fit (it uses their pseudo-labels).
            batches, batch_size: how many random batches of how many images.
            seed: draws the batches, views, λ, pairs and boxes.

        Returns:
            One dict per mask kind: ``mask``, ``loss_mb`` and ``own_share`` (1 − mean partner mask;
            λ is exact), ``mask_std`` (mean per-image spatial std of the mask); SAMix-I adds
            ``loss_mb_local``, ``local_excess`` (local term minus its minimum H(λ)),
            ``loss_mb_global`` and ``dominant_correct`` (share of mixed images whose embedding is
            closer to the positive of the source with the larger weight).
        """
        batches = _int(batches, "batches", 1)
        batch_size = _int(batch_size, "batch_size", 2)
        seed = _seed(seed)
        rows: list[dict] = []
        errors: list[BaseException] = []

        def on_row(_user: Any, text: bytes) -> int:
            try:
                rows.append(_parse_record(text.decode()))
                return 0
            except BaseException as e:
                errors.append(e)
                return 1

        cb = RECORD_CALLBACK(on_row)
        with _Images(x, None, "x") as data, interruptible():
            status = lib.samix_ssl_compare_masks(self.handle, data.handle, batches, batch_size, seed, cb, None)
            if errors:
                raise errors[0]
            check(status)
        return rows

    def features(self, x: Any, l2: bool = False) -> np.ndarray:
        """Frozen-backbone features of uint8 images: see :func:`features`."""
        return features(self, x, l2=l2)

    def __repr__(self) -> str:
        mix = "None" if self.mix is None else repr(self.mix)
        o = self.options
        extra = f", variant={self.variant!r}" if self.variant else ""
        return (f"MoCo(model={self.model_name!r}, in_channels={self.in_channels}, queue_size={o['queue_size']}, "
                f"temperature={o['temperature']}, momentum={o['momentum']}, mix={mix}{extra}, seed={self.seed}, "
                f"epochs_done={len(self.history)})")


# -- frozen-backbone evaluation ---------------------------------------------------------------------


def _encoder(encoder: Any) -> int:
    if not isinstance(encoder, (MoCo, Model)):
        raise SamixTypeError(f"encoder must be a samix.ssl.MoCo or a samix Model, got {type(encoder).__name__}")
    return encoder.handle


def features(encoder: Encoder, x: Any, l2: bool = False) -> np.ndarray:
    """Global-average-pooled last-stage features (N, D) of uint8 images (N, C, H, W), computed in
    evaluation mode; ``l2=True`` returns unit-norm rows. A MoCo encoder normalises with its
    pre-training statistics; a Model with the standard statistics of ``x``. Ctrl-C stops at the
    next batch (``KeyboardInterrupt``)."""
    h = _encoder(encoder)
    with _Images(x, None, "x", 1) as ds:
        dim = ctypes.c_int64(0)
        check(lib.samix_backbone_features(h, ds.handle, 0, None, 0, ctypes.addressof(dim)))
        out = np.empty((ds.count, int(dim.value)), dtype=np.float32)
        with interruptible():
                check(lib.samix_backbone_features(h, ds.handle, 1 if l2 else 0, out.ctypes.data, out.size,
                                              ctypes.addressof(dim)))
    return out


def _moco_schema_doc() -> str:
    import inspect
    params = set(inspect.signature(MoCo.__init__).parameters) | {"queue_size"}
    return "\n".join("        " + o.describe("samix") for n, o in _SSL.options.items() if n in params)


MoCo.__doc__ = (MoCo.__doc__ or "") + ("\n    Options (engine schema: type, default, range, doc; the Mixer's come from the\n"
                                        "    SAMix policy):\n" + _moco_schema_doc() + "\n")


def knn_eval(encoder: Encoder, train_x: Any, train_y: Any, test_x: Any, test_y: Any, k: int = _F["knn_k"],
             temperature: float = _F["knn_temperature"]) -> float:
    """Weighted kNN top-1 in [0, 1] of a frozen backbone (InstDisc/MoCo monitor): cosine similarity of
    GAP features, the ``k`` nearest training samples vote with weight exp(s / temperature).

    ``encoder`` is a :class:`MoCo` (its query backbone) or a :class:`samix.models.Model` (its backbone);
    images are uint8 (N, C, H, W), labels int (N,). Ctrl-C stops at the next batch (``KeyboardInterrupt``).
    """
    h = _encoder(encoder)
    k = _int(k, "k", 1)
    temperature = _real(temperature, "temperature")
    nc = _num_classes(train_y, test_y)
    acc = ctypes.c_double(0)
    with _Images(train_x, train_y, "train_x", nc) as tr, _Images(test_x, test_y, "test_x", nc) as te, \
            interruptible():
        check(lib.samix_backbone_knn(h, tr.handle, te.handle, k, temperature, ctypes.addressof(acc)))
    return float(acc.value)


def linear_probe(encoder: Encoder, train_x: Any, train_y: Any, test_x: Any, test_y: Any, epochs: int = 100,
                 lr: float = 10.0, batch_size: int = 256, momentum: float = 0.9, weight_decay: float = 0.0,
                 scaling: str = "l2", seed: int = 0) -> dict:
    """Linear probe of a frozen backbone (docs/method.md §5.7): GAP features once, one linear layer trained
    with SGD (momentum, cosine schedule). ``scaling``: ``"l2"`` (unit-norm features; lr 10 suits
    them), ``"standardize"`` or ``"none"``. Ctrl-C stops at the next step (``KeyboardInterrupt``).

    Returns:
        ``{"train_accuracy", "test_accuracy"}`` in [0, 1].
    """
    h = _encoder(encoder)
    epochs = _int(epochs, "epochs", 1)
    batch_size = _int(batch_size, "batch_size", 1)
    if not isinstance(scaling, str):
        raise SamixTypeError(f"scaling must be a str, got {type(scaling).__name__}")
    lr, momentum, weight_decay = _real(lr, "lr"), _real(momentum, "momentum"), _real(weight_decay, "weight_decay")
    nc = _num_classes(train_y, test_y)
    tr_acc, te_acc = ctypes.c_double(0), ctypes.c_double(0)
    with _Images(train_x, train_y, "train_x", nc) as tr, _Images(test_x, test_y, "test_x", nc) as te, \
            interruptible():
        check(lib.samix_backbone_linear_probe(h, tr.handle, te.handle, epochs, batch_size, lr, momentum, weight_decay,
                                              c_string(scaling, "scaling"), _seed(seed), ctypes.addressof(tr_acc),
                                              ctypes.addressof(te_acc)))
    return {"train_accuracy": float(tr_acc.value), "test_accuracy": float(te_acc.value)}


def backbone_info(path: PathLike) -> dict[str, str]:
    """The metadata of a backbone file written by :meth:`MoCo.save_backbone` (architecture,
    in_channels, method, and the caller's metadata)."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:8] != b"SAMIXBB1":
                raise SamixIOError(f"{p} is not a samix backbone file")
            (n,) = struct.unpack("<I", head[8:12])
            text = f.read(n)
    except OSError as e:
        if isinstance(e, SamixIOError):
            raise
        raise SamixIOError(f"cannot read {p}: {e}") from None
    if len(text) < n:
        raise SamixIOError(f"{p}: truncated backbone file")
    out = {}
    for line in text.decode("utf-8", "replace").split("\n"):
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def load_backbone(path: PathLike, num_classes: int = 10, seed: int = 0) -> Model:
    """A new :class:`samix.models.Model` of the saved architecture whose backbone holds the saved
    weights (the linear head is freshly initialised with ``seed``): evaluate it with
    :func:`knn_eval` / :func:`linear_probe` or fine-tune it with :class:`samix.Trainer`."""
    info = backbone_info(path)
    try:
        arch, cin = info["architecture"], int(info["in_channels"])
    except (KeyError, ValueError):
        raise SamixIOError(f"{os.fspath(path)}: backbone metadata lacks architecture / in_channels") from None
    model = Model(arch, num_classes=num_classes, in_channels=cin, seed=seed)
    try:
        check(lib.samix_model_load_backbone(model.handle, path_arg(path)))
    except BaseException:
        model.close()
        raise
    return model
