"""PyTorch's refusals of in-place writes, with its words: the checks and their messages.

Writing in place is refused into a leaf that requires grad while grad mode is on,
into a broadcast (expanded) tensor, and from an operand that partly overlaps the
target; an argument of the wrong type gets PyTorch's ``TypeError`` text. Shared by
the in-place operations (``inplace``) and by ``__setitem__`` (``index_write``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import _state
from ..dtypes import bool_, float32, float64, int32, int64
from ..tensor import Tensor

LEAF_MESSAGE = "a leaf Variable that requires grad is being used in an in-place operation."
OVERLAP_MESSAGE = ("unsupported operation: more than one element of the written-to tensor refers "
                   "to a single memory location. Please clone() the tensor before performing the "
                   "operation.")
PARTIAL_MESSAGE = ("unsupported operation: some elements of the input tensor and the written-to "
                   "tensor refer to a single memory location. Please clone() the tensor before "
                   "performing the operation.")
VIEW_MESSAGE = (
    "gradgen does not support in-place operations yet on a view when autograd records them (the "
    "view requires grad, or the value written does): PyTorch would rebase the base tensor's "
    "history with CopySlices, which gradgen does not implement. Use the out-of-place operation, "
    "clone() the view first, or write under torch.no_grad() if no gradient should flow.")

_TYPE_NAMES = {float32: "Float", float64: "Double", int64: "Long", int32: "Int", bool_: "Bool"}
# clamp_ with Python-number bounds names the target type as C++ does.
_C_TYPE_NAMES = {**_TYPE_NAMES, int64: "long int", int32: "int", bool_: "bool"}
_NUMBERS = (bool, int, float, np.generic)


def _prepare(self: Tensor, inputs: tuple, overlap: bool = True) -> bool:
    """PyTorch's checks on an in-place write into ``self``; returns whether autograd records it."""
    recording = False
    if _state.enabled:
        if self._requires_grad:
            if self._grad_fn is None:
                raise RuntimeError(LEAF_MESSAGE)
            recording = True
        else:
            recording = any(type(t) is Tensor and t._requires_grad for t in inputs)
        if recording and self._base is not None and not _detached(self):
            raise NotImplementedError(VIEW_MESSAGE)
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


def _detached(t: Tensor) -> bool:
    # ``x.detach()`` shares x's very array: a view autograd does not track (PyTorch's
    # non-differentiable view), so writing into it rebases only the detached tensor.
    return t._grad_fn is None and t._data is t._base._data


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


def _type_name(x: Any) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _check_tensor_or_number(fn: str, x: Any, arg: str = "other") -> None:
    if not isinstance(x, (Tensor,) + _NUMBERS):
        raise TypeError(f"{fn}(): argument '{arg}' (position 1) must be Tensor, not {_type_name(x)}")


def _check_overload(fn: str, values: tuple, params: tuple[str, ...], optional: bool = False) -> None:
    """PyTorch's "invalid combination of arguments" error for ``fn(Tensor|Number ...)``."""
    if all((v is None and optional) or isinstance(v, (Tensor,) + _NUMBERS) for v in values):
        return
    got = ", ".join(_type_name(v) for v in values)
    marked = ", ".join(f"!{_type_name(v)}!" for v in values)
    default = " = None" if optional else ""
    lines = [f"{fn}() received an invalid combination of arguments - got ({got}), but expected one of:"]
    for kind in ("Tensor", "Number"):
        lines.append(f" * ({', '.join(f'{kind} {p}{default}' for p in params)})")
        if len(values) == len(params):
            lines.append(f"      didn't match because some of the arguments have invalid types: ({marked})")
    raise TypeError("\n".join(lines) + "\n")
