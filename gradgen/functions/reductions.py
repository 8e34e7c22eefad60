"""Reductions over dimensions: sum, mean, prod, max/min, amax/amin, argmax/argmin, all/any,
count_nonzero (var/std/logsumexp/norm are in ``statistics``) (``dim`` int or tuple, negative allowed; ``keepdim``).

Each is a short composite of the reduction primitives (``gradgen.ops.reduce``) and
elementwise ones, named like PyTorch's backward class. Shape-dependent choices
(empty dimensions, 0-d inputs) are made here, in Python, so the primitives and
their VJP rules never branch on data.
"""
from __future__ import annotations

import math as _math
import operator
from typing import Any

from ..autograd.grad_mode import _state
from ..dtypes import as_dtype, bool_, int64
from ..ops import elementwise as P
from ..ops.reduce import argmax as _argmax_p, argmin as _argmin_p
from ..ops.reduce import reduce_max, reduce_min, reduce_prod, reduce_sum
from ..ops.indexing import take_along
from ..ops.shape import broadcast_in_dim, reshape
from ..tensor import Tensor, _wrap_dim
from ._operands import (argument_error, cast, differentiating, is_index, overload_error,
                        tensor_function)
from .math import _named, maximum, minimum

_INF = _math.inf


class _Unset:
    """Default of ``dim`` where PyTorch tells "not given" from an explicit None."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


# ---------------------------------------------------------------- dims and shapes

def normalize_dims(dim: Any, ndim: int, empty_is_all: bool = True, name: str = "",
                   overloads: list[str] | None = None) -> tuple[int, ...]:
    """``dim`` (None, an integer, or a sequence of them) as sorted distinct non-negative axes,
    PyTorch's errors (a bool or float is no dim: ``name``'s TypeError, its overload error when
    it has ``overloads``).

    An empty sequence means every dimension (as for sum, mean, amax), unless
    ``empty_is_all`` is False (all/any reduce nothing then).
    """
    if dim is None:
        return tuple(range(ndim))
    if type(dim) is int:  # (the common cases first: this is on every reduction's path)
        dims: tuple = (dim,)
    elif isinstance(dim, (tuple, list)):
        dims = tuple(dim)
    elif is_index(dim):
        dims = (operator.index(dim),)
    elif isinstance(dim, Tensor) and dim._data.ndim == 1:
        dims = tuple(dim)
    else:
        raise _bad_dim(name, dim, overloads)
    if not dims and empty_is_all:
        return tuple(range(ndim))
    seen: set[int] = set()
    for d in dims:
        if type(d) is not int:
            if not is_index(d):
                raise _bad_dim(name, dim, overloads)
            d = operator.index(d)
        w = _wrap_dim(d, ndim)
        if w in seen:
            raise RuntimeError(f"dim {w} appears multiple times in the list of dims")
        seen.add(w)
    return tuple(sorted(seen)) if ndim else ()


def _bad_dim(name: str, dim: Any, overloads: list[str] | None) -> TypeError:
    if overloads is not None:
        return overload_error(name, (dim,), overloads)
    return argument_error(name, "dim", 1, "tuple of ints", dim)


def keep(out: Tensor, in_shape: tuple, axes: tuple[int, ...], keepdim: bool) -> Tensor:
    """Reinsert reduced axes as size 1 when ``keepdim``."""
    if not keepdim or not axes and len(in_shape) == out._data.ndim:
        return out
    shape = tuple(1 if i in axes else s for i, s in enumerate(in_shape))
    return reshape(out, shape=shape) if shape != out._data.shape else out


def _restore(t: Tensor, shape: tuple, axes: tuple[int, ...]) -> Tensor:
    """Broadcast a reduced ``t`` back to ``shape`` (the shape before reducing ``axes``)."""
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    return broadcast_in_dim(t, shape=tuple(shape), dims=kept)


def _count(shape: tuple, axes: tuple[int, ...]) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _user_dims(dim: Any) -> tuple:
    return (operator.index(dim),) if is_index(dim) else tuple(operator.index(d) for d in dim)


# ---------------------------------------------------------------- sum, mean, prod

def _integral_to_long(x: Tensor, dtype: Any) -> Tensor:
    if dtype is not None:
        d = as_dtype(dtype)
        if not d.is_floating_point and x._requires_grad and _state.enabled:
            raise RuntimeError(f"Autograd not support dtype: {d.scalar_name}")
        return cast(x, d)
    return x if x.dtype.is_floating_point else cast(x, int64)


def _signatures(dim_forms: list[str], keywords: str = ", *, torch.dtype dtype = None") -> list[str]:
    """PyTorch's overloads of a reduction: none, or one of ``dim_forms`` with keepdim."""
    return [f"Tensor input{keywords}"] + [f"Tensor input, {d}, bool keepdim = False{keywords}"
                                          for d in dim_forms]


