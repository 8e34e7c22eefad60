"""Elementwise math: arithmetic, unary functions, comparisons, where and clamp.

Each function promotes and broadcasts its operands (``_operands``), applies one
primitive or a short composite of primitives, and names the result's grad_fn
the way PyTorch does.
"""
from __future__ import annotations

import math as _math
from typing import Any

import numpy as np

from ..autograd import record
from ..autograd.node import rename, saves_number
from ..dtypes import bool_, get_default_dtype, result_type, scalar_overflow
from ..ops import elementwise as P
from ..tensor import Tensor
from ._nan import nan_mask, nan_matters, no_gradient_where
from ._operands import (as_tensor_operand, broadcast_shape_of, broadcast_shapes, cast,
                        checked_number, elementwise_operands, expand_to)
from .inplace_checks import _NUMBERS


def _named(t: Tensor, name: str | type | None) -> Tensor:
    if name is not None and t._grad_fn is not None:
        rename(t._grad_fn, name)
    return t


def _apply(prim: Any, *xs: Any, name: str | None = None, compute: Any = None) -> Tensor:
    if compute is None and len(xs) == 2 and type(xs[0]) is Tensor:
        # Fast paths (most calls): same-typed tensors, or a float tensor and a Python
        # number, which bind converts to the tensor's dtype (a "weak" scalar, as in PyTorch).
        a, b = xs
        da = a._data
        if type(b) is Tensor:
            if da.dtype == b._data.dtype and da.shape == b._data.shape:
                return _named(prim(a, b), name)
        elif (type(b) is float or type(b) is int) and da.dtype.kind == "f":
            return _named(prim(a, b), name)
    ops, _ = elementwise_operands(*xs, compute=compute)
    return _named(prim(*ops), name)


def _floating(x: Any) -> Tensor:
    """``x`` as a floating tensor (integer and bool tensors become the default dtype)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a Tensor, got {type(x).__name__}")
    return x if x._data.dtype.kind == "f" else cast(x, get_default_dtype())


def _float_compute(*xs: Any):
    d = result_type(*(as_tensor_operand(x) for x in xs))
    return d if d.is_floating_point else get_default_dtype()


# ---------------------------------------------------------------- arithmetic

def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input + alpha * other`` with broadcasting and type promotion."""
    if type(alpha) is not int or alpha != 1:  # (alpha=True or 1.0 is checked, as in PyTorch)
        other = _times_alpha(input, other, alpha)
    return _apply(P.add, input, other)


