"""Statistics over dimensions: var, std, logsumexp, norm (and vector_norm).

Composites of the reduction and elementwise primitives, named like PyTorch's
backward classes; the dim handling is shared with ``reductions``.
"""
from __future__ import annotations

import builtins
import warnings
from typing import Any

import numpy as np

from ..dtypes import as_dtype, get_default_dtype
from ..ops import elementwise as P
from ..ops.reduce import reduce_max, reduce_sum
from ..tensor import Tensor, _wrap_dim
from ._operands import (argument_error, cast, differentiating, is_index, overload_error,
                        tensor_function, type_name, user_stacklevel)
from .math import _named
from .reductions import (_UNSET, _INF, _count, _restore,
                         _user_dims, extremum_sharing_nan, keep, normalize_dims)

# ---------------------------------------------------------------- var, std

_VAR_SIGNATURES = [
    "Tensor input, tuple of ints dim, bool unbiased = True, bool keepdim = False, *, "
    "Tensor out = None",
    "Tensor input, tuple of ints dim = None, *, Number correction = None, bool keepdim = False, "
    "Tensor out = None",
    "Tensor input, bool unbiased = True"]


def _correction(name: str, x: Tensor, dim: Any, unbiased: Any, correction: Any) -> tuple:
    """Sort out PyTorch's overloads: returns (dim, correction)."""
    if isinstance(dim, bool) and unbiased is None:
        dim, unbiased = None, dim
    bad_dim = dim is not None and not is_index(dim) and not isinstance(dim, (tuple, list))
    if bad_dim or (unbiased is not None and (correction is not None
                                             or not isinstance(unbiased, bool))):
        got = tuple(a for a in (dim, unbiased) if a is not None)
        raise overload_error(name, got, _VAR_SIGNATURES,
                             {} if correction is None else {"correction": correction})
    if not x.dtype.is_floating_point:  # (checked before the dims, as PyTorch)
        raise RuntimeError("std and var only support floating point and complex dtypes")
    if correction is None:
        correction = 0 if unbiased is False else 1
    return dim, float(correction)


def _variance(name: str, x: Tensor, axes: tuple[int, ...], correction: float) -> Tensor:
    shape = x._data.shape
    n = _count(shape, axes)
    dof = n - correction
    if dof <= 0:
        warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly less "
                      "than the reduction factor (input numel divided by output numel).",
                      UserWarning, stacklevel=user_stacklevel())
    if n == 0:
        # The mean of nothing is nan, so is the variance (whatever the correction; adding
        # nan to the empty sum keeps numpy quiet).
        return P.add(reduce_sum(x, axes=axes), np.nan)
    if dof <= 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            return _squared_deviations(x, axes, n, builtins.max(0.0, dof))
    return _squared_deviations(x, axes, n, dof)


def _squared_deviations(x: Tensor, axes: tuple[int, ...], n: int, divisor: float) -> Tensor:
    centered = P.sub(x, _restore(P.div(reduce_sum(x, axes=axes), float(n)), x._data.shape, axes))
    return P.div(reduce_sum(P.mul(centered, centered), axes=axes), float(divisor))