_SUM_SIGNATURES = _signatures(["tuple of ints dim", "tuple of names dim"])


def sum(input: Tensor, dim: Any = _UNSET, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum over ``dim`` (all dimensions by default); integer and bool inputs sum as int64."""
    x = _integral_to_long(input, dtype)
    axes = normalize_dims(None if dim is _UNSET else dim, x._data.ndim, name="sum",
                          overloads=_SUM_SIGNATURES)
    out = keep(reduce_sum(x, axes=axes), x._data.shape, axes, keepdim)
    return _named(out, "SumBackward0" if dim is _UNSET else "SumBackward1")


def mean(input: Tensor, dim: Any = _UNSET, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Mean over ``dim``; defined for floating inputs only, as in PyTorch (empty: nan)."""
    x = input if dtype is None else cast(input, as_dtype(dtype))
    if not x.dtype.is_floating_point:
        raise RuntimeError(
            f"mean(): could not infer output dtype. {'Input' if dtype is None else 'Optional'} dtype "
            f"must be either a floating point or complex dtype. Got: {x.dtype.scalar_name}")
    axes = normalize_dims(None if dim is _UNSET else dim, x._data.ndim, name="mean",
                          overloads=_SUM_SIGNATURES)
    n = _count(x._data.shape, axes)
    s = keep(reduce_sum(x, axes=axes), x._data.shape, axes, keepdim)
    # The mean over nothing is nan; adding it (not dividing by 0) keeps numpy quiet and
    # the (empty) input's gradient free of 0/0.
    out = P.div(s, float(n)) if n else P.add(s, _math.nan)
    return _named(out, "MeanBackward0" if dim is _UNSET else "MeanBackward1")


_PROD_SIGNATURES = [
    "Tensor input, *, torch.dtype dtype = None",
    "Tensor input, int dim, bool keepdim = False, *, torch.dtype dtype = None, Tensor out = None"]


def prod(input: Tensor, dim: Any = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:
    """Product over one ``dim`` (or all elements); integer and bool inputs multiply as int64.

    The gradient is the product of the other elements, also where the input has zeros.
    """
    if dim is not None and not is_index(dim):
        raise overload_error("prod", (dim,), _PROD_SIGNATURES)
    x = _integral_to_long(input, dtype)
    axes = normalize_dims(dim, x._data.ndim)
    out = keep(reduce_prod(x, axes=axes), x._data.shape, axes, keepdim)
    return _named(out, "ProdBackward0" if dim is None else "ProdBackward1")


# ---------------------------------------------------------------- max, min, amax, amin

class _ValuesIndices(tuple):
    """(values, indices) with attribute access, printed like ``torch.return_types``."""

    __slots__ = ()
    _kind = ""
    _fields = ("values", "indices")  # namedtuple protocol: rebuilt field by field after tracing

    def __new__(cls, values: Tensor, indices: Tensor) -> "_ValuesIndices":
        return tuple.__new__(cls, (values, indices))

    @property
    def values(self) -> Tensor:
        return self[0]

    @property
    def indices(self) -> Tensor:
        return self[1]

    def __repr__(self) -> str:
        return f"torch.return_types.{self._kind}(\nvalues={self[0]!r},\nindices={self[1]!r})"


max_return = type("max", (_ValuesIndices,), {"__slots__": (), "_kind": "max"})
min_return = type("min", (_ValuesIndices,), {"__slots__": (), "_kind": "min"})


def _max_signatures() -> list[str]:
    return ["Tensor input, *, Tensor out = None",
            "Tensor input, Tensor other, *, Tensor out = None",
            "Tensor input, int dim, bool keepdim = False, *, tuple of Tensors out = None"]


def _no_reduction_dim(name: str) -> RuntimeError:
    return RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                        "Specify the reduction dim with the 'dim' argument.")


def _check_nonempty(name: str, x: Tensor, dim: Any, wrapped: bool = True) -> None:
    """PyTorch's errors for reducing an empty dimension with max/min/amax/amin/argmax."""
    shape = x._data.shape
    for d in _user_dims(dim):
        w = _wrap_dim(d, len(shape))
        if shape and shape[w] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {w if wrapped else d} to have "
                             "non-zero size.")