def _times_alpha(input: Any, other: Any, alpha: Any) -> Any:
    """``other * alpha`` in the type of ``input + other``: alpha promotes nothing, as in
    PyTorch (a float ``alpha`` of an integer sum and a bool one of a non-bool sum are refused;
    a number ``other`` is scaled in Python's double precision, as PyTorch's kernels do)."""
    d = result_type(as_tensor_operand(input), as_tensor_operand(other))
    if not _is_number(alpha):
        raise TypeError(f"alpha must be a number, not {type(alpha).__name__}")
    scalar_overflow(alpha)
    if isinstance(alpha, (bool, np.bool_)):
        if d is not bool_:
            raise RuntimeError("Boolean alpha only supported for Boolean results.")
    elif not d.is_floating_point and isinstance(alpha, (float, np.floating)):
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating "
                           "point number.")
    if alpha == 1:
        return other
    if d is bool_:  # (any alpha other than 0 is True for a bool sum)
        alpha = bool(alpha)
    if not isinstance(other, Tensor):
        return bool(other) and alpha if d is bool_ else other * alpha
    # (PyTorch's node saves no alpha: the plain primitive, not mul())
    return _apply(P.mul, cast(other, d), alpha)


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input - alpha * other``."""
    bools = [type(a) is bool or (isinstance(a, Tensor) and a.dtype is bool_)
             for a in (input, other)]
    if all(bools):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not "
                           "supported. Use the `^` or `logical_xor()` operator instead.")
    if any(bools):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` "
                           "operator instead.")
    if type(alpha) is not int or alpha != 1:
        other = _times_alpha(input, other, alpha)
    return _apply(P.sub, input, other)


def mul(input: Any, other: Any) -> Tensor:
    out = _apply(P.mul, input, other)
    return saves_number(out) if _is_number(input) or _is_number(other) else out


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """True division; integer operands divide as the default float dtype."""
    if rounding_mode is not None:
        raise NotImplementedError("div: rounding_mode is not supported; use true division")
    out = _apply(P.div, input, other, compute=_float_compute(input, other))
    return saves_number(out) if _is_number(other) else out


def _is_number(x: Any) -> bool:
    return isinstance(x, _NUMBERS)


true_divide = divide = div
subtract = sub
multiply = mul


def pow(input: Any, exponent: Any) -> Tensor:
    """``input ** exponent``."""
    input, exponent = as_tensor_operand(input), as_tensor_operand(exponent)  # (numpy values)
    base_t, exp_t = isinstance(input, Tensor), isinstance(exponent, Tensor)
    d = result_type(input, exponent)
    if not d.is_floating_point and isinstance(exponent, int) and exponent < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    if d is bool_ and exp_t and (base_t or isinstance(input, bool)):
        raise NotImplementedError("\"pow\" not implemented for 'Bool'")
    name = "PowBackward0" if not exp_t else ("PowBackward1" if base_t else "PowBackward2")
    return _apply(P.pow, input, exponent, name=name)


def square(input: Tensor) -> Tensor:
    return pow(input, 2)


def neg(input: Tensor) -> Tensor:
    if input.dtype is bool_:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are "
                           "trying to invert a mask, use the `~` or `logical_not()` operator instead.")
    return P.neg(input)


negative = neg


def abs(input: Tensor) -> Tensor:
    if input.dtype is bool_:
        raise NotImplementedError("\"abs_cpu\" not implemented for 'Bool'")
    return P.abs_(input)


absolute = abs


def sign(input: Tensor) -> Tensor:
    return P.sign(input)


def reciprocal(input: Tensor) -> Tensor:
    x = _floating(input)
    return _named(P.div(1.0, x), "ReciprocalBackward0")


def rsqrt(input: Tensor) -> Tensor:
    x = _floating(input)
    return _named(P.div(1.0, P.sqrt(x)), "RsqrtBackward0")


def _unary(prim: Any, doc: str):
    def fn(input: Tensor) -> Tensor:
        return prim(_floating(input))
    fn.__name__ = prim.name if prim.name != "logistic" else "sigmoid"
    fn.__doc__ = doc
    return fn


exp = _unary(P.exp, "Elementwise e**x.")
log = _unary(P.log, "Elementwise natural logarithm.")
log1p = _unary(P.log1p, "Elementwise log(1 + x), accurate near 0.")
expm1 = _unary(P.expm1, "Elementwise exp(x) - 1, accurate near 0.")
sqrt = _unary(P.sqrt, "Elementwise square root.")
sin = _unary(P.sin, "Elementwise sine.")
cos = _unary(P.cos, "Elementwise cosine.")
tanh = _unary(P.tanh, "Elementwise hyperbolic tangent.")
sigmoid = _unary(P.logistic, "Elementwise logistic function 1 / (1 + exp(-x)).")
erf = _unary(P.erf, "Elementwise error function.")


def relu(input: Tensor) -> Tensor:
    """max(x, 0); the gradient is 1 where x > 0 and 0 elsewhere (also at 0)."""
    if input.dtype is bool_:
        raise RuntimeError("Boolean inputs not supported for relu")
    return _named(P.select(P.le(input, 0), 0, input), "ReluBackward0")


def log2(input: Tensor) -> Tensor:
    return _named(P.div(log(input), _math.log(2.0)), "Log2Backward0")


def log10(input: Tensor) -> Tensor:
    return _named(P.div(log(input), _math.log(10.0)), "Log10Backward0")


# ---------------------------------------------------------------- binary selections

def maximum(input: Tensor, other: Tensor) -> Tensor:
    return _apply(P.maximum, input, other)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return _apply(P.minimum, input, other)


def where(condition: Tensor, input: Any, other: Any) -> Tensor:
    """Elements of ``input`` where ``condition`` holds, else of ``other``."""
    if not isinstance(condition, Tensor) or condition.dtype is not bool_:
        # PyTorch names the dtype by its C++ scalar type (Float, Long), not torch.float32.
        got = (condition.dtype.scalar_name if isinstance(condition, Tensor)
               else type(condition).__name__)
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {got}")
    d = result_type(as_tensor_operand(input), as_tensor_operand(other))
    _checked_numbers(d, input, other)
    return _select(condition, input, other, d)


def _checked_numbers(d: Any, *xs: Any) -> None:
    """PyTorch refuses a number ``where``/``clamp`` cannot hold in their result type ``d``
    (arithmetic wraps it instead, see ``cast``)."""
    for x in xs:
        if _is_number(x):
            checked_number(x, d)


def _select(condition: Tensor, input: Any, other: Any, d: Any, name: str | None = None) -> Tensor:
    (a, b), _ = elementwise_operands(input, other, compute=d)
    ops, _ = _broadcast_with(condition, a, b)
    return _named(P.select(*ops), name)


def _broadcast_with(*xs: Any):
    shape = broadcast_shape_of(xs)
    return [expand_to(x, shape) for x in xs], shape


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Clamp into [min, max]; the gradient passes where min <= x <= max (PyTorch's rule).

    A NaN in ``input`` or a bound gives NaN, as in PyTorch, and no gradient to ``input`` (no
    comparison with a NaN holds); a bound beyond which ``input`` lies keeps its gradient.
    """
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    tensor_bounds = isinstance(min, Tensor) or isinstance(max, Tensor)
    d = result_type(*(as_tensor_operand(v) for v in (input, min, max) if v is not None))
    _checked_numbers(d, min, max)
    if d is bool_:
        kernel = "clamp_cpu" if tensor_bounds else "clamp_scalar_cpu"
        raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool'")
    out = input if input.dtype is d else cast(input, d)
    nan = None
    if nan_matters(input, min, max):
        shape = broadcast_shape_of((input, min, max))
        nan = nan_mask((input, min, max), shape)
    if nan is not None:
        out = no_gradient_where(nan, out, shape)
        if isinstance(min, Tensor) and max is not None:
            # PyTorch passes min its gradient only where min < max: never for a NaN max.
            hi_nan = nan_mask((max,), shape)
            min = min if hi_nan is None else no_gradient_where(hi_nan, min, shape)
    if min is not None:
        out = _select(lt(out, min), min, out, d)
    if max is not None:
        out = _select(gt(out, max), max, out, d)
    if nan is not None:
        # NaN where an operand is NaN (the selects pass x there); -0.0 + y is y elsewhere.
        out = P.add(out, P.select(nan, np.asarray(_math.nan, d.np), np.asarray(-0.0, d.np)))
    return _named(out, "ClampBackward0" if tensor_bounds else "ClampBackward1")


