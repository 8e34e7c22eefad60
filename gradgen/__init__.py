"""gradgen: PyTorch-style automatic differentiation on numpy, and a compiler for it.

>>> import gradgen as torch
>>> x = torch.ones(2, 2, requires_grad=True)
>>> out = ((x + 2) * (x + 2) * 3).mean()
>>> out.backward()
>>> x.grad
tensor([[4.5000, 4.5000],
        [4.5000, 4.5000]])
"""
from __future__ import annotations

__version__ = "0.1.0"

import warnings as _warnings
from typing import Any as _Any

# PyTorch computes log(0), 0/0, exp(1000) silently (IEEE results); numpy warns. Ignore
# those warnings when gradgen's own code triggered them, at no per-operation cost.
_warnings.filterwarnings("ignore", message=r".* encountered in ", category=RuntimeWarning,
                         module=r"gradgen(\.|$)")

from . import ops  # noqa: F401  (registers every primitive)
from .autograd import record as _record  # noqa: F401  (installs bind)
from .dtypes import (bool_ as bool, dtype, float32, float64, get_default_dtype, int32, int64,
                     set_default_dtype)
from .tensor import Size, Tensor, device
from . import functions as _functions
from .functions import MODULES as _MODULES
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from . import autograd
from . import nn
from .ir.trace import trace as _trace_program
from .api import compile
from .transforms import grad, value_and_grad
from .runtime.threads import get_num_threads, set_num_threads
from .printing import set_printoptions, get_printoptions

float = float32
double = float64
long = int64
int = int32

_functions.install_methods()
for _mod in _MODULES:
    for _name in getattr(_mod, "FUNCTIONS", []):
        globals()[_name] = getattr(_mod, _name)
del _mod, _name


def is_tensor(obj: object) -> bool:
    """True for gradgen tensors."""
    return isinstance(obj, Tensor)


def trace(fn: _Any, *example_args: _Any, abstract: bool = False) -> _Any:
    """``trace(fn, *example_args)``: run ``fn`` once and return its IR ``Program``
    (:func:`gradgen.ir.trace.trace`). ``trace(matrix)``: PyTorch's ``torch.trace``, the sum of
    the matrix's diagonal (a tensor is not a function, so the two cannot be confused)."""
    if isinstance(fn, Tensor) or not callable(fn):
        if example_args:
            raise TypeError(f"trace() takes 1 positional argument but {1 + len(example_args)} "
                            "were given")
        return _functions.linalg.matrix_trace(fn)
    return _trace_program(fn, *example_args, abstract=abstract)


def numel(input: Tensor) -> int:
    return input.numel()
