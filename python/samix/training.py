"""``samix.Trainer``: the engine's training loop (objective with a mixing policy, optimizer, schedule)
driven from Python, with per-epoch history, callbacks and a progress bar (tqdm when installed)."""

from __future__ import annotations

import ctypes
import functools
import json
import sys
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ._cstr import c_string
from ._handle import Handle
from ._lib import RECORD_CALLBACK, check, lib
from .checkpoint import MetadataArgs, PathLike, path_arg, read_metadata
from .datasets import _DatasetHandle
from . import learned as _learned
from . import distributed as _distributed
from ._arrays import as_f32, as_labels, shape_array
from ._fit_calls import repeat_fit_call
from ._interrupt import interrupt_guard, interruptible
from .errors import InvalidArgumentError, SamixTypeError, ShapeError
from .mixing import MixResult, alpha_arg
from .models import Model
from .optim import SGD, AdamW, Schedule
from ._schema import option_schema

__all__ = ["Trainer", "MIX_METHODS"]

#: Training objectives accepted by ``Trainer(mix=...)``: the engine's list (its option schema, group
#: "trainer"), so a method added to the engine appears here.
MIX_METHODS = option_schema("trainer")["mix"].choices
_DEFAULT_MIX = option_schema("trainer")["mix"].default()

Callback = Callable[[dict], Optional[bool]]


def _progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm  # optional dependency
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False)


class _Data:
    """Training or evaluation data for one call: uint8 images become a temporary engine dataset
    (copied; normalised by the engine), float images are passed as a float32 NCHW array read in
    place (zero-copy when already C-contiguous float32)."""

    def __init__(self, x: Any, y: Any, num_classes: int, name: str) -> None:
        a = x if isinstance(x, np.ndarray) else np.asarray(x)
        self._ds: Optional[_DatasetHandle] = None
        if a.dtype == np.uint8:
            self._ds = _DatasetHandle(a, y, num_classes, name)
            self.count = int(a.shape[0])
            return
        if a.dtype.kind != "f":
            raise SamixTypeError(f"{name} must be uint8 images (0-255) or float images (already normalised), "
                                 f"got dtype {a.dtype}")
        self.x = as_f32(a, name, ndim=4)
        self.y = as_labels(y, f"{name} labels")
        if self.y.shape[0] != self.x.shape[0]:
            raise ShapeError(f"{self.x.shape[0]} images but {self.y.shape[0]} labels")
        self.shape = shape_array(self.x.shape)
        self.count = int(self.x.shape[0])

    def fit_args(self) -> tuple:
        """This data set as the (dataset, x, shape, labels) arguments of ``samix_trainer_fit``."""
        if self._ds is not None:
            return (self._ds.handle, None, None, None)
        return (0, self.x.ctypes.data, self.shape.ctypes.data, self.y.ctypes.data)

    def evaluate(self, trainer: int, batch_size: int, heads: Sequence[str] = ("online",)) -> dict:
        with interruptible():   # Ctrl-C stops the engine at its next batch
            if len(heads) > 1:
                return self._evaluate_heads(trainer, batch_size, heads)
            return self._evaluate_online(trainer, batch_size)

    def _evaluate_online(self, trainer: int, batch_size: int) -> dict:
        loss, acc = ctypes.c_double(0), ctypes.c_double(0)
        if self._ds is not None:
            check(lib.samix_trainer_evaluate(trainer, self._ds.handle, batch_size, ctypes.addressof(loss),
                                             ctypes.addressof(acc)))
        else:
            check(lib.samix_trainer_evaluate_array(trainer, self.x.ctypes.data, self.shape.ctypes.data,
                                                   self.y.ctypes.data, batch_size, ctypes.addressof(loss),
                                                   ctypes.addressof(acc)))
        return {"loss": loss.value, "accuracy": acc.value}

    def _evaluate_heads(self, trainer: int, batch_size: int, heads: Sequence[str]) -> dict:
        """Every head in one call: the online head as loss/accuracy, the others as <head>_loss/_accuracy."""
        n = len(heads)
        losses, accs = np.zeros(n), np.zeros(n)
        if self._ds is not None:
            check(lib.samix_trainer_evaluate_heads(trainer, self._ds.handle, batch_size, losses.ctypes.data,
                                                   accs.ctypes.data, n))
        else:
            check(lib.samix_trainer_evaluate_heads_array(trainer, self.x.ctypes.data, self.shape.ctypes.data,
                                                         self.y.ctypes.data, batch_size, losses.ctypes.data,
                                                         accs.ctypes.data, n))
        out = {"loss": float(losses[0]), "accuracy": float(accs[0])}
        for name, l, a in zip(heads[1:], losses[1:], accs[1:]):
            out[f"{name}_loss"], out[f"{name}_accuracy"] = float(l), float(a)
        return out

    def close(self) -> None:
        if self._ds is not None:
            ds, self._ds = self._ds, None
            ds.__exit__()

    def __enter__(self) -> "_Data":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checkpoint_config(path: PathLike) -> dict:
    """The engine's typed JSON of a trainer checkpoint: architecture, num_classes, in_channels, seed
    and the trainer's creation arguments (``config``: mix, alpha (None = default), optimizer, ...)."""
    p = path_arg(path)
    needed = ctypes.c_int64(0)
    check(lib.samix_trainer_checkpoint_config(p, None, 0, ctypes.addressof(needed)))
    buf = ctypes.create_string_buffer(int(needed.value))
    check(lib.samix_trainer_checkpoint_config(p, ctypes.addressof(buf), len(buf), ctypes.addressof(needed)))
    return json.loads(buf.value.decode("utf-8"))