def var(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    """Variance over ``dim``: sum((x - mean)**2) / max(0, N - correction); correction=1 default."""
    dim, c = _correction("var", input, dim, unbiased, correction)
    axes = normalize_dims(dim, input._data.ndim, name="var", overloads=_VAR_SIGNATURES)
    out = _variance("var", input, axes, c)
    return _named(keep(out, input._data.shape, axes, keepdim), "VarBackward0")


def std(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    """Standard deviation over ``dim`` (sqrt of ``var``); its gradient is 0 where it is 0."""
    dim, c = _correction("std", input, dim, unbiased, correction)
    axes = normalize_dims(dim, input._data.ndim, name="std", overloads=_VAR_SIGNATURES)
    out = _root(_variance("std", input, axes, c), 0.5, differentiating(input))
    return _named(keep(out, input._data.shape, axes, keepdim), "StdBackward0")


def _root(s: Tensor, e: float, guarded: bool) -> Tensor:
    """``s ** e`` (e = 1/p); when ``guarded``, its gradient is 0 where s == 0 (PyTorch's rule)."""
    if not guarded:
        return P.sqrt(s) if e == 0.5 else P.pow(s, e)
    zero = P.eq(s, 0.0)
    safe = P.select(zero, 1.0, s)
    return P.select(zero, 0.0 if e > 0 else _INF, P.sqrt(safe) if e == 0.5 else P.pow(safe, e))


# ---------------------------------------------------------------- logsumexp, norm

def logsumexp(input: Tensor, dim: Any = _UNSET, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``dim``, computed stably by subtracting the (detached) maximum."""
    if dim is _UNSET:
        raise TypeError('logsumexp() missing 1 required positional arguments: "dim"')
    if dim is None:  # (no "all dims" here: PyTorch's dim is a required tuple of ints)
        raise argument_error("logsumexp", "dim", 1, "tuple of ints", dim)
    x = input if input.dtype.is_floating_point else cast(input, get_default_dtype())
    shape = x._data.shape
    axes = normalize_dims(dim, len(shape), name="logsumexp")
    if _count(shape, axes) == 0:
        out = P.add(reduce_sum(x, axes=axes), -_INF)  # log(0), written so numpy does not warn
    else:
        m = reduce_max(P.stop_gradient(x), axes=axes)
        # An infinite maximum is not subtracted (it would make inf - inf = nan).
        m = P.select(P.eq(P.abs_(m), _INF), 0.0, m)
        s = reduce_sum(P.exp(P.sub(x, _restore(m, shape, axes))), axes=axes)
        out = P.add(P.log(s), m)
    return _named(keep(out, shape, axes, keepdim), "LogsumexpBackward0")


def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False, out: Any = None,
         dtype: Any = None) -> Tensor:
    """Vector p-norm over ``dim`` (all elements by default); 'fro' is the 2-norm.

    p may be 2, 1, inf, -inf, 0 or any other float; the gradient at the zero vector is 0.
    """
    if out is not None:
        raise NotImplementedError("gradgen does not support the out= argument")
    if isinstance(p, str):
        if p == "fro" and (dim is None or is_index(dim) or len(dim) <= 2):
            p = 2.0
        elif p == "fro":
            raise RuntimeError("linalg.matrix_norm: dim must be a 2-tuple. Got "
                               + " ".join(map(str, dim)))
        elif p == "nuc":
            raise NotImplementedError("gradgen does not support the nuclear norm (p='nuc')")
        else:
            raise RuntimeError(f"linalg.matrix_norm: Order {p} not supported.")
    return vector_norm(input, 2.0 if p is None else p, dim, keepdim, dtype=dtype)


def vector_norm(x: Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:
    """``linalg.vector_norm``: (sum |x|**ord) ** (1/ord) over ``dim``; max/min |x| for +-inf."""
    if not x.dtype.is_floating_point:  # (checked before the cast to dtype, as PyTorch)
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as "
                           f"input. Got {x.dtype.scalar_name}")
    if dtype is not None:
        x = cast(x, as_dtype(dtype))
    _check_norm_args(ord, dim)
    p = float(ord)
    shape = x._data.shape
    axes = normalize_dims(dim, len(shape))
    if x._data.size == 0 and (p < 0 or p == _INF):
        _empty_norm_check(p, dim, shape)
    diff = differentiating(x)
    if 0 < p < _INF and int(np.prod([shape[a] for a in axes])) == 1:
        # One element per result: |x|, as PyTorch gives it (x * x could overflow or underflow).
        out = reduce_sum(P.abs_(x), axes=axes)
    elif p == 2:
        out = _root(reduce_sum(P.mul(x, x), axes=axes), 0.5, diff)
    elif p == 1:
        out = reduce_sum(P.abs_(x), axes=axes)
    elif p == _INF or p == -_INF:
        out = extremum_sharing_nan(P.abs_(x), axes, p > 0)
    elif p == 0:
        # Counts nonzeros; the x * 0 branch keeps the (zero) gradient connected.
        out = reduce_sum(P.select(P.ne(x, 0.0), 1.0, P.mul(x, 0.0)), axes=axes)
    else:
        out = _root(reduce_sum(_abs_pow(x, p, diff), axes=axes), 1.0 / p, diff)
    return _named(keep(out, shape, axes, keepdim), "LinalgVectorNormBackward0")


def _check_norm_args(ord: Any, dim: Any) -> None:
    """PyTorch's TypeErrors for an ``ord`` that is no number and a ``dim`` that is no dims."""
    if not isinstance(ord, (int, float, np.number, Tensor)):
        raise TypeError("linalg_vector_norm(): argument 'ord' (position 2) must be Number, not "
                        f"{type_name(ord)}")
    if dim is None or is_index(dim) or isinstance(dim, (tuple, list)):
        return
    what = ("but found element of type bool at pos 0" if isinstance(dim, bool)
            else f"not {type_name(dim)}")
    raise TypeError(f"linalg_vector_norm(): argument 'dim' (position 3) must be tuple of ints, {what}")


def _abs_pow(x: Tensor, p: float, guarded: bool) -> Tensor:
    """|x| ** p; for p < 1 (when ``guarded``) with a zero gradient where x == 0, as PyTorch."""
    a = P.abs_(x)
    if not guarded or p >= 1:
        return P.pow(a, p)
    zero = P.eq(a, 0.0)
    return P.select(zero, 0.0 if p > 0 else _INF, P.pow(P.select(zero, 1.0, a), p))


def _empty_norm_check(p: float, dim: Any, shape: tuple) -> None:
    what = f"{p:g} norm"
    if dim is None or not _user_dims(dim):
        raise RuntimeError(f"linalg.vector_norm cannot compute the {what} on an empty tensor "
                           "because the operation does not have an identity")
    for d in _user_dims(dim):
        if shape and shape[_wrap_dim(int(d), len(shape))] == 0:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {what} on the dimension "
                               f"{d}because this dimension is empty and the operation does not "
                               "have an identity")

_NAMES = ["var", "std", "logsumexp", "norm"]
METHODS = {name: globals()[name] for name in _NAMES}
FUNCTIONS = list(_NAMES)
# The torch-level functions check that their input is a Tensor (the methods need not).
var, std = (tensor_function(METHODS[n], overloads=_VAR_SIGNATURES) for n in ["var", "std"])
logsumexp, norm = tensor_function(logsumexp), tensor_function(norm)