clip = clamp


def clamp_min(input: Tensor, min: Any) -> Tensor:
    name = "ClampMinBackward1" if isinstance(min, Tensor) else "ClampMinBackward0"
    return _named(clamp(input, min=min), name)


def clamp_max(input: Tensor, max: Any) -> Tensor:
    name = "ClampMaxBackward1" if isinstance(max, Tensor) else "ClampMaxBackward0"
    return _named(clamp(input, max=max), name)


# ---------------------------------------------------------------- comparisons and logic

def _compare(prim: Any):
    def fn(input: Any, other: Any) -> Tensor:
        return _apply(prim, input, other)
    fn.__name__ = prim.name
    return fn


lt = less = _compare(P.lt)
le = less_equal = _compare(P.le)
gt = greater = _compare(P.gt)
ge = greater_equal = _compare(P.ge)
eq = _compare(P.eq)
ne = not_equal = _compare(P.ne)


def _logical(prim: Any):
    def fn(input: Any, other: Any) -> Tensor:
        return _apply(prim, input, other, compute=bool_)
    fn.__name__ = "logical_" + prim.name
    return fn


logical_and = _logical(P.logical_and)
logical_or = _logical(P.logical_or)


def logical_not(input: Tensor) -> Tensor:
    return P.logical_not(cast(input, bool_))


