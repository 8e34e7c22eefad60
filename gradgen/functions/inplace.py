"""In-place operations (``add_``, ``mul_``, ``zero_``, ``copy_``, ``+=``, ...) with PyTorch's semantics.

An in-place operation is its out-of-place twin from ``math`` plus a write: the
result is computed by the same front-end function, checked against the target
(its shape may not grow, its dtype must be castable to the target's), written
into the target's existing memory (so every view sees it), and the storage's
version counter is bumped. When autograd records the operation, the target's
history is rebased onto the result's node; the operation then reads the
target's old value through a fresh copy, so a node that saves it saves the
value before the write. Nothing is copied when nothing is recorded.

A write through a differentiable view is recorded by ``view_writes`` (PyTorch's CopySlices).

What PyTorch refuses, and the words it says it with, are in ``inplace_checks``.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np

from ..autograd import record
from ..autograd.node import PrimNode, modified_message
from ..dtypes import bool_
from ..ops import elementwise as P
from ..ops.shape import broadcast_in_dim
from ..tensor import Tensor
from . import math as M
from . import operators as O
from ._operands import broadcast_shapes, checked_number
from .inplace_checks import (_C_TYPE_NAMES, _NUMBERS, _TYPE_NAMES, _check_overload,
                             _check_tensor_or_number, _dims, _prepare)
from .math import _named
from .view_writes import COPY_BACKWARDS, base_alias, set_history, write_through_view


_TRUE = np.asarray(True)

# ---------------------------------------------------------------- the mechanism


def _old_value(self: Tensor) -> Tensor:
    """A new tensor holding a copy of self's values and self's place in the graph."""
    t = Tensor._make(self._data.copy())
    t._grad_fn = self._grad_fn
    t._requires_grad = self._requires_grad
    if record.tracing():
        from ..ir.trace_writes import traced_inplace  # noqa: PLC0415
        traced_inplace(t, self)  # to a trace, the copy is self's value before the write
    return t


def _inplace(self: Tensor, fn: Callable[..., Tensor], args: tuple = (), kwargs: dict | None = None,
             *, overlap: bool = True, names: dict = _TYPE_NAMES, grad_name: str | None = None,
             guard: bool = False) -> Tensor:
    """Write ``fn(self, *args, **kwargs)`` into ``self``; the shared path of every in-place op."""
    recording = _prepare(self, args, overlap)
    src = _old_value(self) if recording else self
    result = fn(src, *args, **kwargs) if kwargs else fn(src, *args)
    _commit(self, result, names, grad_name, guard)
    return self


def _commit(self: Tensor, result: Tensor, names: dict = _TYPE_NAMES,
            grad_name: str | type | None = None, guard: bool = False) -> None:
    """Check ``result`` against ``self``, write it into self's memory, bump the version, rebase.

    While tracing, the trace is told before the write (it stops if self is a program input,
    before anything changed) and after it (self's value is now ``result``'s).
    """
    tracing = record.tracing()
    out = result._data
    view = self._view_op is not None and self._base is not None
    if out.shape != self._data.shape:
        raise RuntimeError(f"output with shape {_dims(self._data.shape)} doesn't match the "
                           f"broadcast shape {_dims(out.shape)}")
    if out.dtype != self._data.dtype:
        frm, to = result.dtype, self.dtype
        if (frm.is_floating_point and not to.is_floating_point) or (to is bool_ and frm is not bool_):
            raise RuntimeError(f"result type {_TYPE_NAMES[frm]} can't be cast to the desired "
                               f"output type {names[to]}")
        if result._grad_fn is not None or tracing:
            # Recorded, so the gradient is converted back; named after the operation, as in PyTorch.
            result = _named(P.convert(result, dtype=to), result._grad_fn and result._grad_fn.name())
            out = result._data
    if tracing:
        from ..ir.trace_writes import before_inplace  # noqa: PLC0415
        before_inplace(self, supported=True)
    recorded = result._grad_fn is not None or tracing
    old_base = base_alias(self, tracing) if view and recorded else None
    _store(self._data, out)
    self._version.value += 1
    if old_base is not None:
        if result._grad_fn is not None:
            _adopt(self, result, grad_name, guard)
        write_through_view(self, result, old_base, tracing)
    elif result._grad_fn is not None:
        _rebase(self, result, grad_name, guard)
    if tracing:
        from ..ir.trace_writes import traced_inplace  # noqa: PLC0415
        traced_inplace(self, result)


def _store(dst: np.ndarray, src: Any) -> None:
    if not dst.flags.writeable:
        # A broadcast_in_dim result is read-only in numpy even where no element repeats
        # (``x.expand(1, 3)``); write through a view of the same memory.
        dst = dst.view()
        try:
            dst.flags.writeable = True
        except ValueError:
            raise RuntimeError("cannot write in place into a tensor over read-only memory "
                               "(a read-only numpy array); clone() it first") from None
    if type(src) is np.ndarray and src.dtype != dst.dtype:
        with np.errstate(invalid="ignore", over="ignore"):  # PyTorch casts NaN/inf silently
            np.copyto(dst, src, casting="unsafe")
        return
    try:
        dst[...] = src  # numpy broadcasts, and casts numbers as PyTorch does (1.5 -> 1)
    except (ValueError, OverflowError):  # NaN or an out-of-range number into integers
        with np.errstate(invalid="ignore", over="ignore"):
            np.copyto(dst, np.asarray(src), casting="unsafe")


def _rebase(self: Tensor, result: Tensor, grad_name: str | type | None, guard: bool = False) -> None:
    """Make ``result``'s node self's grad_fn (self's history now ends with the in-place op)."""
    set_history(self, _adopt(self, result, grad_name, guard))


def _adopt(self: Tensor, result: Tensor, grad_name: str | type | None, guard: bool) -> Any:
    """Name ``result``'s node and make it guard self's memory, which now holds its output."""
    node = result._grad_fn
    if grad_name is not None:
        _named(result, grad_name)
    if isinstance(node, PrimNode) and node._out is not None and node._out[0] is result._data:
        # The node saved its output (exp_, sigmoid_, ...): that output is now self, so a later
        # in-place write into self must fail its version check, as in PyTorch.
        node._out = (self._data, self._version, self._version.value)
    elif guard:
        _guard(self, node)
    return node


def _guard(self: Tensor, node: Any) -> None:
    """Fail ``node``'s backward if self is written again, as PyTorch's saved result would.

    For ops whose PyTorch in-place form saves its result (relu_, reciprocal_, rsqrt_) while
    gradgen's composite saves something else; the check runs as a pre-hook of the node.
    """
    data, counter, version, ref = self._data, self._version, self._version.value, weakref.ref(node)

    def check(grad: Any) -> None:
        if counter.value != version:
            raise RuntimeError(modified_message(Tensor._make(data, ref(), counter), version))

    node.register_prehook(check)


# ---------------------------------------------------------------- arithmetic


def _alpha(alpha: Any) -> dict | None:
    """The keywords of an in-place add/sub: none for the int 1 (alpha=True or 1.0 is checked)."""
    return None if type(alpha) is int and alpha == 1 else {"alpha": alpha}


def add_(self: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """In-place ``self += alpha * other``; returns self."""
    _check_tensor_or_number("add_", other)
    return _inplace(self, M.add, (other,), _alpha(alpha))


def sub_(self: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """In-place ``self -= alpha * other``; returns self."""
    _check_tensor_or_number("sub_", other)
    return _inplace(self, M.sub, (other,), _alpha(alpha))


def mul_(self: Tensor, other: Any) -> Tensor:
    """In-place ``self *= other``; returns self."""
    _check_tensor_or_number("mul_", other)
    return _inplace(self, M.mul, (other,))


def div_(self: Tensor, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """In-place true division ``self /= other`` (an integer target can't hold the result)."""
    _check_tensor_or_number("div_", other)
    return _inplace(self, M.div, (other,),
                    {"rounding_mode": rounding_mode} if rounding_mode is not None else None)


def pow_(self: Tensor, exponent: Any) -> Tensor:
    """In-place ``self **= exponent``; returns self."""
    _check_overload("pow_", (exponent,), ("exponent",))
    return _inplace(self, M.pow, (exponent,))


def clamp_(self: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Clamp ``self`` into [min, max] in place; returns self."""
    _check_overload("clamp_", (min,) if max is None else (min, max), ("min", "max"), optional=True)
    names = _TYPE_NAMES if isinstance(min, Tensor) or isinstance(max, Tensor) else _C_TYPE_NAMES
    return _inplace(self, M.clamp, (min, max), names=names)


def _clamp_bound_(bound: str) -> Callable[[Tensor, Any], Tensor]:
    def method(self: Tensor, value: Any) -> Tensor:
        _check_overload(f"clamp_{bound}_", (value,), (bound,))
        tensor = isinstance(value, Tensor)
        return _inplace(self, M.clamp, (value, None) if bound == "min" else (None, value),
                        names=_TYPE_NAMES if tensor else _C_TYPE_NAMES,
                        grad_name=f"Clamp{bound.title()}Backward{int(tensor)}")
    method.__name__ = method.__qualname__ = f"clamp_{bound}_"
    method.__doc__ = f"``self.clamp_({bound}=...)``, recorded as Clamp{bound.title()}Backward."
    return method


clamp_min_ = _clamp_bound_("min")
clamp_max_ = _clamp_bound_("max")


def _unary_(fn: Callable[[Tensor], Tensor], name: str, guard: bool = False) -> Callable[[Tensor], Tensor]:
    def method(self: Tensor) -> Tensor:
        return _inplace(self, fn, guard=guard)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``: writes ``{name[:-1]}(self)`` into self; returns self."
    return method


neg_ = negative_ = _unary_(M.neg, "neg_")
abs_ = absolute_ = _unary_(M.abs, "abs_")
sign_ = _unary_(M.sign, "sign_")
exp_ = _unary_(M.exp, "exp_")
log_ = _unary_(M.log, "log_")
log2_ = _unary_(M.log2, "log2_")
log10_ = _unary_(M.log10, "log10_")
log1p_ = _unary_(M.log1p, "log1p_")
expm1_ = _unary_(M.expm1, "expm1_")
sqrt_ = _unary_(M.sqrt, "sqrt_")
rsqrt_ = _unary_(M.rsqrt, "rsqrt_", guard=True)
reciprocal_ = _unary_(M.reciprocal, "reciprocal_", guard=True)
square_ = _unary_(M.square, "square_")
sin_ = _unary_(M.sin, "sin_")
cos_ = _unary_(M.cos, "cos_")
tanh_ = _unary_(M.tanh, "tanh_")
sigmoid_ = _unary_(M.sigmoid, "sigmoid_")
erf_ = _unary_(M.erf, "erf_")
relu_ = _unary_(M.relu, "relu_", guard=True)

# ---------------------------------------------------------------- fill, zero, copy


def _selected(value: Any, old: Tensor) -> Tensor:
    """``value`` (a number or a tensor broadcastable to ``old``) everywhere, as a recorded result.

    A tensor value is broadcast and converted (a fresh copy: what a node saves must not be the
    user's tensor, which PyTorch's FillBackward/CopyBackwards do not save). When ``old`` has a
    history, a select on a constant True condition sends it zeros, as PyTorch does.
    """
    d = old.dtype
    if isinstance(value, Tensor):
        v = value
        shape = old._data.shape
        if v._data.shape != shape:
            v = broadcast_in_dim(v, shape=shape, dims=tuple(range(len(shape) - v._data.ndim, len(shape))))
        v = P.convert(v, dtype=d)
        if not old._requires_grad:
            return v
    else:
        v = np.asarray(value, d.np)
    return P.select(_TRUE, v, old)


def fill_(self: Tensor, value: Any) -> Tensor:
    """Set every element of ``self`` to ``value`` (a number or a 0-d tensor); returns self."""
    _check_overload("fill_", (value,), ("value",))
    if isinstance(value, Tensor) and value._data.ndim != 0:
        raise RuntimeError("fill_ only supports 0-dimension value tensor but got tensor with "
                           f"{value._data.ndim} dimensions.")
    if not isinstance(value, Tensor):
        checked_number(value, self.dtype)
    # Filling an expanded tensor is fine: every alias of an element gets the same value.
    recording = _prepare(self, (value,), overlap=False)
    return _write(self, value, recording, "FillBackward3" if isinstance(value, Tensor) else "FillBackward2")


def zero_(self: Tensor) -> Tensor:
    """Set every element of ``self`` to zero; returns self."""
    return _write(self, 0, _prepare(self, (), overlap=False), "ZeroBackward0")


def copy_(self: Tensor, src: Any, non_blocking: bool = False) -> Tensor:
    """Copy ``src`` into ``self``, broadcasting it to self's shape and converting its dtype.

    Unlike arithmetic in place, any dtype conversion is allowed (floats truncate into
    integers). The gradient flows to ``src`` (summed over broadcast dimensions); the
    overwritten value gets zero, like PyTorch's CopyBackwards.
    """
    _check_tensor_or_number("copy_", src)
    recording = _prepare(self, (src,))
    if isinstance(src, Tensor):
        shape = broadcast_shapes(self._data.shape, src._data.shape)
        if shape != self._data.shape:
            raise RuntimeError(f"output with shape {_dims(self._data.shape)} doesn't match the "
                               f"broadcast shape {_dims(shape)}")
    return _write(self, src, recording, COPY_BACKWARDS)


def _write(self: Tensor, value: Any, recording: bool, name: str | type) -> Tensor:
    """``value`` broadcast into self: a plain store unless autograd or a trace must see it."""
    if recording:
        _commit(self, _selected(value, _old_value(self)), grad_name=name)
    elif record.tracer[0] is not None and record.tracing():
        _commit(self, _selected(value, self))
    else:
        _store(self._data, value._data if isinstance(value, Tensor) else value)
        self._version.value += 1
    return self


# ---------------------------------------------------------------- operators


def _augmented(method: Callable[[Tensor, Any], Tensor], name: str) -> Callable[[Tensor, Any], Any]:
    # Like PyTorch, ``t += ndarray`` is not in place: NotImplemented lets Python fall back to
    # ``t = t + ndarray``.
    def op(self: Tensor, other: Any) -> Any:
        if not isinstance(other, (Tensor,) + _NUMBERS):
            return NotImplemented
        return method(self, other)
    op.__name__ = op.__qualname__ = name
    return op


METHODS = {
    "add_": add_, "sub_": sub_, "subtract_": sub_, "mul_": mul_, "multiply_": mul_, "div_": div_,
    "divide_": div_, "true_divide_": div_, "pow_": pow_, "clamp_": clamp_, "clip_": clamp_,
    "clamp_min_": clamp_min_, "clamp_max_": clamp_max_, "fill_": fill_, "zero_": zero_,
    "copy_": copy_,
    "neg_": neg_, "negative_": neg_, "abs_": abs_, "absolute_": abs_, "sign_": sign_,
    "exp_": exp_, "log_": log_, "log2_": log2_, "log10_": log10_, "log1p_": log1p_,
    "expm1_": expm1_, "sqrt_": sqrt_, "rsqrt_": rsqrt_, "reciprocal_": reciprocal_,
    "square_": square_, "sin_": sin_, "cos_": cos_, "tanh_": tanh_, "sigmoid_": sigmoid_,
    "erf_": erf_, "relu_": relu_,
    "__iadd__": _augmented(add_, "__iadd__"), "__isub__": _augmented(sub_, "__isub__"),
    "__imul__": _augmented(mul_, "__imul__"), "__itruediv__": _augmented(div_, "__itruediv__"),
    "__ipow__": _augmented(pow_, "__ipow__"),
    "__iand__": _augmented(lambda self, other: _inplace(self, O.METHODS["__and__"], (other,)), "__iand__"),
    "__ior__": _augmented(lambda self, other: _inplace(self, O.METHODS["__or__"], (other,)), "__ior__"),
}

# Only the in-place functions PyTorch exports at top level (torch.relu_ exists, torch.add_ does not).
FUNCTIONS = [
    "clamp_", "clip_", "clamp_min_", "clamp_max_", "fill_", "zero_", "neg_", "negative_", "abs_",
    "exp_", "log_", "log2_", "log10_", "log1p_", "expm1_", "sqrt_", "rsqrt_", "reciprocal_",
    "square_", "sin_", "cos_", "tanh_", "sigmoid_", "erf_", "relu_",
]
clip_ = clamp_