def _extremum(x: Tensor, dim: Any, keepdim: bool, other: Any, is_max: bool) -> Any:
    name = "max" if is_max else "min"
    if other is None and isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        return (maximum if is_max else minimum)(x, other)
    if dim is None or (dim is _UNSET and keepdim is not _UNSET):
        # (an explicit None, or keepdim without dim: no overload of PyTorch's takes them)
        raise overload_error(name, () if dim is _UNSET else (dim,), _max_signatures(),
                             {} if keepdim is _UNSET else {"keepdim": keepdim})
    if dim is _UNSET:
        if x._data.size == 0:
            raise _no_reduction_dim(name)
        out = extremum_sharing_nan(x, tuple(range(x._data.ndim)), is_max)
        return _named(out, "MaxBackward1" if is_max else "MinBackward1")
    if not is_index(dim):
        raise overload_error(name, (dim,), _max_signatures())
    values, indices = _along(x, operator.index(dim), False if keepdim is _UNSET else keepdim, is_max)
    rt = max_return if is_max else min_return
    return rt(_named(values, "MaxBackward0" if is_max else "MinBackward0"), indices)


def _along(x: Tensor, dim: int, keepdim: bool, is_max: bool) -> tuple[Tensor, Tensor]:
    """Values and indices of the extremum along ``dim``; the gradient goes to that index only."""
    a = _wrap_dim(dim, x._data.ndim)
    _check_nonempty("max" if is_max else "min", x, dim)
    xs = x if x._data.ndim else reshape(x, shape=(1,))
    shape = xs._data.shape
    idx = (_argmax_p if is_max else _argmin_p)(xs, axis=a)
    if differentiating(xs) and xs.dtype.is_floating_point:
        # The element at the index (a -0.0 stays -0.0), its gradient to that index only.
        at = take_along(xs, keep(idx, shape, (a,), True), axis=a)
        values = reshape(at, shape=idx._data.shape)
    else:
        values = (reduce_max if is_max else reduce_min)(xs, axes=(a,))
    if x._data.ndim == 0:
        return values, idx
    return keep(values, shape, (a,), keepdim), keep(idx, shape, (a,), keepdim)


def max(input: Tensor, dim: Any = _UNSET, keepdim: Any = _UNSET, *, other: Any = None) -> Any:
    """``max(input)``: the largest element (ties share the gradient evenly);
    ``max(input, dim, keepdim=False)``: (values, indices) of the first maximum along ``dim``;
    ``max(input, other)``: the elementwise maximum."""
    return _extremum(input, dim, keepdim, other, True)


def min(input: Tensor, dim: Any = _UNSET, keepdim: Any = _UNSET, *, other: Any = None) -> Any:
    """``min(input)``, ``min(input, dim, keepdim=False)`` or ``min(input, other)``; see ``max``."""
    return _extremum(input, dim, keepdim, other, False)


