"""PyTorch tensors in, PyTorch tensors out, without importing torch unless the caller passed one.

A tensor is recognised by duck typing: its type lives in the ``torch`` package (``torch.Tensor``,
``torch.nn.Parameter``) and it has ``.numpy()``. Only CPU tensors that NumPy can view without a
copy are accepted; the view (``tensor.detach().numpy()``) shares the tensor's memory, so mixing the
view in place mixes the tensor. Everything else raises one :class:`~samix.errors.SamixError` that
says what to change:

====================================  =================  ===========================================
input                                 error              fix suggested
====================================  =================  ===========================================
tensor on a GPU / other device        SamixTypeError     ``x.cpu()`` (samix computes on the CPU)
``requires_grad=True``                InvalidArgumentError  ``x.detach()`` (timm mixes under no_grad)
float16 / bfloat16 / other dtypes     SamixTypeError     ``x.float()``
non-contiguous (e.g. channels_last)   SamixTypeError     ``x.contiguous()``
====================================  =================  ===========================================

Results go back as tensors with ``torch.from_numpy`` (zero-copy), importing torch only then.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import numpy as np

from .errors import InvalidArgumentError, SamixTypeError

__all__ = ["is_tensor", "tensor_array", "label_array", "to_tensor"]


def is_tensor(x: Any) -> bool:
    """True for a PyTorch tensor (checked by its type's module, so torch is never imported here)."""
    mod = type(x).__module__
    return (mod == "torch" or mod.startswith("torch.")) and hasattr(x, "numpy") and hasattr(x, "device")


def _torch() -> Any:
    # The caller holds a tensor, so torch is already imported: this is a dictionary look-up.
    torch = sys.modules.get("torch")
    if torch is None:  # pragma: no cover - a tensor without its package loaded
        import torch
    return torch


def _check_device(t: Any, name: str) -> None:
    dev = t.device
    if getattr(dev, "type", str(dev)) != "cpu":
        raise SamixTypeError(f"{name} is a tensor on {dev}; samix computes on the CPU: pass {name}.cpu() "
                             f"(and move the results back with .to({str(dev)!r}))")


def tensor_array(t: Any, name: str, dtypes: Sequence[str] = ("float32",)) -> np.ndarray:
    """A NumPy view (no copy) of a CPU, contiguous, grad-free tensor of one of ``dtypes``.

    Writing the view writes the tensor. Raises the errors listed in the module docstring.
    """
    _check_device(t, name)
    if bool(getattr(t, "requires_grad", False)):
        raise InvalidArgumentError(f"{name} requires grad; samix mixes it in place, which autograd forbids: "
                                   f"pass {name}.detach() (timm's Mixup also runs under torch.no_grad())")
    dt = str(t.dtype).replace("torch.", "")
    if dt not in dtypes:
        want = " or ".join(dtypes)
        conv = ".float()" if "float32" in dtypes else ".to(torch.uint8)"
        raise SamixTypeError(f"{name} has dtype torch.{dt}; samix takes {want} tensors here (no silent copy): "
                             f"convert with {name}{conv}")
    if not t.is_contiguous():
        raise SamixTypeError(f"{name} is not C-contiguous (e.g. a slice, a transpose or channels_last memory "
                             f"format); samix works in place on contiguous memory: pass {name}.contiguous()")
    a = t.detach().numpy()
    if not a.flags.c_contiguous:  # is_contiguous() ignores strides of size-1 dims; be safe
        raise SamixTypeError(f"{name} is not C-contiguous: pass {name}.contiguous()")
    return a


def label_array(t: Any, name: str) -> np.ndarray:
    """A NumPy view of a CPU label tensor (integer class indices or, for multi-label, floats)."""
    _check_device(t, name)
    return t.detach().numpy()


def to_tensor(a: Any) -> Any:
    """``torch.from_numpy(a)`` (shares memory), or None for None."""
    if a is None:
        return None
    return _torch().from_numpy(a)
