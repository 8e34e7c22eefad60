"""Where an operand is NaN: masks and gradient cuts for functions whose selects would pass a
NaN operand wrongly (``clamp``: PyTorch gives NaN, and no gradient to a NaN input)."""
from __future__ import annotations

import math as _math
from typing import Any

import numpy as np

from ..dtypes import result_type
from ..ops import elementwise as P
from ..tensor import Tensor
from ._operands import as_tensor_operand, differentiating, expand_to


def nan_matters(input: Tensor, min: Any, max: Any) -> bool:
    """Whether clamp's selects alone could get a NaN operand wrong: a floating operand that is
    differentiated (its gradient) or a tensor or NaN bound (the value: they would pass x)."""
    if not result_type(*(as_tensor_operand(v) for v in (input, min, max)
                         if v is not None)).is_floating_point:
        return False
    for v in (input, min, max):
        if isinstance(v, Tensor):
            if v is not input or differentiating(v):
                return True
        elif isinstance(v, float) and _math.isnan(v):
            return True
    return False


def nan_mask(operands: tuple, shape: tuple) -> Any:
    """Where any of ``operands`` (tensors, numbers or None) is NaN, broadcast to ``shape``:
    a bool tensor, a bool constant, or None when none of them can be NaN."""
    mask: Any = None
    for v in operands:
        if isinstance(v, Tensor) and v.dtype.is_floating_point:
            v = expand_to(v, shape, always=True)
            m: Any = P.ne(v, v)
        elif isinstance(v, float) and _math.isnan(v):
            m = np.asarray(True)  # a constant (a Python bool would take the other's dtype)
        else:
            continue
        mask = m if mask is None else P.logical_or(mask, m)
    return mask


def no_gradient_where(mask: Any, t: Tensor, shape: tuple) -> Tensor:
    """``t`` broadcast to ``shape`` (``mask``'s), with no gradient flowing back where ``mask``."""
    t = expand_to(t, shape, always=True)
    return P.select(mask, P.stop_gradient(t), t)


__all__ = ["nan_matters", "nan_mask", "no_gradient_where"]
