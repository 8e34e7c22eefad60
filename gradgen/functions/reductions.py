"""Reductions over dimensions: sum, mean, ... (``dim`` int or tuple, negative allowed; ``keepdim``)."""
from __future__ import annotations

from typing import Any

from ..dtypes import as_dtype, get_default_dtype, int64
from ..ops.reduce import reduce_sum
from ..ops.shape import reshape
from ..tensor import Tensor, _wrap_dim
from ._operands import cast
from .math import _named


def normalize_dims(dim: Any, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, int, or sequence) as sorted distinct non-negative axes, PyTorch's errors."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if ndim == 0:
        for d in dims:
            _wrap_dim(d, 0)
        return ()
    out = sorted({_wrap_dim(d, ndim) for d in dims})
    if len(out) != len(dims):
        raise RuntimeError(f"dim {dims} appears multiple times in the list of dims")
    return tuple(out)


def keep(out: Tensor, in_shape: tuple, axes: tuple[int, ...], keepdim: bool) -> Tensor:
    """Reinsert reduced axes as size 1 when ``keepdim``."""
    if not keepdim or not axes and len(in_shape) == out._data.ndim:
        return out
    shape = tuple(1 if i in axes else s for i, s in enumerate(in_shape))
    return reshape(out, shape=shape) if shape != out._data.shape else out


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum over ``dim`` (all dimensions by default); integer and bool inputs sum as int64."""
    x = input
    if dtype is not None:
        x = cast(x, as_dtype(dtype))
    elif not x.dtype.is_floating_point:
        x = cast(x, int64)
    axes = normalize_dims(dim, x._data.ndim)
    out = keep(reduce_sum(x, axes=axes), x._data.shape, axes, keepdim)
    return _named(out, "SumBackward0" if dim is None else "SumBackward1")


def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Mean over ``dim``; defined for floating inputs only, as in PyTorch."""
    x = input if dtype is None else cast(input, as_dtype(dtype))
    if not x.dtype.is_floating_point:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point or "
            f"complex dtype. Got: {_legacy_name(x)}")
    axes = normalize_dims(dim, x._data.ndim)
    n = 1
    for a in axes:
        n *= x._data.shape[a]
    s = keep(reduce_sum(x, axes=axes), x._data.shape, axes, keepdim)
    out = s / n if n != 0 else s / 0.0
    return _named(out, "MeanBackward0" if dim is None else "MeanBackward1")


def _legacy_name(x: Tensor) -> str:
    return {"int64": "Long", "int32": "Int", "bool": "Bool"}.get(x.dtype.name, x.dtype.name)


METHODS = {"sum": sum, "mean": mean}
FUNCTIONS = ["sum", "mean"]
_ = get_default_dtype
