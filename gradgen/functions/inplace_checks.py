"""PyTorch's refusals of in-place writes, with its words: the checks and their messages.

Writing in place is refused into a leaf that requires grad while grad mode is on
(also through a view of one, and through any view made under no_grad), into a
broadcast (expanded) tensor, and from an operand that partly overlaps the target;
an argument of the wrong type gets PyTorch's ``TypeError`` text. Shared by
the in-place operations (``inplace``) and by ``__setitem__`` (``index_write``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import _state
from ..autograd.node import multi_output_message
from ..autograd.record import refresh_view
from ..dtypes import bool_, float32, float64, int32, int64
from ..tensor import Tensor
from ._operands import type_name

LEAF_MESSAGE = "a leaf Variable that requires grad is being used in an in-place operation."
OVERLAP_MESSAGE = ("unsupported operation: more than one element of the written-to tensor refers "
                   "to a single memory location. Please clone() the tensor before performing the "
                   "operation.")
PARTIAL_MESSAGE = ("unsupported operation: some elements of the input tensor and the written-to "
                   "tensor refer to a single memory location. Please clone() the tensor before "
                   "performing the operation.")
VIEW_OF_LEAF_MESSAGE = ("a view of a leaf Variable that requires grad is being used in an in-place "
                        "operation.")
NO_GRAD_VIEW_MESSAGE = (
    "A view was created in no_grad mode and is being modified inplace with grad mode enabled. "
    "Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify your "
    "code by moving both the view and the inplace either both inside the no_grad block (if you "
    "don't want the inplace to be tracked) or both outside (if you want the inplace to be tracked).")

_TYPE_NAMES = {float32: "Float", float64: "Double", int64: "Long", int32: "Int", bool_: "Bool"}
# clamp_ with Python-number bounds names the target type as C++ does.
_C_TYPE_NAMES = {**_TYPE_NAMES, int64: "long int", int32: "int", bool_: "bool"}
_NUMBERS = (bool, int, float, np.generic)


def _prepare(self: Tensor, inputs: tuple, overlap: bool = True) -> bool:
    """PyTorch's checks on an in-place write into ``self``; returns whether autograd records it."""
    recording = False
    if _state.enabled:
        view = self._view_op is not None and self._base is not None
        if view:
            refresh_view(self, writing=True)  # a stale view's requires_grad and grad_fn first
        for t in inputs:
            if type(t) is Tensor and t._view_op is not None:
                refresh_view(t)
        if self._requires_grad:
            if self._grad_fn is None:  # (a leaf that is a view: its own requires_grad_())
                raise RuntimeError(VIEW_OF_LEAF_MESSAGE if self._base is not None else LEAF_MESSAGE)
            recording = True
        else:
            recording = any(type(t) is Tensor and t._requires_grad for t in inputs)
        if view:
            check_view_write(self, recording)
    data = self._data
    if overlap and not data.flags.c_contiguous and _internal_overlap(data):
        raise RuntimeError(OVERLAP_MESSAGE)
    for t in inputs:
        if type(t) is Tensor:
            other = t._data
            # Two arrays that each own their memory can't overlap; skip numpy's bounds check.
            if other is not data and (other.base is not None or data.base is not None) \
                    and np.may_share_memory(data, other):
                _check_partial_overlap(data, other)
    return recording


def check_view_write(view: Tensor, recording: bool, through: str | None = None) -> None:
    """PyTorch's refusals of a write through a differentiable view (grad mode is on);
    ``through``: the node name of a view of it an indexed write goes through."""
    base, _, made_in_grad_mode, _, index, in_function = view._view_op
    if not made_in_grad_mode and (recording or base._requires_grad):
        raise RuntimeError(NO_GRAD_VIEW_MESSAGE)
    if index is not None and recording:
        raise RuntimeError(multi_output_message(view, index, through, in_function=in_function))
    if recording and base._grad_fn is None and base._requires_grad:
        raise RuntimeError(VIEW_OF_LEAF_MESSAGE)


def _internal_overlap(a: np.ndarray) -> bool:
    return any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape))


def _dense(a: np.ndarray) -> bool:
    if a.flags.c_contiguous or a.flags.f_contiguous:
        return True
    expect = a.itemsize
    for st, n in sorted((st, n) for st, n in zip(a.strides, a.shape) if n != 1):
        if st != expect:
            return False
        expect *= n
    return True


def _check_partial_overlap(dst: np.ndarray, src: np.ndarray) -> None:
    """PyTorch's rule: the same memory with the same layout is fine, any other overlap is not."""
    if dst.size == 0 or src.size == 0 or not (_dense(dst) and _dense(src)):
        return  # PyTorch gives up ("too hard") on layouts with gaps and lets the write happen
    bounds = np.lib.array_utils.byte_bounds
    if bounds(dst) == bounds(src) and dst.shape == src.shape and dst.strides == src.strides:
        return
    raise RuntimeError(PARTIAL_MESSAGE)


def _dims(shape: tuple) -> str:
    return f"[{', '.join(map(str, shape))}]"


def _check_tensor_or_number(fn: str, x: Any, arg: str = "other") -> None:
    if not isinstance(x, (Tensor,) + _NUMBERS):
        raise TypeError(f"{fn}(): argument '{arg}' (position 1) must be Tensor, not {type_name(x)}")


def _check_overload(fn: str, values: tuple, params: tuple[str, ...], optional: bool = False) -> None:
    """PyTorch's "invalid combination of arguments" error for ``fn(Tensor|Number ...)``."""
    if all((v is None and optional) or isinstance(v, (Tensor,) + _NUMBERS) for v in values):
        return
    got = ", ".join(type_name(v) for v in values)
    marked = ", ".join(f"!{type_name(v)}!" for v in values)
    default = " = None" if optional else ""
    lines = [f"{fn}() received an invalid combination of arguments - got ({got}), but expected one of:"]
    for kind in ("Tensor", "Number"):
        lines.append(f" * ({', '.join(f'{kind} {p}{default}' for p in params)})")
        if len(values) == len(params):
            lines.append(f"      didn't match because some of the arguments have invalid types: ({marked})")
    raise TypeError("\n".join(lines) + "\n")
