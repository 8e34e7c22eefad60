"""Operand preparation shared by the front-end functions: type promotion and broadcasting.

This is where PyTorch's implicit conversions become explicit primitives. An
operand that autograd differentiates (or any operand, while tracing) is
converted with ``convert`` and broadcast with ``broadcast_in_dim``, so VJP rules
only ever see operands of the output's shape. Operands nothing differentiates
are left for numpy to broadcast: that costs nothing and records nothing.
"""
from __future__ import annotations

import functools
import inspect
import math
import sys
from numbers import Number
from typing import Any, Callable

import numpy as np

from ..autograd import record
from ..autograd.grad_mode import _state
from ..dtypes import (dtype, float32, from_numpy_dtype, int32, int64, result_type,
                      scalar_overflow)
from ..ops.elementwise import convert
from ..ops.shape import broadcast_in_dim
from ..tensor import Size, Tensor

SCALARS = (bool, int, float)


def is_operand(x: Any) -> bool:
    """Whether ``x`` may appear beside a tensor in arithmetic."""
    return isinstance(x, (Tensor, bool, int, float, np.ndarray, np.generic))


def as_tensor_operand(x: Any) -> Any:
    """Tensors and Python scalars pass; numpy values become constant tensors."""
    if isinstance(x, (Tensor, bool, float)):
        return x
    if isinstance(x, int):
        scalar_overflow(x)
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
    scalar_overflow(value)
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
            scalar_overflow(x)
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


# ---------------------------------------------------------------- argument checks

_HEAPTYPE = 1 << 9  # (Py_TPFLAGS_HEAPTYPE: a class defined in Python)


def type_name(x: Any) -> str:
    """The name PyTorch's argument errors give ``x``'s type: ``list``, ``numpy.ndarray``, ``Tensor``
    (CPython's ``tp_name``, which carries the module of a type defined in C outside builtins)."""
    if isinstance(x, Tensor):
        return "Tensor"
    t = type(x)
    if t.__module__ == "builtins" or t.__flags__ & _HEAPTYPE:
        return t.__name__
    return f"{t.__module__}.{t.__name__}"


def not_tensor(fn: str, x: Any, arg: str = "input", pos: int = 1) -> TypeError:
    """PyTorch's error for a non-Tensor ``x`` given as tensor argument ``arg`` of ``fn``."""
    return TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be Tensor, not {type_name(x)}")


def require_tensor(fn: str, x: Any, arg: str = "input", pos: int = 1) -> None:
    """Raise PyTorch's TypeError unless ``x`` is a Tensor (the one check every front-end function
    that takes tensors makes, before anything reads ``x``)."""
    if not isinstance(x, Tensor):
        raise not_tensor(fn, x, arg, pos)


def argument_type_error(method_message: str, function_message: str) -> TypeError:
    """A bad argument, worded as PyTorch words it for the method (``x.sum(True)``): its message
    leaves out ``self``. The torch-level function (``tensor_function``) re-raises it worded for
    the function call, which counts the tensor (``torch.sum(x, True)``)."""
    e = TypeError(method_message)
    e.function_message = function_message  # type: ignore[attr-defined]
    return e


def overload_error(name: str, args: tuple, signatures: list[str], keywords: dict | None = None,
                   first: str = "Tensor") -> TypeError:
    """PyTorch's "invalid combination of arguments" error for a method call with ``args`` (after
    ``self``); the function's message also names ``first``, the type of its first argument.
    ``signatures`` are the function's."""
    kw = [f"{k}={type_name(v)}" for k, v in (keywords or {}).items()]

    def text(kinds: list[str], sigs: list[str]) -> str:
        got = ", ".join(kinds + kw) if kinds else "".join(k + ", " for k in kw)
        lines = "".join(f" * ({s})\n" for s in sigs)
        return (f"{name}() received an invalid combination of arguments - got ({got}), "
                f"but expected one of:\n{lines}")
    kinds = [type_name(a) for a in args]
    method_sigs = [s.removeprefix("Tensor input").removeprefix(", ") for s in signatures]
    return argument_type_error(text(kinds, method_sigs), text([first] + kinds, signatures))


def function_overload_error(name: str, got: tuple, signatures: list[str],
                            keywords: dict | None = None) -> TypeError:
    """PyTorch's "invalid combination of arguments" error of a function that is no method
    (``got``: all its arguments)."""
    if not got:
        return overload_error(name, (), signatures, keywords)
    return TypeError(overload_error(name, got[1:], signatures, keywords,
                                    type_name(got[0])).function_message)


def argument_error(name: str, arg: str, pos: int, expected: str, value: Any) -> TypeError:
    """PyTorch's "argument 'dim' (position 1) must be int, not bool" for the method's ``pos``
    (one more for the function)."""
    def text(p: int) -> str:
        return f"{name}(): argument '{arg}' (position {p}) must be {expected}, not {type_name(value)}"
    return argument_type_error(text(pos), text(pos + 1))


def tensor_function(method: Callable, name: str | None = None,
                    overloads: list[str] | None = None) -> Callable:
    """The torch-level function (``gradgen.sum``) of a Tensor method (``Tensor.sum``): the method,
    after PyTorch's TypeError when its first argument is not a Tensor (the overload error when
    PyTorch has several ``overloads``), with argument errors worded for the function. Methods
    skip the check: ``self`` is a Tensor already."""
    fn = name or method.__name__
    first = next(iter(inspect.signature(method).parameters))

    @functools.wraps(method)
    def function(*args: Any, **kwargs: Any) -> Any:
        x = args[0] if args else kwargs.get(first)
        if not isinstance(x, Tensor):
            if overloads is None:
                raise not_tensor(fn, x)
            raise TypeError(overload_error(fn, args[1:], overloads, kwargs, type_name(x)).function_message)
        try:
            return method(*args, **kwargs)
        except TypeError as e:
            if not hasattr(e, "function_message"):
                raise
            raise TypeError(e.function_message) from None
    function.__name__ = fn
    return function


def is_index(x: Any) -> bool:
    """Whether PyTorch takes ``x`` as an int argument (a dim): an ``int``, a numpy integer or a
    0-d integer tensor (anything with ``__index__`` but bools); ``operator.index`` converts it."""
    t = type(x)
    if t is int:  # (the common case first: this is on the path of every x.sum(1))
        return True
    if t is bool or t is np.bool_:
        return False
    if isinstance(x, (int, np.integer)):
        return True
    return isinstance(x, Tensor) and x._data.ndim == 0 and x._data.dtype.kind in "iu"


def user_stacklevel() -> int:
    """The ``stacklevel`` of a warning that points at the first caller outside gradgen (whichever
    of a function or its method the user called)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "gradgen":
        frame, level = frame.f_back, level + 1
    return level
