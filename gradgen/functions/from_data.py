"""Reading tensor data: nested Python sequences, numbers, numpy arrays and scalars, tensors,
into a fresh numpy array of the given or inferred dtype, with PyTorch's rules and messages
(``tensor``, ``as_tensor``; :mod:`gradgen.functions.creation`)."""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..autograd import record
from ..autograd.record import untraceable
from ..dtypes import (_BY_NP, bool_, dtype, float32, float64, from_numpy_dtype, get_default_dtype,
                      int32, int64, promote_types)
from ..tensor import Tensor
from ._operands import INT_RANGE


# PyTorch builds a tensor from Python data in three steps (torch/csrc/utils/tensor_new.cpp): the
# sizes follow the first element at each level, the dtype promotes over every element, and each
# element is converted with checks. ``_exact_array`` does exactly that, element by element. The
# common case (rectangular lists of numbers) takes a fast path through numpy instead, whose
# errors (ragged rows, numbers out of range) send it to the exact path for PyTorch's message.

_MAX_DIMS = 128
_NESTS = frozenset({list, tuple, range, np.ndarray})
# The number types the fast path takes, with their dtypes (None: the default dtype).
_SCALAR_KINDS: dict[type, dtype | None] = {
    bool: bool_, int: int64, float: None, np.bool_: bool_, np.int32: int32, np.int64: int64,
    np.float32: float32, np.float64: float64}
# What numpy converts to an integer or bool dtype as PyTorch does, or refuses when PyTorch does
# (arrays held in a list appear as their gradgen dtype). Floating dtypes take everything.
_FAST_INTO = {
    int64: frozenset({bool, int, float, np.int32, np.int64, int32, int64}),
    int32: frozenset({bool, int, float, np.int32, int32}),
    bool_: frozenset({bool, int, float, np.bool_, np.int32, np.int64, np.float64,
                      bool_, int32, int64, float64})}


def _numpy_scalar_dtype(x: np.generic) -> dtype:
    """A numpy scalar's dtype; floating types gradgen lacks (float16) become the default dtype."""
    if isinstance(x, np.floating) and x.dtype not in (np.float32, np.float64):
        return get_default_dtype()
    return from_numpy_dtype(x.dtype)


def _infer_dtype(data: Any) -> dtype:
    """PyTorch's inference: bool -> bool, int -> int64, float -> the default dtype; numpy values
    and tensors keep theirs; a sequence promotes over its elements (empty: the default dtype)."""
    if isinstance(data, bool):
        return bool_
    if isinstance(data, int):
        return int64
    if isinstance(data, np.generic):
        return _numpy_scalar_dtype(data)
    if isinstance(data, float):
        return get_default_dtype()
    if isinstance(data, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, np.ndarray):
        return from_numpy_dtype(data.dtype)
    if isinstance(data, Sequence):
        d = None
        for x in data:
            d = _infer_dtype(x) if d is None else promote_types(d, _infer_dtype(x))
        return get_default_dtype() if d is None else d
    raise RuntimeError(f"Could not infer dtype of {type(data).__name__}")


def _fast_kinds(seq: Any, kinds: set) -> bool:
    """Add to ``kinds`` the number types in a nest of lists, tuples, ranges and arrays (an
    array adds its dtype); False when the nest holds anything else."""
    types = set(map(type, seq)) or {float}  # an empty sequence counts as the default dtype
    if types <= _SCALAR_KINDS.keys():
        kinds |= types
        return True
    if not types <= _NESTS:
        return False
    for x in seq:
        if type(x) is np.ndarray:
            d = _BY_NP.get(x.dtype)
            if d is None or x.ndim == 0:
                return False
            kinds.add(d)
        elif not _fast_kinds(x, kinds):
            return False
    return True


def _kinds_dtype(kinds: set) -> dtype:
    d = None
    for k in kinds:
        kd = k if isinstance(k, dtype) else _SCALAR_KINDS[k] or get_default_dtype()
        d = kd if d is None else promote_types(d, kd)
    return get_default_dtype() if d is None else d


