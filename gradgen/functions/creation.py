"""Tensor creation: ``tensor``, factories (``ones``, ``arange``, ...), ``from_numpy``."""
from __future__ import annotations

import math
import operator
import warnings
from typing import Any

import numpy as np

from ..dtypes import (as_dtype, bool_, dtype, from_numpy_dtype,
                      get_default_dtype, int64)
from ..autograd import record
from ..tensor import _LEAF_INSIDE, Tensor
from ._operands import checked_number, function_overload_error, shape_arg, type_name
from .from_data import _positive_strides, _to_array


# ---------------------------------------------------------------- tensor(data): from_data.py

def _leaf(arr: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._make(arr)
    if requires_grad:
        if arr.dtype.kind != "f":  # factories word it with a capital O, unlike requires_grad_()
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        record.untraceable(_LEAF_INSIDE)
        t._requires_grad = True
    return t


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data`` (nested lists, numbers, arrays, tensors).

    >>> import gradgen as gg
    >>> gg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    tensor([[1., 2.],
            [3., 4.]], requires_grad=True)
    """
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use "
                      "sourceTensor.clone().detach() or sourceTensor.clone().detach()."
                      "requires_grad_(True), rather than torch.tensor(sourceTensor).",
                      UserWarning, stacklevel=2)
    return _leaf(_to_array(data, None if dtype is None else as_dtype(dtype)), requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor`` but shares memory with a numpy array or tensor of the same dtype."""
    d = None if dtype is None else as_dtype(dtype)
    if isinstance(data, Tensor):  # another dtype: a differentiable copy (ToCopyBackward0)
        return data if d is None or data.dtype is d else data.to(d)
    if isinstance(data, np.ndarray) and (d is None or data.dtype == d.np):
        from_numpy_dtype(data.dtype)
        return Tensor._make(_positive_strides(data))
    return Tensor._make(_to_array(data, d))


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``ndarray`` (whose dtype must be supported)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    from_numpy_dtype(ndarray.dtype)
    return Tensor._make(_positive_strides(ndarray))


# ---------------------------------------------------------------- factories

def _is_int(x: Any) -> bool:
    if isinstance(x, Tensor):
        return not x.dtype.is_floating_point and x.dtype.name != "bool"
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _size(fn: str, size: tuple) -> tuple[int, ...]:
    """A factory's size, given as ``f(2, 3)`` or ``f((2, 3))``, refused as PyTorch refuses it."""
    if not size:  # f(): no size at all (a 0-d tensor is f(()))
        if fn in ("rand", "randn"):
            raise function_overload_error(fn, (), _RANDOM_SIGNATURES)
        raise TypeError(f'{fn}() missing 1 required positional arguments: "size"')
    try:
        shape = tuple(shape_arg(size))
    except TypeError:
        raise _size_error(fn, size) from None
    negative = [s for s in shape if s < 0]
    if negative:
        raise RuntimeError("zeros: Dimension size must be non-negative." if fn == "zeros" else
                           f"Trying to create tensor with negative dimension {negative[0]}: {list(shape)}")
    return shape


def _size_error(fn: str, size: tuple) -> TypeError:
    """PyTorch's parser's words: a first element that is no int makes the argument no size at
    all; a later one fails the unpacking of an int sequence (``f(2, x)`` as ``f((2, x))``)."""
    head = f"{fn}(): argument 'size'"
    if len(size) == 1 and not isinstance(size[0], (tuple, list)):
        return TypeError(f"{head} (position 1) must be tuple of ints, not {type_name(size[0])}")
    if len(size) > 1 and not _is_int(size[0]):
        return TypeError(f"{fn}() takes 1 positional argument but {len(size)} were given")
    pos, bad = next((i, s) for i, s in enumerate(size[0] if len(size) == 1 else size)
                    if not _is_int(s))
    if pos == 0:
        return TypeError(f"{head} (position 1) must be tuple of ints, but found element of type "
                         f"{type_name(bad)} at pos 0")
    return TypeError(f"{head} failed to unpack the object at pos {pos + 1} with error "
                     f'"type must be tuple of ints,but got {type_name(bad)}"')


def _number(x: Any, fn: str, arg: str, pos: int) -> float:
    """An argument PyTorch reads as a Number: a Python number, a numpy scalar (integers stay
    int, the others become float) or a 0-d tensor that does not require grad."""
    if isinstance(x, Tensor) and x.ndim == 0 and not x.requires_grad:
        return x.item()
    if isinstance(x, (bool, int)):
        return x
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.generic)):
        return float(x)
    raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be Number, not {type_name(x)}")


