"""Image classifiers of the engine's model zoo, used from NumPy.

Every model is a backbone + global-average-pool + linear head, taking NCHW float32 batches::

    model = samix.models.resnet20(num_classes=10, in_channels=1)
    logits = model(x)                 # (N, 10), current mode (training mode by default)
    logits = model.predict(x)         # evaluation mode, in batches
    sd = model.state_dict()           # {name: np.ndarray} copies (parameters, then BN buffers)
    model.load_state_dict(sd)
    model.save("model.safetensors")   # safetensors file (atomic write)
    model = samix.models.load("model.safetensors")   # a new model from the file's metadata
    model.load("model.safetensors")   # weights into an existing model of the same architecture

Inputs: C-contiguous float32 arrays are used in place; others are converted once. Inputs must be
finite (NaN/Inf raise :class:`~samix.errors.NumericalError`).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Iterator, Mapping

import numpy as np

from ._cstr import c_string
from ._arrays import as_f32, as_labels, check_out, shape_array
from ._handle import Handle
from ._lib import check, lib
from .checkpoint import MetadataArgs, PathLike, path_arg, read_metadata
from .errors import InvalidArgumentError, SamixTypeError, ShapeError

__all__ = ["Model", "create", "available", "load", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
           "resnet18", "resnet34", "preactresnet18", "wrn28_2", "wrn28_8", "wrn28_10"]

_NAMES = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet18", "resnet34",
          "preactresnet18", "wrn28_2", "wrn28_8", "wrn28_10"]


def available() -> list[str]:
    """Names accepted by :func:`create` (Wide-ResNets accept any ``wrn28_k``)."""
    return list(_NAMES)


def _int_arg(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise SamixTypeError(f"{name} must be an int, got {type(v).__name__}")
    v = int(v)
    if not -(2**63) <= v < 2**63:
        raise InvalidArgumentError(f"{name} is out of range: {v}")
    return v


def _seed_arg(seed: Any) -> int:
    seed = _int_arg(seed, "seed") if not (isinstance(seed, (int, np.integer)) and int(seed) >= 2**63) else int(seed)
    if not 0 <= seed < 2**64:
        raise InvalidArgumentError(f"seed must be in [0, 2**64), got {seed}")
    return seed


class Model(Handle):
    """An image classifier running in the Swift engine.

    Args:
        architecture: a name from :func:`available` (e.g. ``"resnet20"``).
        num_classes: number of output logits.
        in_channels: channels of the input images (3 for CIFAR, 1 for Fashion-MNIST).
        seed: seed of the weight initialisation.
    """

    _free_fn = lib.samix_model_free

    def __init__(self, architecture: str, num_classes: int = 10, in_channels: int = 3, seed: int = 0) -> None:
        if not isinstance(architecture, str):
            raise SamixTypeError(f"architecture must be a str, got {type(architecture).__name__}")
        num_classes = _int_arg(num_classes, "num_classes")
        in_channels = _int_arg(in_channels, "in_channels")
        handle = ctypes.c_uint64(0)
        check(lib.samix_model_create(c_string(architecture, "architecture"), num_classes, in_channels, _seed_arg(seed),
                                     ctypes.addressof(handle)))
        super().__init__(handle.value)
        info = np.zeros(4, dtype=np.int64)
        needed = ctypes.c_int64(0)
        buf = ctypes.create_string_buffer(128)
        check(lib.samix_model_info(self.handle, info.ctypes.data, ctypes.addressof(buf), len(buf),
                                   ctypes.addressof(needed)))
        self.architecture: str = buf.value.decode()
        self.num_classes: int = int(info[0])
        self.in_channels: int = int(info[1])
        self.num_parameters: int = int(info[2])
        self._num_state: int = int(info[3])

    # -- mode -----------------------------------------------------------------------------------

    @property
    def training(self) -> bool:
        """True in training mode (batch statistics), False in evaluation mode."""
        out = ctypes.c_int32(0)
        check(lib.samix_model_is_training(self.handle, ctypes.addressof(out)))
        return bool(out.value)

    def train(self, mode: bool = True) -> "Model":
        """Sets training mode (``mode=True``) or evaluation mode; returns self."""
        check(lib.samix_model_set_training(self.handle, 1 if mode else 0))
        return self

    def eval(self) -> "Model":
        """Sets evaluation mode; returns self."""
        return self.train(False)

    # -- forward ------------------------------------------------------------------------------

    def __call__(self, x: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Logits of a batch in the current mode (no gradients).

        Args:
            x: images, shape (N, in_channels, H, W).
            out: optional float32 array of shape (N, num_classes) written in place.

        Returns:
            Logits of shape (N, num_classes) (``out`` itself when given).
        """
        return self._forward(x, out, -1)

    def _forward(self, x: Any, out: np.ndarray | None, mode: int) -> np.ndarray:
        """Forward pass in ``mode`` (-1 current, 0 evaluation, 1 training) for this call only."""
        xa = as_f32(x, "x", ndim=4)
        n = xa.shape[0]
        if out is None:
            out = np.empty((n, self.num_classes), dtype=np.float32)
        else:
            check_out(out, (n, self.num_classes))
        shape = shape_array(xa.shape)
        check(lib.samix_model_forward_mode(self.handle, xa.ctypes.data, shape.ctypes.data, out.ctypes.data, out.size,
                                           mode))
        return out

    forward = __call__

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Logits of ``x`` (N, C, H, W) in evaluation mode, computed in batches of ``batch_size``.

        The model's mode is not changed (evaluation mode is an argument of each engine call, so other
        threads using the model meanwhile are unaffected). Returns an (N, num_classes) float32 array.
        """
        batch_size = _int_arg(batch_size, "batch_size")
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be ≥ 1, got {batch_size}")
        xa = as_f32(x, "x", ndim=4)
        if xa.shape[0] == 0:
            raise ShapeError("x is an empty batch (N = 0)")
        out = np.empty((xa.shape[0], self.num_classes), dtype=np.float32)
        for s in range(0, xa.shape[0], batch_size):
            # Evaluation mode for this call only, inside the engine: the model's own mode is never
            # toggled, so predict is safe next to other threads using the same model.
            self._forward(xa[s:s + batch_size], out[s:s + batch_size], 0)
        return out

    # -- state ---------------------------------------------------------------------------------

    def _entry(self, i: int) -> tuple[str, tuple[int, ...], bool]:
        needed = ctypes.c_int64(0)
        shape = np.zeros(8, dtype=np.int64)
        rank = ctypes.c_int64(0)
        is_param = ctypes.c_int32(0)
        check(lib.samix_model_state_entry(self.handle, i, None, 0, ctypes.addressof(needed), None, None, None))
        buf = ctypes.create_string_buffer(int(needed.value))
        check(lib.samix_model_state_entry(self.handle, i, ctypes.addressof(buf), len(buf), ctypes.addressof(needed),
                                          shape.ctypes.data, ctypes.addressof(rank), ctypes.addressof(is_param)))
        return buf.value.decode(), tuple(int(d) for d in shape[:rank.value]), bool(is_param.value)

    def _items(self, params_only: bool) -> Iterator[tuple[str, np.ndarray]]:
        for i in range(self._num_state):
            name, shape, is_param = self._entry(i)
            if params_only and not is_param:
                continue
            a = np.empty(shape, dtype=np.float32)
            check(lib.samix_model_state_get(self.handle, i, a.ctypes.data, a.size))
            yield name, a

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters and buffers (BN running statistics), PyTorch-style dotted names."""
        return dict(self._items(False))

    def named_parameters(self) -> list[tuple[str, np.ndarray]]:
        """(name, copy) of every trainable parameter."""
        return list(self._items(True))

    def parameters(self) -> list[np.ndarray]:
        """Copies of the trainable parameters."""
        return [a for _, a in self._items(True)]

    def loss_and_grad(self, x: Any, y: Any, label_smoothing: float = 0.0) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy of a batch and its gradient with respect to every parameter.

        Runs in the current mode (training mode uses batch statistics and updates the BN running
        averages, exactly like one PyTorch training step's forward + ``backward()``).

        Args:
            x: images, shape (N, in_channels, H, W), finite.
            y: integer labels, shape (N,), in [0, num_classes).
            label_smoothing: epsilon of the smoothed one-hot targets, in [0, 1).

        Returns:
            ``(loss, {name: gradient})`` with the names and shapes of :meth:`named_parameters`.
        """
        xa = as_f32(x, "x", ndim=4)
        ya = as_labels(y, "y")
        if ya.shape[0] != xa.shape[0]:
            raise ShapeError(f"y has {ya.shape[0]} labels for a batch of {xa.shape[0]} images")
        grads = np.empty(self.num_parameters, dtype=np.float32)
        loss = ctypes.c_double(0)
        shape = shape_array(xa.shape)
        check(lib.samix_model_loss_grad(self.handle, xa.ctypes.data, shape.ctypes.data, ya.ctypes.data,
                                        float(label_smoothing), ctypes.addressof(loss), grads.ctypes.data, grads.size))
        out, offset = {}, 0
        for i in range(self._num_state):
            name, shp, is_param = self._entry(i)
            if not is_param:
                continue
            size = int(np.prod(shp)) if shp else 1
            out[name] = grads[offset:offset + size].reshape(shp)
            offset += size
        return float(loss.value), out

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copies values from ``state`` (name -> array) into the model.

        With ``strict=True`` the names must match :meth:`state_dict` exactly. Shapes must match and
        values must be finite.
        """
        if not isinstance(state, Mapping):
            raise SamixTypeError(f"state must be a mapping of names to arrays, got {type(state).__name__}")
        names, arrays = [], []
        for k, v in state.items():
            if not isinstance(k, str):
                raise SamixTypeError(f"state dict keys must be str, got {type(k).__name__}")
            names.append(c_string(k, "state dict key"))
            arrays.append(as_f32(v, f"state[{k!r}]"))
        n = len(names)
        c_names = (ctypes.c_char_p * max(n, 1))(*names)
        c_values = (ctypes.c_void_p * max(n, 1))(*[a.ctypes.data for a in arrays])
        ranks = np.array([a.ndim for a in arrays], dtype=np.int64)
        shapes = np.array([d for a in arrays for d in a.shape], dtype=np.int64)
        check(lib.samix_model_load_state(self.handle, n, ctypes.addressof(c_names), ctypes.addressof(c_values),
                                         ranks.ctypes.data, shapes.ctypes.data if shapes.size else None,
                                         1 if strict else 0))
        del arrays  # kept alive until the call returned

    # -- files ---------------------------------------------------------------------------------

    def save(self, path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
        """Saves the state dict to a safetensors file (atomically: an existing file at ``path`` is
        replaced only once the new one is complete on disk).

        The file holds one float32 tensor per :meth:`state_dict` entry and the metadata
        ``architecture``, ``num_classes``, ``in_channels`` (plus ``metadata``, str → str). It is
        readable by ``safetensors.numpy.load_file`` and by :func:`load`.
        """
        meta = MetadataArgs(metadata)
        check(lib.samix_model_save(self.handle, path_arg(path), meta.n, meta.key_ptr, meta.value_ptr))

    def load(self, path: PathLike, strict: bool = True) -> "Model":
        """Loads weights from a model file (or a trainer checkpoint) into this model; returns self.

        The file's architecture, class count and channels must match. With ``strict=True`` the
        names must match exactly. On any error the model is left unchanged.
        """
        check(lib.samix_model_load(self.handle, path_arg(path), 1 if strict else 0))
        return self

    @classmethod
    def from_file(cls, path: PathLike) -> "Model":
        """A new model built from a file's metadata, with its weights (see :func:`load`)."""
        meta = read_metadata(path)
        try:
            arch, k, c = meta["architecture"], int(meta["num_classes"]), int(meta["in_channels"])
        except (KeyError, ValueError):
            raise InvalidArgumentError(
                f"{os.fspath(path)!r} is not a samix model or trainer file "
                "(metadata lacks architecture, num_classes or in_channels)") from None
        model = cls(arch, num_classes=k, in_channels=c)
        try:
            model.load(path)
        except BaseException:
            model.close()
            raise
        return model

    def __repr__(self) -> str:
        if self.closed:
            return f"Model({self.architecture!r}, closed)"
        return (f"Model({self.architecture!r}, num_classes={self.num_classes}, in_channels={self.in_channels}, "
                f"parameters={self.num_parameters:,}, training={self.training})")


def load(path: PathLike) -> Model:
    """A model from a file written by :meth:`Model.save` (or a trainer checkpoint): the
    architecture, class count and channels come from the file's metadata."""
    return Model.from_file(path)


def create(name: str, num_classes: int = 10, in_channels: int = 3, seed: int = 0) -> Model:
    """A model by name (see :func:`available`)."""
    return Model(name, num_classes=num_classes, in_channels=in_channels, seed=seed)


def _factory(name: str):
    def make(num_classes: int = 10, in_channels: int = 3, seed: int = 0) -> Model:
        return Model(name, num_classes=num_classes, in_channels=in_channels, seed=seed)

    make.__name__ = name
    make.__qualname__ = name
    make.__doc__ = f"""``{name}`` classifier.

    Args:
        num_classes: number of output logits.
        in_channels: input image channels (3 for CIFAR, 1 for Fashion-MNIST).
        seed: seed of the weight initialisation.
    """
    return make


resnet20 = _factory("resnet20")
resnet32 = _factory("resnet32")
resnet44 = _factory("resnet44")
resnet56 = _factory("resnet56")
resnet110 = _factory("resnet110")
resnet18 = _factory("resnet18")
resnet34 = _factory("resnet34")
preactresnet18 = _factory("preactresnet18")
wrn28_2 = _factory("wrn28_2")
wrn28_8 = _factory("wrn28_8")
wrn28_10 = _factory("wrn28_10")
