"""Operand preparation shared by the front-end functions: type promotion and broadcasting.

This is where PyTorch's implicit conversions become explicit primitives. An
operand that autograd differentiates (or any operand, while tracing) is
converted with ``convert`` and broadcast with ``broadcast_in_dim``, so VJP rules
only ever see operands of the output's shape. Operands nothing differentiates
are left for numpy to broadcast: that costs nothing and records nothing.
"""
from __future__ import annotations

import math
from numbers import Number
from typing import Any

import numpy as np

from ..autograd import record
from ..autograd.grad_mode import _state
from ..dtypes import dtype, float32, from_numpy_dtype, int32, int64, result_type
from ..ops.elementwise import convert
from ..ops.shape import broadcast_in_dim
from ..tensor import Size, Tensor

SCALARS = (bool, int, float)


def is_operand(x: Any) -> bool:
    """Whether ``x`` may appear beside a tensor in arithmetic."""
    return isinstance(x, (Tensor, bool, int, float, np.ndarray, np.generic))


def as_tensor_operand(x: Any) -> Any:
    """Tensors and Python scalars pass; numpy values become constant tensors."""
    if isinstance(x, (Tensor, bool, int, float)):
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        from_numpy_dtype(x.dtype)
        return Tensor._make(x)
    if isinstance(x, Number):
        return float(x)
    raise TypeError(f"expected a Tensor or a Python number as operand, got {type(x).__name__}")


def differentiating(t: Any) -> bool:
    """Whether operations on ``t`` are being recorded (autograd or tracing)."""
    return (t._requires_grad and _state.enabled) or (record.tracer[0] is not None and record.tracing())


# The range of each integer dtype, and the C++ type PyTorch's overflow messages name.
INT_RANGE = {int32: (-2**31, 2**31 - 1), int64: (-2**63, 2**63 - 1)}
_C_TYPE = {int32: "int", int64: "int64_t", float32: "float"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def checked_number(value: Any, d: dtype) -> Any:
    """``value``, refused with PyTorch's error when it overflows ``d`` (as PyTorch refuses a
    number it fills or compares with: ``full``, ``fill_``, ``x[i] = v``); NaN and inf overflow
    an integer type, a float64 beyond float32's range overflows float32."""
    if d in INT_RANGE:
        lo, hi = INT_RANGE[d]
        ok = lo <= value <= hi  # False for NaN and inf
    else:
        ok = d is not float32 or not math.isfinite(value) or abs(value) <= _FLOAT32_MAX
    if not ok:
        raise RuntimeError(f"value cannot be converted to type {_C_TYPE[d]} without overflow")
    return value


def cast(x: Any, d: dtype) -> Any:
    """``x`` as dtype ``d``: a converted tensor, or a 0-d numpy constant for a scalar."""
    if type(x) is Tensor:
        return x if x._data.dtype == d.np else convert(x, dtype=d)
    if type(x) is int and d in INT_RANGE:
        lo, hi = INT_RANGE[d]
        if not lo <= x <= hi:  # wrapped into d, as PyTorch's arithmetic converts it
            if not -2**63 <= x < 2**64:
                raise OverflowError("int too big to convert")
            x = (x - lo) % (2 * (hi + 1)) + lo
    return np.asarray(x, d.np)


def broadcast_shapes(a: tuple, b: tuple) -> tuple:
    """numpy/PyTorch broadcasting of two shapes, with PyTorch's error message."""
    if a == b:
        return a
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    out = [0] * n
    for i in range(n - 1, -1, -1):  # (from the last dim: PyTorch names the last mismatch)
        x, y = pa[i], pb[i]
        if x == y or y == 1:
            out[i] = x
        elif x == 1:
            out[i] = y
        else:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b ({y}) "
                               f"at non-singleton dimension {i}")
    return tuple(out)


def broadcast_shape_of(xs: Any) -> tuple:
    """The broadcast shape of the tensors among ``xs`` (other operands are scalars)."""
    shape: tuple = ()
    for x in xs:
        if isinstance(x, Tensor):
            shape = broadcast_shapes(shape, x._data.shape)
    return shape


def expand_to(t: Any, shape: tuple, always: bool = False) -> Any:
    """Broadcast a tensor to ``shape`` explicitly when it is differentiated (or ``always``),
    else leave it."""
    if type(t) is not Tensor or t._data.shape == shape or not (always or differentiating(t)):
        return t
    nd = t._data.ndim
    return broadcast_in_dim(t, shape=shape, dims=tuple(range(len(shape) - nd, len(shape))))


def elementwise_operands(*xs: Any, compute: dtype | None = None) -> tuple[list, dtype]:
    """Promote and broadcast operands of an elementwise operation; returns (operands, dtype)."""
    xs = tuple(as_tensor_operand(x) for x in xs)
    d = compute if compute is not None else result_type(*xs)
    ops = [cast(x, d) for x in xs]
    shape: tuple = ()
    tensors = [o for o in ops if type(o) is Tensor]
    for o in tensors:
        shape = broadcast_shapes(shape, o._data.shape)
    return [expand_to(o, shape) for o in ops], d


def shape_arg(args: tuple) -> Size:
    """Sizes given as ``f(2, 3)``, ``f((2, 3))`` or ``f([2, 3])``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    out = []
    for s in args:
        if isinstance(s, Tensor) and not s.dtype.is_floating_point and s.dtype.name != "bool":
            s = s.__index__()  # (an integer tensor of one element, as PyTorch takes it)
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"size must be a sequence of ints, got an element of type {type(s).__name__}")
        out.append(int(s))
    return Size(out)
