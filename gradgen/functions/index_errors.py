"""PyTorch's errors for bad indices, in its words and in its order (used by ``indexing``).

PyTorch takes a lone int or slice by fast paths with their own messages, counts the
items of any other index before it converts them ("too many indices"), unpacks ints
as int64 ("Overflow when unpacking long long") and checks the bounds of index tensors
element by element as its kernel gathers.
"""
from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from ..tensor import Tensor

NOT_AN_INDEX = ("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables "
                "are valid indices (got {})")
_LONG_MIN, _LONG_MAX = -2**63, 2**63 - 1
_OVERFLOW = "Overflow when unpacking long long"


def check_long(i: int) -> None:
    """PyTorch's error for an int index outside int64."""
    if not _LONG_MIN <= i <= _LONG_MAX:
        raise ValueError(_OVERFLOW)


def check_longs(arr: np.ndarray) -> None:
    """The same for the ints of a list (an object array; numpy would wrap 2**64 - 1 to -1)."""
    values = [int(i) for i in arr.flat if isinstance(i, (int, np.integer)) and not isinstance(i, bool)]
    if values and not (_LONG_MIN <= min(values) and max(values) <= _LONG_MAX):
        raise ValueError(_OVERFLOW)


def specified(index: Any) -> int:
    """How many dims PyTorch's count says ``index`` indexes (anything but None, ..., a Python bool)."""
    items = index if type(index) is tuple else (index,)
    return sum(o._data.ndim if isinstance(o, Tensor) and o._data.dtype == np.bool_ else
               0 if o is None or o is Ellipsis or isinstance(o, bool) else 1 for o in items)


def zero_dim_error(index: Any, kind: str, v: Any) -> None:
    """PyTorch's messages for a lone int or slice applied to a 0-d tensor (its fast paths);
    ``kind`` and ``v`` are the index classified (``indexing._classify``)."""
    if kind == "i" and not isinstance(index, (Tensor, np.ndarray)):  # a number, not a 0-d index tensor
        check_long(v)
        if v:
            raise IndexError(f"index {v} is out of bounds for dimension 0 with size 0")
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                         "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
    if kind == "s":
        if v.indices(1)[2] < 0:
            raise ValueError("step must be greater than zero")
        raise IndexError("slice() cannot be applied to a 0-dim tensor.")


def raise_out_of_bounds(arrays: list[np.ndarray], sizes: list[int], bshape: tuple[int, ...]) -> NoReturn:
    """PyTorch's kernel's error for index tensors ``arrays`` into dims of ``sizes``: the first bad
    index in C order of their broadcast shape, those of one element in order (numbered 0, 1, ...)."""
    flat = [np.broadcast_to(a, bshape).reshape(-1) for a in arrays]
    bad = np.stack([(a >= n) | (a < -n) for a, n in zip(flat, sizes)])
    e = int(np.argmax(bad.any(axis=0)))
    j = int(np.argmax(bad[:, e]))
    raise IndexError(f"index {flat[j][e]} is out of bounds for dimension {j} with size {sizes[j]}")