def _factory(fill: Any, name: str, doc: str):
    def fn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           out: Any = None) -> Tensor:
        d = get_default_dtype() if dtype is None else as_dtype(dtype)
        return _leaf(fill(_size(name, size), d.np), requires_grad)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


ones = _factory(np.ones, "ones", "A tensor of ones of the given size.")
zeros = _factory(np.zeros, "zeros", "A tensor of zeros of the given size.")
empty = _factory(np.empty, "empty", "An uninitialized tensor of the given size.")


def _scalar_dtype(value: float) -> dtype:
    return bool_ if isinstance(value, bool) else int64 if isinstance(value, int) else get_default_dtype()


def full(size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (dtype inferred from the value)."""
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"full(): argument 'size' (position 1) must be tuple of ints, not {type_name(size)}")
    value = _number(fill_value, "full", "fill_value", 2)
    d = _scalar_dtype(value) if dtype is None else as_dtype(dtype)
    return _leaf(np.full(_size("full", (size,)), checked_number(value, d), d.np), requires_grad)


def _like(fill: Any):
    """A ``*_like`` factory. Its result keeps the input's memory order (numpy's "K", PyTorch's
    preserve_format: a transposed input gives a transposed result, a strided one a compact)."""
    def fn(input: Tensor, *, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
        d = input.dtype if dtype is None else as_dtype(dtype)
        return _leaf(fill(input._data, dtype=d.np), requires_grad)
    return fn


ones_like = _like(np.ones_like)
zeros_like = _like(np.zeros_like)
empty_like = _like(np.empty_like)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    value = _number(fill_value, "full_like", "fill_value", 2)
    d = input.dtype if dtype is None else as_dtype(dtype)
    return _leaf(np.full_like(input._data, checked_number(value, d), d.np), requires_grad)


_OPTIONS = ("torch.dtype dtype = None, torch.layout layout = None, torch.device device = None, "
            "bool pin_memory = False, bool requires_grad = False")
_WITH_OUT = "*, Tensor out = None, " + _OPTIONS
_RANDOM_SIGNATURES = [f"tuple of ints size, *, torch.Generator generator, {_WITH_OUT[3:]}",
                      f"tuple of ints size, {_WITH_OUT}"]
_EYE_SIGNATURES = [f"int n, {_WITH_OUT}", f"int n, int m, {_WITH_OUT}"]
_ARANGE_SIGNATURES = [f"Number end, {_WITH_OUT}", f"Number start, Number end, *, {_OPTIONS}",
                      f"Number start, Number end, Number step = 1, {_WITH_OUT}"]
_LINSPACE_SIGNATURES = [f"{a} start, {b} end, int steps, {_WITH_OUT}"
                        for a, b in [("Tensor", "Tensor"), ("Number", "Tensor"),
                                     ("Tensor", "Number"), ("Number", "Number")]]


def _is_index(x: Any) -> bool:
    return not isinstance(x, bool) and hasattr(type(x), "__index__")


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The identity matrix (``n`` x ``m``)."""
    if m is None and not _is_index(n):
        raise TypeError(f"eye(): argument 'n' (position 1) must be int, not {type_name(n)}")
    if m is not None and not (_is_index(n) and _is_index(m)):
        raise function_overload_error("eye", (n, m), _EYE_SIGNATURES)
    n = operator.index(n)
    m = n if m is None else operator.index(m)
    for arg, v in (("n", n), ("m", m)):
        if v < 0:
            raise RuntimeError(f"{arg} must be greater or equal to 0, got {v}")
    d = get_default_dtype() if dtype is None else as_dtype(dtype)
    return _leaf(np.eye(n, m, dtype=d.np), requires_grad)