def isnan(input: Tensor) -> Tensor:
    return P.ne(input, input)


def isinf(input: Tensor) -> Tensor:
    if input._data.dtype.kind != "f":
        return P.ne(input, input)
    return P.eq(P.abs_(input), float("inf"))


def isfinite(input: Tensor) -> Tensor:
    return logical_not(logical_or(isnan(input), isinf(input)))


def _tensors(fn: str, input: Any, other: Any) -> None:
    for pos, (name, x) in enumerate((("input", input), ("other", other)), 1):
        if not isinstance(x, Tensor):
            raise TypeError(f"{fn}(): argument '{name}' (position {pos}) must be Tensor, not "
                            f"{type(x).__name__}")


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and elements (of any dtypes)."""
    _tensors("equal", input, other)
    return input.shape == other.shape and bool(eq(input, other).all()) if input.numel() else input.shape == other.shape


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """``|input - other| <= atol + rtol * |other|`` everywhere (broadcast), of one dtype."""
    _tensors("allclose", input, other)
    if input.dtype is not other.dtype:
        raise RuntimeError(f"{input.dtype.scalar_name} did not match {other.dtype.scalar_name}")
    broadcast_shapes(input._data.shape, other._data.shape)
    a, b = (record.values(t._data, "allclose") for t in (input, other))
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


METHODS = {
    "add": add, "sub": sub, "mul": mul, "div": div, "true_divide": div, "subtract": sub,
    "multiply": mul, "divide": div, "pow": pow, "square": square, "neg": neg, "negative": neg,
    "abs": abs, "absolute": abs, "sign": sign, "reciprocal": reciprocal, "rsqrt": rsqrt,
    "exp": exp, "log": log, "log1p": log1p, "expm1": expm1, "sqrt": sqrt, "sin": sin, "cos": cos,
    "tanh": tanh, "sigmoid": sigmoid, "erf": erf, "relu": relu, "log2": log2, "log10": log10,
    "maximum": maximum, "minimum": minimum, "where": lambda self, c, o: where(c, self, o),
    "clamp": clamp, "clip": clamp, "clamp_min": clamp_min, "clamp_max": clamp_max,
    "lt": lt, "le": le, "gt": gt, "ge": ge, "eq": eq, "ne": ne, "less": lt, "greater": gt,
    "logical_and": logical_and, "logical_or": logical_or, "logical_not": logical_not,
    "isnan": isnan, "isinf": isinf, "isfinite": isfinite, "equal": equal, "allclose": allclose,
}

FUNCTIONS = [
    "add", "sub", "mul", "div", "true_divide", "divide", "subtract", "multiply", "pow", "square",
    "neg", "negative", "abs", "absolute", "sign", "reciprocal", "rsqrt", "exp", "log", "log1p",
    "expm1", "sqrt", "sin", "cos", "tanh", "sigmoid", "erf", "relu", "log2", "log10", "maximum",
    "minimum", "where", "clamp", "clip", "clamp_min", "clamp_max", "lt", "le", "gt", "ge", "eq",
    "ne", "less", "less_equal", "greater", "greater_equal", "not_equal", "logical_and",
    "logical_or", "logical_not", "isnan", "isinf", "isfinite", "equal", "allclose",
]