class Trainer(Handle):
    """Trains a :class:`~samix.models.Model` in the engine.

    Args:
        model: the model to train (updated in place).
        optimizer: :class:`samix.optim.SGD` (default ``SGD(lr=0.1, momentum=0.9, weight_decay=5e-4)``) or
            :class:`samix.optim.AdamW`.
        schedule: :class:`samix.optim.Schedule` or ``"cosine"`` / ``"constant"``.
        mix: training objective, one of :data:`MIX_METHODS` (``"vanilla"``: plain cross-entropy), or a
            learned policy :class:`samix.AutoMix` / :class:`samix.SAMix` / ``samix.SAMix.pretrained(path)``
            (its options, including ``alpha``, live in the policy; :meth:`evaluate` and the history
            then also report the momentum network: ``momentum_accuracy``, ``val_momentum_accuracy``).
        alpha: Beta(alpha, alpha) of the mixing policy; None = its OpenMixup CIFAR default.
        label_smoothing: epsilon of the targets.
        seed: seed of shuffling, augmentation and mixing (training is deterministic given it).
        sync_bn: under ``mpirun`` (see :mod:`samix.distributed`), BatchNorm statistics over the global
            batch of all ranks; default False = each rank's shard, as PyTorch DDP.
        bucket_cap_mb: under ``mpirun``, the largest gradient bucket in MiB; a bucket's all-reduce
            starts while backward still runs (DDP's ``bucket_cap_mb``); 0 = one all-reduce after
            backward; None = the engine's default, 25 as DDP.

    Under ``mpirun -np N`` (N > 1) the trainer is data-parallel from its creation: every rank passes
    the same data and seed, trains on its shard of every global batch of ``batch_size`` images, and
    gradients are averaged over ranks; only rank 0 shows progress and writes checkpoints.

    Images for :meth:`fit` and :meth:`evaluate` are uint8 (N, C, H, W) arrays as returned by
    :mod:`samix.datasets`, normalised with the statistics of the first training data (the usual
    CIFAR/Fashion-MNIST values, else computed), or float (N, C, H, W) arrays that are already
    normalised (C-contiguous float32 is used in place, zero-copy, for the duration of the call).
    """

    _free_fn = lib.samix_trainer_free

    def __init__(self, model: Model, optimizer: Union[SGD, AdamW, None] = None,
                 schedule: Union[Schedule, str, None] = None, mix: str = _DEFAULT_MIX, alpha: Optional[float] = None,
                 label_smoothing: float = 0.0, seed: int = 0, sync_bn: bool = False,
                 bucket_cap_mb: Optional[float] = None) -> None:
        if not isinstance(model, Model):
            raise SamixTypeError(f"model must be a samix Model, got {type(model).__name__}")
        # None: the engine's default (samix_trainer_distribute reads a negative value as "default")
        cap = -1.0 if bucket_cap_mb is None else _learned._real(bucket_cap_mb, "bucket_cap_mb")
        if cap < 0 and bucket_cap_mb is not None:
            raise InvalidArgumentError(f"bucket_cap_mb must be a number of MiB >= 0, or None, got {bucket_cap_mb!r}")
        optimizer = SGD() if optimizer is None else optimizer
        if not isinstance(optimizer, (SGD, AdamW)):
            raise SamixTypeError(f"optimizer must be samix.optim.SGD or AdamW, got {type(optimizer).__name__}")
        if schedule is None or isinstance(schedule, str):
            schedule = Schedule(schedule or "cosine")
        if not isinstance(schedule, Schedule):
            raise SamixTypeError(f"schedule must be a samix.optim.Schedule or str, got {type(schedule).__name__}")
        learned = isinstance(mix, _learned.LearnedMix)
        if not isinstance(mix, str) and not learned:
            raise SamixTypeError(f"mix must be a str or a learned policy (samix.AutoMix, samix.SAMix), "
                                 f"got {type(mix).__name__}")
        if learned and alpha is not None:
            raise InvalidArgumentError(f"alpha is an option of the learned policy: use {type(mix).__name__}(alpha=...)")
        if learned and float(label_smoothing) != 0.0:
            raise InvalidArgumentError("label_smoothing is not supported with learned mixing policies")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
            raise InvalidArgumentError(f"seed must be an int in [0, 2**64), got {seed!r}")
        a = alpha_arg(alpha)
        h = ctypes.c_uint64(0)
        if learned:
            h.value = mix._create_trainer(model.handle, optimizer, schedule, int(seed))
        else:
            check(lib.samix_trainer_create(model.handle, c_string(mix, "mix"), a, float(label_smoothing),
                                           c_string(optimizer.name, "optimizer"), float(optimizer.lr), float(optimizer.momentum),
                                           float(optimizer.weight_decay), 1 if optimizer.nesterov else 0,
                                           c_string(schedule.spec(), "schedule"), schedule.warmup_steps, int(seed),
                                           ctypes.addressof(h)))
        super().__init__(h.value)
        active = ctypes.c_int32(0)
        check(lib.samix_trainer_distribute(self.handle, 1 if sync_bn else 0, cap, ctypes.addressof(active)))
        #: Whether this trainer is data-parallel (launched by mpirun with more than one rank).
        self.distributed = bool(active.value)
        self.sync_bn = bool(sync_bn)
        #: Networks reported by :meth:`evaluate`: "online", then e.g. "momentum" (AutoMix/SAMix).
        self.heads: list[str] = _learned.trainer_heads(self.handle)
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.mix = mix
        self.alpha = alpha
        self.label_smoothing = float(label_smoothing)
        self.seed = int(seed)
        #: One dict per finished epoch: epoch, loss, lr, seconds, the objective's mean step metrics
        #: (AutoMix/SAMix: loss_cls, loss_one, loss_gen, loss_mask, lambda_mb, mask_mean_mb,
        #: mask_gap_mb, momentum, ...), val_loss / val_accuracy and, for AutoMix/SAMix,
        #: val_momentum_loss / val_momentum_accuracy.
        self.history: list[dict] = []

    @property
    def epochs_done(self) -> int:
        out = np.zeros(2, dtype=np.int64)
        check(lib.samix_trainer_progress(self.handle, out.ctypes.data))
        return int(out[0])

    @property
    def steps_done(self) -> int:
        out = np.zeros(2, dtype=np.int64)
        check(lib.samix_trainer_progress(self.handle, out.ctypes.data))
        return int(out[1])

    def fit(self, train_x: Any, train_y: Any, epochs: int = 1, batch_size: int = 128,
            val: Optional[tuple[Any, Any]] = None, augment: bool = True, callbacks: Sequence[Callback] = (),
            progress: bool = True, verbose: bool = True) -> list[dict]:
        """Trains until ``epochs`` epochs are done (continuing from earlier ``fit`` calls).

        Args:
            train_x: images (N, C, H, W): uint8 (0-255, e.g. from :mod:`samix.datasets`; normalised by
                the engine with the statistics of the first training data), or float (already
                normalised; a C-contiguous float32 array is read in place during the call, other
                float arrays are converted once).
            train_y: int labels (N,) in [0, num_classes).
            epochs: total number of epochs (also sizes the learning-rate schedule).
            batch_size: mini-batch size.
            val: optional (x, y) evaluated after every epoch (uint8 or float images, like ``train_x``).
            augment: random crop (zero padding) + horizontal flip.
            callbacks: functions called with each epoch's record; returning False stops training.
            progress: show a tqdm bar per epoch when tqdm is installed.
            verbose: print one line per epoch (to stderr) when no tqdm bar is shown.

        Returns:
            :attr:`history` (one dict per epoch).

        Ctrl-C (SIGINT, also a Jupyter interrupt) stops the engine after the step it is running and
        raises ``KeyboardInterrupt``. The trainer stays consistent: an epoch counts in
        :attr:`epochs_done` only when all its steps ran, :attr:`history` holds every finished
        epoch (one finished by the interrupted step is recorded without its ``val_*`` evaluation),
        and the next ``fit`` continues the interrupted epoch at its next batch, so an
        interrupted-then-continued run ends with the same weights as an uninterrupted one.
        (A checkpoint saved after an interruption holds the finished epochs only: loading it
        restarts the interrupted epoch from its first batch.)
        """
        epochs = self._int(epochs, "epochs", 1)
        batch_size = self._int(batch_size, "batch_size", 1)
        k = self.model.num_classes
        if val is not None and (not isinstance(val, (tuple, list)) or len(val) != 2):
            raise SamixTypeError("val must be a pair (x, y)")
        if self.epochs_done >= epochs:
            return self.history
        if self.distributed and not _distributed.is_main():
            progress = verbose = False
        val_ds = _Data(val[0], val[1], k, "val x") if val is not None else None
        try:
            with _Data(train_x, train_y, k, "train_x") as train, interrupt_guard() as guard:
                # The loop runs in the engine (samix_trainer_fit); Python turns its JSON records into
                # progress, history and callbacks. A non-zero return stops it after the running step.
                errors: list[BaseException] = []
                bar: list[Any] = [None, None]   # [epoch of the bar, bar]

                def on_record(_user: Any, text: bytes) -> int:
                    try:
                        rec = json.loads(text.decode())
                        if rec["type"] == "step":
                            if bar[0] != rec["epoch"]:
                                self._close_bar(bar)
                                bar[:] = [rec["epoch"], _progress_bar(rec["steps"], f"epoch {rec['epoch']}/{epochs}",
                                                                      progress)]
                            if bar[1] is not None:
                                bar[1].update(1)
                                bar[1].set_postfix(loss=f"{rec['loss']:.3f}", refresh=False)
                            return 1 if guard.requested else 0  # Ctrl-C: stop after this step
                        shown = bar[1] is not None
                        self._close_bar(bar)
                        record = self._history_record(rec)
                        self.history.append(record)
                        if verbose and not shown:
                            self._print_record(record, epochs)
                        if callbacks:
                            # The user's callbacks run after the engine returns (they may use this
                            # trainer, whose lock the engine holds during the call): stop after
                            # this epoch, run them, and continue with the next call.
                            pending.append(record)
                            return 1
                        return 1 if guard.requested else 0
                    except BaseException as e:  # KeyboardInterrupt etc.: stop the run cleanly
                        errors.append(e)
                        return 1

                cb = RECORD_CALLBACK(on_record)
                vargs = val_ds.fit_args() if val_ds is not None else (0, None, None, None)
                pending: list[dict] = []

                def call() -> int:
                    try:
                        return lib.samix_trainer_fit(self.handle, *train.fit_args(), *vargs, epochs, batch_size,
                                                     1 if augment else 0, 500, 1, cb, None)
                    finally:
                        self._close_bar(bar)

                repeat_fit_call(call, pending, errors, guard, callbacks, lambda: self.epochs_done >= epochs)
        finally:
            if val_ds is not None:
                val_ds.close()
        return self.history

    @staticmethod
    def _close_bar(bar: list) -> None:
        if bar[1] is not None:
            b, bar[1] = bar[1], None
            b.close()

    def _history_record(self, rec: dict) -> dict:
        """The history dict of an engine epoch record: epoch, loss, lr, seconds, the objective's step
        metrics, then val_loss / val_accuracy and val_<head>_loss / _accuracy of the other heads."""
        record = {"epoch": rec["epoch"], "loss": rec["loss"], "lr": rec["lr"], "seconds": rec["seconds"]}
        for k, v in rec["metrics"].items():  # e.g. loss_gen, mask_gap_mb
            record.setdefault(k, v)
        ev = rec["evaluations"].get("val")
        if ev:
            for head in self.heads:
                if head in ev:
                    prefix = "val_" if head == "online" else f"val_{head}_"
                    record[prefix + "loss"], record[prefix + "accuracy"] = ev[head]["loss"], ev[head]["accuracy"]
        return record

    @staticmethod
    def _print_record(record: dict, epochs: int) -> None:
        extra = (f"  val_loss {record['val_loss']:.4f}  val_acc {record['val_accuracy']:.4f}"
                 if "val_loss" in record else "")
        if "val_momentum_accuracy" in record:
            extra += f"  val_acc_momentum {record['val_momentum_accuracy']:.4f}"
        print(f"epoch {record['epoch']}/{epochs}  loss {record['loss']:.4f}  lr {record['lr']:.4g}"
              f"{extra}  ({record['seconds']:.1f}s)", file=sys.stderr, flush=True)

    def train_step(self, x: Any, y: Any, total_steps: Optional[int] = None) -> float:
        """One optimisation step on a float batch, for custom training loops.

        Args:
            x: float32 images (N, C, H, W), already normalised/augmented as you want them (not modified).
            y: int labels (N,).
            total_steps: length of the run for the learning-rate schedule (the step index is
                :attr:`steps_done`); None keeps the optimizer's current learning rate.

        Returns:
            The step's loss.
        """
        xa = as_f32(x, "x", ndim=4)
        ya = as_labels(y, "y")
        if ya.shape[0] != xa.shape[0]:
            raise ShapeError(f"y has {ya.shape[0]} labels for a batch of {xa.shape[0]} images")
        total = 0 if total_steps is None else self._int(total_steps, "total_steps", 1)
        loss = ctypes.c_double(0)
        shape = shape_array(xa.shape)
        check(lib.samix_trainer_train_step(self.handle, xa.ctypes.data, shape.ctypes.data, ya.ctypes.data, total,
                                           ctypes.addressof(loss)))
        return float(loss.value)

    def evaluate(self, x: Any, y: Any, batch_size: int = 500) -> dict:
        """``{"loss": mean cross-entropy, "accuracy": top-1 in [0, 1], "count": N}`` in evaluation mode.

        With AutoMix/SAMix also ``momentum_loss`` / ``momentum_accuracy`` (the momentum network
        OpenMixup reports), and every other head in :attr:`heads` as ``<head>_loss`` / ``<head>_accuracy``.

        ``x``: uint8 images (normalised like the training data) or already-normalised float images
        (C-contiguous float32 is read in place), shape (N, C, H, W); ``y``: int labels (N,).
        Ctrl-C stops at the next batch and raises ``KeyboardInterrupt`` (nothing changes).
        """
        batch_size = self._int(batch_size, "batch_size", 1)
        with _Data(x, y, self.model.num_classes, "x") as ds:
            r = ds.evaluate(self.handle, batch_size, self.heads)
            r["count"] = ds.count
        return r

    def _evaluate_handle(self, h: int, batch_size: int) -> dict:
        loss, acc = ctypes.c_double(0), ctypes.c_double(0)
        with interruptible():
            check(lib.samix_trainer_evaluate(self.handle, h, batch_size, ctypes.addressof(loss), ctypes.addressof(acc)))
        return {"loss": loss.value, "accuracy": acc.value}

    # -- learned mixing ---------------------------------------------------------------------------

    def mixer_masks(self, x: Any, lam: float = 0.5, partner: Any = None, seed: int = 0) -> np.ndarray:
        """The masks the trainer's Mixer (AutoMix/SAMix/SAMix^P) makes now for a batch, for plotting.

        Args:
            x: float images (N, C, H, W), N ≥ 2, normalised like the training data (used as given).
            lam: mixing ratio λ in [0, 1], the weight of each original image.
            partner: permutation of range(N): image i is mixed with x[partner[i]]; None draws one from
                ``seed``.
            seed: seed of the permutation and of the Mixer's own random choices.

        Returns:
            float32 (N, 1, H, W) partner masks M in [0, 1]: the mixed image is
            ``x * (1 - M) + x[partner] * M``. Computing them changes no weight and no BN statistic.
        """
        return _learned.mixer_masks(self.handle, self.model.in_channels, x, lam, partner, seed)

    def mixer_mix(self, x: Any, lam: float = 0.5, partner: Any = None, seed: int = 0) -> "MixResult":
        """The batch mixed with the Mixer's current masks, as a :class:`samix.MixResult` for
        ``samix.viz.show_mixed(x, trainer.mixer_mix(x), mean=..., std=...)``.

        ``partner`` None draws a permutation from ``seed`` (NumPy). ``lam`` of the result is the
        realised weight of each original (1 − mask mean), ``label_lam`` the λ the labels would get.
        """
        return _learned.mix_result(self.mixer_masks, x, lam, partner, seed)

    def save_mixer(self, path: PathLike) -> None:
        """Saves the trained Mixer with the encoder that feeds it, for SAMix^P
        (``samix.Trainer(new_model, mix=samix.SAMix.pretrained(path))``)."""
        check(lib.samix_trainer_save_mixer(self.handle, path_arg(path)))

    # -- checkpoints ------------------------------------------------------------------------------

    def save_checkpoint(self, path: PathLike, metadata: Optional[dict] = None) -> None:
        """Saves everything needed to resume training exactly, as a safetensors file (atomic write).

        Holds the model, the optimizer state (momentum buffers / Adam moments), the mixing
        objective's modules (e.g. the AutoMix/SAMix Mixer and momentum networks), epochs and steps
        done, the learning rate, the input normalisation, this trainer's arguments, :attr:`history`
        and ``metadata`` (str → str). Training restarted from it with :meth:`load_checkpoint` and the
        same data and ``epochs`` gives bit-identical weights to an uninterrupted run (each step's
        randomness derives from the seed and the step index, each epoch's order from seed and epoch).
        """
        meta = dict(metadata or {})
        meta["python.history"] = json.dumps(self.history)
        args = MetadataArgs(meta)
        check(lib.samix_trainer_save(self.handle, path_arg(path), args.n, args.key_ptr, args.value_ptr))

    def _load_checkpoint_into(self, path: PathLike, allow_changed_settings: bool = False) -> "Trainer":
        check(lib.samix_trainer_load(self.handle, path_arg(path), 1 if allow_changed_settings else 0))
        history = read_metadata(path).get("python.history")
        try:
            loaded = json.loads(history) if history is not None else []
            self.history = [dict(r) for r in loaded] if isinstance(loaded, list) else []
        except (ValueError, TypeError):
            self.history = []
        return self

    @classmethod
    def _trainer_from_checkpoint(cls, path: PathLike, model: Optional[Model] = None) -> "Trainer":
        info = _checkpoint_config(path)   # typed JSON made by the engine from the file's metadata
        cfg = info["config"]
        if cfg["optimizer"] == "adamw":
            opt: Union[SGD, AdamW] = AdamW(lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        else:
            opt = SGD(lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"],
                      nesterov=cfg["nesterov"])
        sched = Schedule.from_spec(cfg["schedule"], warmup_steps=cfg["warmup_steps"])
        mix: Any = cfg["mix"]
        if cfg["learned_method"] is not None:
            mix = _learned.from_options(cfg["learned_method"], cfg["learned_options"] or "")
        kwargs = dict(optimizer=opt, schedule=sched, mix=mix, alpha=cfg["alpha"],
                      label_smoothing=cfg["label_smoothing"], seed=info["seed"])
        arch, k, c = info["architecture"], info["num_classes"], info["in_channels"]
        own_model = model is None
        if model is None:
            model = Model(arch, num_classes=k, in_channels=c)
        try:
            trainer = cls(model, **kwargs)
            try:
                return trainer._load_checkpoint_into(path)
            except BaseException:
                trainer.close()
                raise
        except BaseException:
            if own_model:
                model.close()
            raise

    @staticmethod
    def _int(v: Any, name: str, lo: int) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise SamixTypeError(f"{name} must be an int, got {type(v).__name__}")
        if not lo <= int(v) < 2**40:
            raise InvalidArgumentError(f"{name} must be ≥ {lo}, got {v}")
        return int(v)

    def __repr__(self) -> str:
        return (f"Trainer(model={self.model.architecture!r}, mix={self.mix!r}, optimizer={self.optimizer}, "
                f"schedule={self.schedule.kind!r}, epochs_done={len(self.history)}"
                + (f", ranks={_distributed.size()}, sync_bn={self.sync_bn}" if self.distributed else "") + ")")


class _ClassOrInstanceMethod:
    """``Trainer.load_checkpoint(path, model=None)`` builds a new trainer (and model) from a
    checkpoint; ``trainer.load_checkpoint(path)`` restores a checkpoint into an existing trainer."""

    def __get__(self, obj: Optional[Trainer], objtype: Any = None) -> Callable[..., Trainer]:
        if obj is None:
            @functools.wraps(Trainer._trainer_from_checkpoint)
            def from_file(path: PathLike, model: Optional[Model] = None) -> Trainer:
                """A new :class:`Trainer` restored from a checkpoint written by :meth:`save_checkpoint`.

                The trainer's arguments (mix, alpha, optimizer, schedule, seed) come from the file;
                ``model`` (default: a new model of the saved architecture) receives the weights.
                """
                return (objtype or Trainer)._trainer_from_checkpoint(path, model)
            return from_file

        def into(path: PathLike, allow_changed_settings: bool = False) -> Trainer:
            """Restores a checkpoint into this trainer (same architecture, classes, channels, mix,
            optimizer type and seed); returns self. On error nothing is changed.

            The checkpoint must also come from the same run: its stored settings (mix options,
            optimizer hyper-parameters, schedule) must equal this trainer's, and the next
            :meth:`fit` must use the same ``epochs``, data size and ``batch_size`` — otherwise an
            :class:`~samix.errors.InvalidArgumentError` names the first differing setting.
            ``allow_changed_settings=True`` continues anyway (the result is then not the run the
            checkpoint came from)."""
            return obj._load_checkpoint_into(path, allow_changed_settings)
        return into


Trainer.load_checkpoint = _ClassOrInstanceMethod()  # type: ignore[attr-defined]
Trainer.from_checkpoint = classmethod(  # type: ignore[attr-defined]
    lambda cls, path, model=None: cls._trainer_from_checkpoint(path, model))
