"""samix — a CPU deep-learning engine in Swift for mixup research (SAMix/AutoMix), used from NumPy.

Compute runs in the Swift library ``libsamix.so`` (bundled in ``samix/lib``), called through ctypes;
calls release the GIL, and concurrent calls from several Python threads are safe.

Arrays: C-contiguous ``float32`` inputs are used in place (zero-copy); other inputs (other dtypes,
non-contiguous views, lists) are converted once to C-contiguous float32. ``out=`` arguments must be
C-contiguous writeable float32 arrays of the exact output shape and are written in place.
PyTorch CPU tensors (float32, contiguous, no grad) are accepted by :class:`Mixup`, :func:`mix` and
:class:`MixupCollate` zero-copy and come back as tensors; torch is never imported otherwise.
Images are NCHW. Errors raise subclasses of :class:`samix.errors.SamixError` (which also derive from
ValueError/TypeError/MemoryError/OSError/RuntimeError as fits).
"""

from __future__ import annotations

from . import checkpoint as checkpoint
from . import collate as collate
from . import datasets as datasets
from . import distributed as distributed
from . import errors as errors
from . import learned as learned
from . import mixing as mixing
from . import models as models
from . import optim as optim
from . import ssl as ssl
from . import viz as viz
from ._core import blas_info as blas_info
from ._core import get_num_threads as get_num_threads
from ._core import info as info
from ._core import library_version as library_version
from ._core import live_handles as live_handles
from ._core import set_num_threads as set_num_threads
from ._version import __version__ as __version__
from .errors import SamixError as SamixError
from .learned import AutoMix as AutoMix
from .learned import SAMix as SAMix
from .collate import MixupCollate as MixupCollate
from .mixing import MixPolicy as MixPolicy
from .mixing import MixResult as MixResult
from .mixing import Mixup as Mixup
from .mixing import mix as mix
from .training import Trainer as Trainer

__all__ = [
    "AutoMix",
    "SAMix",
    "learned",
    "ssl",
    "MixPolicy",
    "MixResult",
    "Mixup",
    "MixupCollate",
    "collate",
    "Trainer",
    "mix",
    "mixing",
    "SamixError",
    "__version__",
    "blas_info",
    "checkpoint",
    "datasets",
    "distributed",
    "errors",
    "get_num_threads",
    "info",
    "library_version",
    "live_handles",
    "models",
    "optim",
    "set_num_threads",
    "viz",
]
