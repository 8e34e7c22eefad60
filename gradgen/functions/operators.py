"""Python's operators on tensors (``+ - * / ** < == & | ~`` and the reflected forms): each calls
the function of ``math`` PyTorch's operator calls, with PyTorch's operator-only behaviour (``2 - x``
is ``rsub``, ``2 / x`` is ``x.reciprocal() * 2``) and a fast path for the commonest calls."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import record
from ..autograd.node import saves_number
from ..dtypes import bool_
from ..ops import elementwise as P
from ..tensor import Tensor
from ._operands import is_operand
from .math import (_named, abs, add, div, eq, ge, gt, le, logical_and, logical_not, logical_or, lt,
                   mul, ne, neg, pow, reciprocal, sub)


def _fast_binop(fn: Any, prim: Any, reflected: bool = False, number_saved: bool = False):
    """An operator whose common cases (a float tensor with a Python number, or two float
    tensors of one dtype and shape) go straight to the primitive: eager speed on small tensors
    is Python frames, and these are the most frequent calls. ``number_saved``: PyTorch's node
    saves the number (see ``saves_number``)."""
    general = _binop(fn, reflected)
    bind = record.bind
    no_params: dict = {}

    def op(self: Tensor, other: Any) -> Any:
        t = type(other)
        d = self._data
        if t is float or t is int:
            if d.dtype.kind == "f":
                out = bind(prim, (other, self) if reflected else (self, other), no_params)
                return saves_number(out) if number_saved and out._grad_fn is not None else out
        elif t is Tensor:
            o = other._data
            if o.dtype == d.dtype and o.shape == d.shape and d.dtype.kind == "f":
                return bind(prim, (other, self) if reflected else (self, other), no_params)
        return general(self, other)
    return op


def _rsub(self: Tensor, other: Any) -> Any:
    """``other - self``: PyTorch's ``rsub`` (RsubBackward1), where ``torch.sub(2, x)`` is a
    subtraction (SubBackward0)."""
    return _named(sub(other, self), "RsubBackward1") if is_operand(other) else NotImplemented


def _rtruediv(self: Tensor, other: Any) -> Any:
    """``other / self``: PyTorch computes ``self.reciprocal() * other`` (MulBackward0; so
    ``0.0 / tiny`` is NaN), where ``torch.div(2, x)`` is a division (DivBackward0)."""
    return mul(reciprocal(self), other) if is_operand(other) else NotImplemented


def _binop(fn: Any, reflected: bool = False):
    if reflected:
        def op(self: Tensor, other: Any) -> Any:
            return fn(other, self) if is_operand(other) else NotImplemented
    else:
        def op(self: Tensor, other: Any) -> Any:
            return fn(self, other) if is_operand(other) else NotImplemented
    return op


def _bool_only(fn: Any, what: str, reflected: bool = False):
    """``&`` / ``|`` of bool operands, which are the logical operations. PyTorch's are bitwise,
    which gradgen does not offer: any other operand (an integer or float tensor, a number other
    than a bool) is refused rather than given a bool result."""
    def op(self: Tensor, other: Any) -> Any:
        if not is_operand(other):
            return NotImplemented
        for x in (self, other):
            d = x.dtype if isinstance(x, Tensor) else type(x).__name__
            if d is not bool_ and not isinstance(x, (bool, np.bool_)):
                raise TypeError(f"gradgen supports `{what}` on bool tensors and bools only, "
                                f"got {d}")
        return fn(other, self) if reflected else fn(self, other)
    return op


def _pos(self: Tensor) -> Tensor:
    if self.dtype is bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return self


def _invert(self: Tensor) -> Tensor:
    if self.dtype is not bool_:
        raise TypeError(f"gradgen supports `~` on bool tensors only, got {self.dtype}")
    return logical_not(self)


METHODS = {
    "__add__": _fast_binop(add, P.add), "__radd__": _fast_binop(add, P.add, True),
    "__sub__": _fast_binop(sub, P.sub), "__rsub__": _rsub,
    "__mul__": _fast_binop(mul, P.mul, number_saved=True),
    "__rmul__": _fast_binop(mul, P.mul, True, number_saved=True),
    "__truediv__": _fast_binop(div, P.div, number_saved=True), "__rtruediv__": _rtruediv,
    "__pow__": _binop(pow), "__rpow__": _binop(pow, True),
    "__neg__": neg, "__pos__": _pos, "__abs__": abs,
    "__lt__": _binop(lt), "__le__": _binop(le), "__gt__": _binop(gt), "__ge__": _binop(ge),
    "__eq__": _binop(eq), "__ne__": _binop(ne),
    "__and__": _bool_only(logical_and, "&"), "__or__": _bool_only(logical_or, "|"),
    "__rand__": _bool_only(logical_and, "&", True), "__ror__": _bool_only(logical_or, "|", True),
    "__invert__": _invert,
}
