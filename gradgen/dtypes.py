"""gradgen's dtypes and PyTorch's type-promotion rules.

A gradgen dtype wraps one numpy dtype. Promotion follows PyTorch: the
category order is bool < integer < floating; tensors with dimensions win over
0-d tensors, which win over Python scalars, unless a lower-priority operand is
of a higher category (``int_tensor + 2.5`` is float, ``f32_tensor + f64_0d`` is
float32).
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = [
    "dtype", "float32", "float64", "int32", "int64", "bool_",
    "get_default_dtype", "set_default_dtype", "as_dtype", "from_numpy_dtype",
    "promote_types", "result_type",
]


class dtype:
    """A tensor element type (``gradgen.float32``, ...); prints like PyTorch's."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "short", "_rank",
                 "scalar_name")

    def __init__(self, name: str, np_dtype: Any, floating: bool, short: str, rank: int,
                 scalar_name: str) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = floating
        self.is_signed = name != "bool"
        self.itemsize = self.np.itemsize
        self.short = short          # IR spelling: f32, f64, i32, i64, bool
        self._rank = rank           # position in the promotion order
        self.scalar_name = scalar_name  # PyTorch's C++ ScalarType name, as its messages print it

    @property
    def is_complex(self) -> bool:
        return False

    def __repr__(self) -> str:
        # Printed with PyTorch's prefix so scripts run with `import gradgen as
        # torch` print exactly what PyTorch prints.
        return f"torch.{self.name}"

    def __reduce__(self) -> str:
        return self.name


bool_ = dtype("bool", np.bool_, False, "bool", 0, "Bool")
int32 = dtype("int32", np.int32, False, "i32", 1, "Int")
int64 = dtype("int64", np.int64, False, "i64", 2, "Long")
float32 = dtype("float32", np.float32, True, "f32", 3, "Float")
float64 = dtype("float64", np.float64, True, "f64", 4, "Double")

_ALL = (bool_, int32, int64, float32, float64)
_BY_NP = {d.np: d for d in _ALL}
_BY_RANK = {d._rank: d for d in _ALL}


def _category(d: dtype) -> int:
    return 2 if d.is_floating_point else (0 if d is bool_ else 1)


class _DefaultDtype(threading.local):
    value: dtype = float32


_default = _DefaultDtype()


def get_default_dtype() -> dtype:
    """The floating dtype Python floats and factory functions produce (float32)."""
    return _default.value


def set_default_dtype(d: dtype) -> None:
    """Set the default floating dtype; only float32 and float64 are allowed."""
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default.value = d


def from_numpy_dtype(npd: Any) -> dtype:
    """The gradgen dtype of a numpy dtype; unsupported ones raise TypeError naming it."""
    npd = np.dtype(npd)
    d = _BY_NP.get(npd)
    if d is not None:
        return d
    raise TypeError(
        f"can't convert np.ndarray of type numpy.{npd}. The only supported types are: "
        "float64, float32, int64, int32, and bool.")


def as_dtype(d: Any) -> dtype:
    """Accept a gradgen dtype, a numpy dtype, or a Python type (float, int, bool)."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return float64
    if d is int:
        return int64
    if d is bool:
        return bool_
    try:
        npd = np.dtype(d)
    except TypeError:
        raise TypeError(f"dtype must be a gradgen dtype such as gradgen.float32, got {d!r}") from None
    return from_numpy_dtype(npd)


def promote_types(a: dtype, b: dtype) -> dtype:
    """The smallest dtype both ``a`` and ``b`` convert to (PyTorch's table on these five)."""
    return a if a._rank >= b._rank else b


# The Python ints PyTorch takes as a Scalar: int64 or uint64 values.
_SCALAR_INT_MIN, _SCALAR_INT_END = -2**63, 2**64


def scalar_overflow(x: Any) -> None:
    """PyTorch's OverflowError for a Python int no Scalar holds (beyond int64 and uint64)."""
    if type(x) is int and not _SCALAR_INT_MIN <= x < _SCALAR_INT_END:
        raise OverflowError("int too big to convert" if x > 0 else
                            "can't convert negative int to unsigned")


def result_type(*operands: Any) -> dtype:
    """PyTorch's result type of an operation over tensors and Python scalars.

    Tensors are anything with ``dtype`` and ``ndim``; Python bool/int/float are
    "wrapped numbers" that only raise the category.
    """
    dim_r: dtype | None = None
    zero_r: dtype | None = None
    wrap_r: dtype | None = None
    for x in operands:
        if isinstance(x, bool):
            d, slot = bool_, 2
        elif isinstance(x, int):
            d, slot = int64, 2
        elif isinstance(x, float):
            d, slot = get_default_dtype(), 2
        else:
            d, slot = x.dtype, (0 if x.ndim > 0 else 1)
        if slot == 0:
            dim_r = d if dim_r is None else promote_types(dim_r, d)
        elif slot == 1:
            zero_r = d if zero_r is None else promote_types(zero_r, d)
        else:
            wrap_r = d if wrap_r is None else promote_types(wrap_r, d)
    d = _combine(dim_r, _combine(zero_r, wrap_r))
    if d is None:
        raise TypeError("result_type needs at least one operand")
    return d


def _combine(higher: dtype | None, lower: dtype | None) -> dtype | None:
    if higher is None:
        return lower
    if lower is None or higher.is_floating_point:
        return higher
    if higher is bool_ or lower.is_floating_point:
        return promote_types(higher, lower)
    return higher