def arange(start: Any = None, end: Any = None, step: Any = 1, *, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 when all are integers."""
    if end is None:
        s, e, st = 0, _number(start, "arange", "end", 1), 1
    else:
        try:
            s, e, st = (_number(0 if start is None else start, "arange", "start", 1),
                        _number(end, "arange", "end", 2), _number(step, "arange", "step", 3))
        except TypeError:
            given = (start, end) if type(step) is int and step == 1 else (start, end, step)
            raise function_overload_error("arange", given, _ARANGE_SIGNATURES) from None
    if dtype is not None:
        d = as_dtype(dtype)
    else:
        d = get_default_dtype() if any(isinstance(v, float) for v in (s, e, st)) else int64
    if d is bool_:
        raise NotImplementedError("\"arange_cpu\" not implemented for 'Bool'")
    if not (st > 0 or st < 0):  # zero or NaN
        raise RuntimeError("step must be nonzero")
    if not (math.isfinite(s) and math.isfinite(e)):
        raise RuntimeError(f"unsupported range: {float(s):g} -> {float(e):g}")
    if not ((st > 0 and e >= s) or (st < 0 and e <= s)):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if d is int64:  # the bounds and the step are truncated to integers first
        s, e, st = (int(checked_number(v, int64)) for v in (s, e, st))
        if st == 0:
            raise ValueError("step must be nonzero")
        return _leaf(np.arange(s, e, st, dtype=np.int64), requires_grad)
    n = (float(e) - float(s)) / float(st)  # other dtypes take their length from doubles
    if not n < 2.0**63:
        raise RuntimeError("invalid size, possible overflow?")
    if d.is_floating_point:
        arr = s + st * np.arange(math.ceil(n), dtype=np.float64)
    else:  # int32: the truncated start and step, in int64
        s, st = (int(checked_number(v, int64)) for v in (s, st))
        arr = s + st * np.arange(math.ceil(n), dtype=np.int64)
    return _leaf(arr.astype(d.np), requires_grad)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if not _is_index(steps):
        raise function_overload_error("linspace", (start, end, steps), _LINSPACE_SIGNATURES)
    steps = operator.index(steps)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    d = get_default_dtype() if dtype is None else as_dtype(dtype)
    if d is bool_:
        raise NotImplementedError("\"linspace_cpu\" not implemented for 'Bool'")
    start, end = (_endpoint(v, name) for v, name in ((start, "start"), (end, "end")))
    checked_number(float(start), d)
    checked_number(float(end), d)
    return _leaf(_linspace_values(start, end, steps, d), requires_grad)


def _endpoint(v: Any, name: str) -> Any:
    """A start or end of ``linspace``: a number, or a 0-d tensor's number."""
    if isinstance(v, Tensor):
        if v.dim() != 0:
            raise RuntimeError(f"linspace only supports 0-dimensional start and end tensors, but "
                               f"got {name} with {v.dim()} dimension(s).")
        return v.item()
    return v


def _linspace_values(start: Any, end: Any, steps: int, d: dtype) -> np.ndarray:
    """PyTorch's CPU linspace: ``start`` alone for one step, else the first half counted up
    from ``start`` and the second down from ``end`` (``start + step * i``, ``end - step *
    (steps - 1 - i)``), in the dtype's arithmetic with both ends converted to it first; an
    integer dtype truncates the ends, steps in double and truncates each value. (PyTorch's
    vectorized loop may round a float value differently, by an ulp.)"""
    if steps <= 1:
        return np.full(steps, start).astype(d.np)
    if d.is_floating_point:
        ft = d.np.type
        s, e = ft(start), ft(end)
    else:
        ft, s, e = np.float64, int(start), int(end)
    with np.errstate(invalid="ignore", over="ignore"):  # an inf or NaN end gives NaN, as there
        step = (ft(e) - ft(s)) / ft(steps - 1)
        i = np.arange(steps).astype(ft)
        half = steps // 2
        out = np.concatenate([ft(s) + step * i[:half], ft(e) - step * (ft(steps - 1) - i[half:])])
    return out.astype(d.np)


FUNCTIONS = ["tensor", "as_tensor", "from_numpy", "ones", "zeros", "empty", "full", "ones_like",
             "zeros_like", "empty_like", "full_like", "eye", "arange", "linspace"]