def _amax(x: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Tensor:
    name = "amax" if is_max else "amin"
    if dim is None or (isinstance(dim, (tuple, list)) and not dim):
        if x._data.size == 0:
            raise _no_reduction_dim(name)
    elif isinstance(dim, (tuple, list, Tensor)) or is_index(dim):
        _check_nonempty(name, x, dim, wrapped=False)  # (before duplicate dims, as PyTorch)
    axes = normalize_dims(dim, x._data.ndim, name=name)
    out = keep((reduce_max if is_max else reduce_min)(x, axes=axes), x._data.shape, axes, keepdim)
    return _named(out, "AmaxBackward0" if is_max else "AminBackward0")


def extremum_sharing_nan(x: Tensor, axes: tuple[int, ...], is_max: bool) -> Tensor:
    """The maximum (minimum) over ``axes``, whose gradient a NaN result shares evenly among
    the NaN elements (ties among equal elements otherwise), as PyTorch's max()/min() and
    inf-norm backward do; amax/amin's (the reduction primitives' rule) is NaN there instead.

    Where a slice holds a NaN the result is the mean of its NaNs (NaN), else the extremum of
    the slice, computed without them so that its own gradient stays finite.
    """
    reduce = reduce_max if is_max else reduce_min
    if not x.dtype.is_floating_point or not differentiating(x):
        return reduce(x, axes=axes)
    isnan = P.ne(x, x)
    nans = reduce_sum(P.convert(isnan, dtype=x.dtype), axes=axes)
    has_nan = P.gt(nans, 0.0)
    extremum = reduce(P.select(isnan, -_INF if is_max else _INF, x), axes=axes)
    nan_mean = P.div(reduce_sum(P.select(isnan, x, 0.0), axes=axes), P.select(has_nan, nans, 1.0))
    return P.select(has_nan, nan_mean, extremum)


def amax(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (all dims by default); ties share the gradient evenly."""
    return _amax(input, dim, keepdim, True)


def amin(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Minimum over ``dim`` (all dims by default); ties share the gradient evenly."""
    return _amax(input, dim, keepdim, False)


def _arg(x: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Tensor:
    name = "argmax" if is_max else "argmin"
    prim = _argmax_p if is_max else _argmin_p
    if x.dtype is bool_:
        raise RuntimeError(f"{name}(): does not support bool input")
    nd = x._data.ndim
    if dim is None:
        if x._data.size == 0:
            raise IndexError(f"{name}(): Expected reduction dim to be specified for "
                             "input.numel() == 0.")
        out = prim(reshape(x, shape=(x._data.size,)), axis=0)
        return reshape(out, shape=(1,) * nd) if keepdim and nd else out
    if not is_index(dim):
        raise argument_error(name, "dim", 1, "int", dim)
    a = _wrap_dim(operator.index(dim), nd)
    if nd == 0:
        return prim(reshape(x, shape=(1,)), axis=0)
    _check_nonempty(name, x, dim)
    return keep(prim(x, axis=a), x._data.shape, (a,), keepdim)


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index (int64) of the first maximum along ``dim``, or in the flattened input."""
    return _arg(input, dim, keepdim, True)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index (int64) of the first minimum along ``dim``, or in the flattened input."""
    return _arg(input, dim, keepdim, False)


# ---------------------------------------------------------------- all, any, count_nonzero

_ALL_SIGNATURES = _signatures(["tuple of ints dim = None", "int dim"], ", *, Tensor out = None")


def _logical(x: Tensor, dim: Any, keepdim: bool, is_all: bool) -> Tensor:
    shape = x._data.shape
    axes = normalize_dims(dim, len(shape), empty_is_all=False, name="all" if is_all else "any",
                          overloads=_ALL_SIGNATURES)
    if _count(shape, axes) == 0 and axes:
        # Nothing to look at: all() is True, any() is False.
        n = reduce_sum(P.convert(x, dtype=int64), axes=axes)
        out = (P.eq if is_all else P.ne)(n, 0)
    else:
        out = (reduce_min if is_all else reduce_max)(cast(x, bool_), axes=axes)
    return keep(out, shape, axes, keepdim)


def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Whether every element over ``dim`` is nonzero (bool; True over an empty dim)."""
    return _logical(input, dim, keepdim, True)


def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Whether some element over ``dim`` is nonzero (bool; False over an empty dim)."""
    return _logical(input, dim, keepdim, False)


def count_nonzero(input: Tensor, dim: Any = None) -> Tensor:
    """The number (int64) of nonzero elements over ``dim`` (all dims by default)."""
    axes = normalize_dims(dim, input._data.ndim, name="count_nonzero",
                          overloads=["Tensor input, tuple of ints dim", "Tensor input, int? dim = None"])
    return reduce_sum(P.convert(P.ne(input, 0), dtype=int64), axes=axes)


_NAMES = ["sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "all", "any",
          "count_nonzero"]
METHODS = {name: globals()[name] for name in _NAMES}
FUNCTIONS = list(_NAMES)
# The torch-level functions check that their input is a Tensor (the methods need not).
sum, mean, prod, max, min, amax, amin, argmax, argmin, count_nonzero = (
    tensor_function(METHODS[n]) for n in ["sum", "mean", "prod", "max", "min", "amax", "amin",
                                          "argmax", "argmin", "count_nonzero"])
all, any = (tensor_function(METHODS[n], overloads=_ALL_SIGNATURES) for n in ["all", "any"])
