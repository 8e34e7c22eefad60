"""Joining tensors: ``cat`` (``concat``, ``concatenate``) and ``stack``.

Both promote to the tensors' common dtype and are composites of the ``concatenate``
primitive (``stack`` adds one reshape), with PyTorch's checks and messages.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..dtypes import result_type
from ..ops import shape as P
from ..ops.indexing import concatenate as _concatenate
from ..tensor import Tensor, _wrap_dim
from ._operands import cast, differentiating, type_name
from .math import _named
from .shape import _fmt


def _tensor_list(tensors: Any, fn: str) -> list[Tensor]:
    if isinstance(tensors, Tensor):
        raise TypeError(f"{fn}(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor")
    if not isinstance(tensors, (tuple, list)):
        raise TypeError(f"{fn}(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                        f"{type_name(tensors)}")
    tensors = list(tensors)
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type_name(x)}")
    return tensors


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim, promoting to their common dtype.

    >>> import gradgen as gg
    >>> gg.cat([gg.zeros(2, 3), gg.ones(1, 3)]).shape
    torch.Size([3, 3])
    """
    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    for i, x in enumerate(tensors):
        if x._data.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    # PyTorch's legacy rule: 1-d empty tensors are skipped whatever the others' rank (and
    # when all are, so is dim: the result is the first one, in the common dtype).
    kept = [(i, x) for i, x in enumerate(tensors) if x._data.shape != (0,)]
    if not kept:
        return _concatenate(*(cast(x, result_type(*tensors)) for x in tensors), axis=0)
    ref = kept[0][1]._data.shape
    ax = _wrap_dim(dim, len(ref))
    for i, x in kept:
        s = x._data.shape
        if len(s) != len(ref):
            raise RuntimeError(f"Tensors must have same number of dimensions: got {len(ref)} and {len(s)}")
        for j, (a, b) in enumerate(zip(ref, s)):
            if j != ax and a != b:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {ax}. Expected "
                                   f"size {a} but got size {b} for tensor number {i} in the list.")
    d = result_type(*tensors)
    parts = [cast(x, d) for _, x in kept]
    if len(kept) < len(tensors):
        parts = _with_skipped(tensors, parts, kept, ref, ax, d)
    return _concatenate(*parts, axis=ax)


def _with_skipped(tensors: list[Tensor], parts: list, kept: list, ref: tuple, ax: int,
                  d: Any) -> list:
    """``parts`` with the skipped 1-d empty tensors that are differentiated put back in their
    places, reshaped to ``ref`` with no extent along ``ax``: they add nothing, but are in the
    graph, so that their ``.grad`` becomes an empty tensor as in PyTorch (not None)."""
    empty = ref[:ax] + (0,) + ref[ax + 1:]
    placed = dict(zip((i for i, _ in kept), parts))
    out = []
    for i, x in enumerate(tensors):
        if i in placed:
            out.append(placed[i])
        elif differentiating(x):
            out.append(P.reshape(cast(x, d), shape=empty))
    return out


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join equally shaped tensors along a new dim ``dim``."""
    tensors = _tensor_list(tensors, "stack")
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape = tensors[0]._data.shape
    d = _wrap_dim(dim, len(shape) + 1)  # (before the sizes, as PyTorch)
    for i, x in enumerate(tensors):
        if x._data.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {_fmt(shape)} "
                               f"at entry 0 and {_fmt(x._data.shape)} at entry {i}")
    dt = result_type(*tensors)
    parts = [cast(x, dt) for x in tensors]
    if d < len(shape):
        # Joining along dim d puts tensor k's slice j at k * size + j: one reshape splits (k, j).
        joined = _concatenate(*parts, axis=d)
        out = P.reshape(joined, shape=shape[:d] + (len(parts),) + shape[d:])
    else:
        new = shape + (1,)
        out = _concatenate(*(P.reshape(x, shape=new) for x in parts), axis=d)
    return _named(out, "StackBackward0")


concat = concatenate = cat

FUNCTIONS = ["cat", "concat", "concatenate", "stack"]