def _to_array(data: Any, dt: dtype | None) -> np.ndarray:
    """``data`` as a fresh numpy array of gradgen dtype ``dt`` (inferred when None)."""
    if isinstance(data, (Tensor, list, tuple)) and record.tracing() and _holds_tensor(data):
        untraceable("a tensor's value flows into a new tensor: tensor(<tensor>) (use clone().detach())")
    if isinstance(data, Tensor):
        return np.array(data._data, (data.dtype if dt is None else dt).np)
    if isinstance(data, np.ndarray):
        _positive_strides(data)
        return np.array(data, (from_numpy_dtype(data.dtype) if dt is None else dt).np)
    if isinstance(data, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    kinds: set = set()
    if type(data) in _SCALAR_KINDS:
        kinds.add(type(data))
    elif not (isinstance(data, (list, tuple, range)) and _fast_kinds(data, kinds)):
        return _exact_array(data, dt)
    d = _kinds_dtype(kinds) if dt is None else dt
    if d.is_floating_point or kinds <= _FAST_INTO[d]:
        try:
            return np.array(data, d.np)
        except (ValueError, OverflowError):
            pass  # ragged, or a number out of range: the exact path raises PyTorch's error
    return _exact_array(data, dt)


def _exact_array(data: Any, dt: dtype | None) -> np.ndarray:
    """PyTorch's algorithm: sizes, then the dtype, then each element converted (when any)."""
    sizes = _sizes(data)
    d = _infer_dtype(data) if dt is None else dt
    if 0 in sizes:
        return np.zeros(sizes, d.np)
    return np.array(_store(data, sizes, 0, d), d.np)


def _sizes(data: Any) -> list[int]:
    """The sizes PyTorch reads: the lengths along the first elements (tensors are numbers)."""
    sizes: list[int] = []
    while isinstance(data, (Sequence, np.ndarray)):
        if len(sizes) == _MAX_DIMS:
            raise ValueError(f"too many dimensions '{type(data).__name__}'")
        sizes.append(len(data))
        if not sizes[-1]:
            break
        data = data[0]
    return sizes


def _store(obj: Any, sizes: list[int], dim: int, d: dtype) -> Any:
    """``obj`` (at depth ``dim``) as nested lists of Python numbers of dtype ``d``."""
    if dim == len(sizes):
        return _store_scalar(obj, d)
    try:
        items = list(obj)
    except TypeError:
        raise TypeError("not a sequence") from None
    if len(items) != sizes[dim]:
        raise ValueError(f"expected sequence of length {sizes[dim]} at dim {dim} (got {len(items)})")
    return [_store(x, sizes, dim + 1, d) for x in items]


def _store_scalar(x: Any, d: dtype) -> Any:
    """One element converted to ``d`` with PyTorch's checks: a floating dtype takes what
    float() takes (but strings), bool and integer dtypes take floats and what has __index__."""
    if d.is_floating_point:
        if not (hasattr(type(x), "__float__") or hasattr(type(x), "__index__")):
            raise TypeError(f"must be real number, not {type(x).__name__}")
        return float(x)
    if d is bool_:
        return bool(x) if isinstance(x, (float, np.bool_)) else operator.index(x) != 0
    if not isinstance(x, float):
        x = operator.index(x)
        if not -2**63 <= x < 2**63:
            raise ValueError("Overflow when unpacking long long")
    lo, hi = INT_RANGE[d]
    if not lo <= x <= hi:  # NaN fails too
        raise RuntimeError(f"value cannot be converted to type {d.name} without overflow")
    return int(x)


_NEGATIVE_STRIDES = (
    "At least one stride in the given numpy array is negative, and tensors with negative strides "
    "are not currently supported. (You can probably work around this by making a copy of your "
    "array  with array.copy().) ")


def _positive_strides(arr: np.ndarray) -> np.ndarray:
    """``arr``, refused as PyTorch refuses it when a stride is negative (``a[::-1]``)."""
    if any(s < 0 for s in arr.strides):
        raise ValueError(_NEGATIVE_STRIDES)
    return arr


def _holds_tensor(data: Any) -> bool:
    if isinstance(data, Tensor):
        return True
    return isinstance(data, (list, tuple)) and any(_holds_tensor(x) for x in data)


__all__ = ["_to_array", "_positive_strides"]
