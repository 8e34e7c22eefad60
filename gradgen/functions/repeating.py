"""Copies along dims: ``flip`` (reversed), ``repeat`` and ``tile`` (tiled), composites of the
layout primitives as in :mod:`.shape`; each result owns its memory, as PyTorch's does."""
from __future__ import annotations

import builtins
from typing import Any, Sequence

from ..ops import shape as P
from ..ops.elementwise import convert
from ..ops.indexing import rev
from ..tensor import Tensor
from ._operands import shape_arg, tensor_function
from .math import _named
from .shape import _dims_arg, _distinct, _fmt, _sizes


def flip(input: Tensor, *args: Any, dims: Any = None) -> Tensor:
    """Reverse the order of elements along ``dims``; returns a copy, as PyTorch does."""
    axes = _distinct(_dims_arg(args, dims, "flip"), input._data.ndim)
    return rev(input, axes=axes if input._data.ndim else ())  # (dim 0 or -1 of a 0-d tensor)


def repeat(input: Tensor, *sizes: Any, **kw: Any) -> Tensor:
    """Tile the tensor ``sizes[i]`` times along dim i (new leading dims when sizes is longer)."""
    if not sizes and not kw:
        raise TypeError('repeat() missing 1 required positional arguments: "repeats"')
    reps = tuple(shape_arg(_sizes(sizes, kw, "repeat", "repeats")))
    shape = input._data.shape
    lead = len(reps) - len(shape)
    if lead < 0:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of "
                           "dimensions of tensor")
    full = (1,) * lead + shape
    target = tuple(r * s for r, s in zip(reps, full))
    negative = [t for t in target if t < 0]
    if negative:
        raise RuntimeError(f"Trying to create tensor with negative dimension {negative[0]}: "
                           f"{_fmt(target)}")
    # A negative count is allowed along an empty dim (PyTorch checks the product): 0 is the same.
    reps = tuple(builtins.max(r, 0) for r in reps)
    # Interleave (r0, s0, r1, s1, ...): broadcasting over the r axes, then merging pairs, tiles.
    pairs = tuple(v for r, s in zip(reps, full) for v in (r, s))
    spread = P.broadcast_in_dim(input, shape=pairs, dims=tuple(2 * (lead + i) + 1 for i in range(len(shape))))
    out = P.reshape(spread, shape=tuple(r * s for r, s in zip(reps, full)))
    if not any(r > 1 and s > 1 for r, s in zip(reps, full)):
        # The reshape merged only axes of extent 1 into others: a view of the input (stride 0
        # where repeated). repeat's result owns its memory, as PyTorch's does.
        out = convert(out, dtype=out.dtype)
    return _named(out, "RepeatBackward0")


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    """``repeat`` that pads ``dims`` with leading ones when it is shorter than the rank."""
    dims = tuple(shape_arg((dims,)))
    return repeat(input, (1,) * (input._data.ndim - len(dims)) + dims)


def _tile_method(self: Tensor, *dims: Any, **kw: Any) -> Tensor:
    """``Tensor.tile``, which also takes the dims as separate arguments (``x.tile(2, 1)``)."""
    dims = _sizes(dims, kw, "tile", "dims")
    if not dims:
        raise TypeError('tile() missing 1 required positional arguments: "dims"')
    return _tile(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims)


METHODS = {"flip": flip, "repeat": repeat, "tile": _tile_method}

FUNCTIONS = ["flip", "tile"]

# The torch-level functions check that their input is a Tensor (the methods need not).
_tile = tile  # (the method's, unchecked)
flip, tile = tensor_function(flip), tensor_function(tile)
