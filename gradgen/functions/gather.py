"""Gathers by an index tensor: ``index_select``, ``take`` and ``gather``.

Each checks its indices with PyTorch's messages and reads with one primitive:
``take`` for ``index_select`` and ``take``, ``take_along`` for ``gather``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.record import NoValues
from ..ops.indexing import check_index, check_index_values, take_along, take as _take
from ..ops.shape import reshape
from ..tensor import Tensor, _wrap_dim
from .indexing import _tracing
from ._operands import tensor_function, type_name
from .math import _named
from .shape import _fmt


def _tensor_arg(index: Any, fn: str, position: int) -> Tensor:
    if not isinstance(index, Tensor):
        raise TypeError(f"{fn}(): argument 'index' (position {position}) must be Tensor, not "
                        f"{type_name(index)}")
    return index


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries ``index`` (a vector) of dim ``dim``."""
    idx = _tensor_arg(index, "index_select", 2)
    d = _wrap_dim(dim, input._data.ndim)
    if idx._data.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if idx._data.dtype.kind not in "iu":
        raise RuntimeError("index_select(): Expected dtype int32 or int64 for index")
    n = input._data.shape[d] if input._data.ndim else 1
    mode = _index_select_mode(input._data.shape, d, idx._data.size)
    if mode is not None:
        if _tracing():  # recorded, so a compiled call checks its own indices
            idx = check_index(idx, size=n, axis=d, mode=mode)
        else:
            check_index_values(idx._data, n, d, mode)
    if input._data.ndim == 0:  # one index: a 0-d take, whose output is no view
        if idx._data.ndim:
            idx = reshape(idx, shape=())
        return _named(_take(reshape(input, shape=(1,)), idx, axis=0), "IndexSelectBackward0")
    if idx._data.ndim == 0:
        idx = reshape(idx, shape=(1,))
    return _take(input, idx, axis=d)


def _index_select_mode(shape: tuple[int, ...], d: int, count: int) -> str | None:
    """How index_select checks ``count`` indices into dim ``d`` of ``shape``: the
    ``check_index`` mode (None: nothing to check), after PyTorch's checks that need no values.

    PyTorch's CPU kernel takes one of three paths, each with its own message: a 0-d input
    takes one index; a tensor of rank > 1 with no elements, or indexed along dim 1, is checked
    in one loop ("INDICES element is out of DATA bounds"); any other "index out of range".
    """
    if not shape:
        if count != 1:
            raise RuntimeError("index_select(): Index to scalar can have only 1 value, got "
                               f"{count} value(s)")
        return "index_select"
    if len(shape) == 1:
        return "index_select" if count else None
    if not count:
        return None
    if 0 in shape:
        if shape[d] == 0:
            raise RuntimeError("index_select(): self indexing axis dim should be positive")
        return "index_select_dim1"
    return "index_select_dim1" if d == 1 else "index_select"


def take(input: Tensor, index: Tensor) -> Tensor:
    """``input`` read as a flat vector at positions ``index`` (any shape; negatives wrap)."""
    idx = _tensor_arg(index, "take", 1)
    if idx._data.dtype != np.int64:
        raise RuntimeError(f"take(): Expected a long tensor for index, but got {idx.dtype.scalar_name}")
    n = input._data.size
    a = idx._data
    if not n and a.size:
        raise IndexError("take(): tried to take from an empty tensor")
    # An abstract trace has no indices to check; the compiled take raises IndexError itself.
    if a.size and not isinstance(a, NoValues) and (a.min() < -n or a.max() >= n):
        bad = a[(a < -n) | (a >= n)].flat[0]
        raise IndexError(f"out of range: tried to access index {bad} on a tensor of {n} elements.")
    return _named(_take(reshape(input, shape=(n,)), idx, axis=0), "TakeBackward0")


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j][k] = input[i][index[i][j][k]][k]`` (for dim 1): an elementwise gather.

    >>> import gradgen as gg
    >>> gg.gather(gg.tensor([[1.0, 2.0], [3.0, 4.0]]), 1, gg.tensor([[1], [0]]))
    tensor([[2.],
            [3.]])
    """
    idx = _tensor_arg(index, "gather", 2)
    shape, ishape = input._data.shape or (1,), idx._data.shape or (1,)
    d = _wrap_dim(dim, len(shape))
    if not idx._data.size:  # PyTorch checks nothing more: an empty result of the index's shape
        none = Tensor._make(np.zeros(idx._data.shape, np.int64))
        return _named(_take(reshape(input, shape=(input._data.size,)), none, axis=0), "GatherBackward0")
    if idx._data.dtype.kind not in "iu":
        raise RuntimeError("gather(): Expected dtype int32/int64 for index")
    if len(ishape) != len(shape):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    for i, (a, b) in enumerate(zip(ishape, shape)):
        if i != d and a > b:
            raise RuntimeError(f"Size does not match at dimension {i} expected index {_fmt(ishape)} "
                               f"to be no larger than self {_fmt(shape)} apart from dimension {d}")
    t = idx
    if _tracing():  # recorded, so a compiled call checks its own indices
        t = check_index(t, size=shape[d], axis=d, mode="gather")
    else:
        check_index_values(t._data, shape[d], d, "gather")
    x = input if input._data.shape == shape else reshape(input, shape=shape)
    if not t._data.ndim:  # one index into a vector: a 0-d take, whose output is no view
        return _named(_take(x, t, axis=0), "GatherBackward0")
    return _named(take_along(x, t, axis=d), "GatherBackward0")


METHODS = {"index_select": index_select, "take": take, "gather": gather}
# The torch-level functions check that their input is a Tensor (the methods need not).
index_select, take, gather = (tensor_function(METHODS[n]) for n in ["index_select", "take",
                                                                      "gather"])

FUNCTIONS = ["index_select", "take", "gather"]
