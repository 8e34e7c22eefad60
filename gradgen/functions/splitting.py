"""Views of ranges along one dim: ``select``, ``narrow``, ``split``, ``chunk``, ``unbind``.

Each is one ``slice_`` of the input per piece (``select`` and ``unbind`` then drop
the dim with a ``reshape``), named after PyTorch's backward node.
"""
from __future__ import annotations

from typing import Any

from ..autograd.grad_mode import _state
from ..ops.indexing import slice_
from ..ops.shape import reshape
from ..tensor import Tensor, _wrap_dim
from ._operands import is_index, tensor_function
from .math import _named
from .shape import _fmt


def _range_slice(x: Tensor, d: int, start: int, stop: int) -> Tensor:
    shape = x._data.shape
    starts = [0] * len(shape)
    stops = list(shape)
    starts[d], stops[d] = start, stop
    return slice_(x, starts=tuple(starts), stops=tuple(stops), steps=(1,) * len(shape))


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """``input`` at position ``index`` of dim ``dim``, which is removed (a view)."""
    shape = input._data.shape
    if not shape:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, len(shape))
    n, i = shape[d], int(index)
    if not -n <= i < n:
        raise IndexError(f"select(): index {i} out of range for tensor of size {_fmt(shape)} at "
                         f"dimension {d}")
    i %= n
    y = reshape(_range_slice(input, d, i, i + 1), shape=shape[:d] + shape[d + 1:])
    return _named(y, "SelectBackward0")


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """Elements ``start .. start+length-1`` of dim ``dim`` (a view)."""
    shape = input._data.shape
    if not shape:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, len(shape))
    n, start, length = shape[d], int(start), int(length)
    if length < 0:  # (checked before start, as PyTorch)
        raise RuntimeError("narrow(): length must be non-negative.")
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    start = start + n if start < 0 else start
    if start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return _range_slice(input, d, start, start + length)


def _multi(pieces: list[Tensor]) -> tuple[Tensor, ...]:
    """Mark views one call returned together (PyTorch's multi-output views, made in grad
    mode): a differentiable in-place write into one is refused (see inplace_checks)."""
    if _state.enabled:
        for k, t in enumerate(pieces):
            if t._view_op is not None:
                t._view_op[4] = k
    return tuple(pieces)


def _pieces(x: Tensor, d: int, sizes: list[int], name: str) -> tuple[Tensor, ...]:
    out = []
    start = 0
    for size in sizes:
        out.append(_named(_range_slice(x, d, start, start + size), name))
        start += size
    return _multi(out)


def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Views of consecutive pieces: of size ``split_size`` (the last may be smaller) or of the given sizes."""
    shape = tensor._data.shape
    if not shape:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, len(shape))
    n, s = shape[d], split_size_or_sections
    if is_index(s):
        s = s.__index__()
        if s < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={s}")
        if s == 0 and n != 0:
            raise RuntimeError("split_size can only be 0 if dimension size is 0, but got dimension "
                               f"size of {n}")
        sizes = ([s] * (n // s) + ([n % s] if n % s else [])) if s else []
        return _pieces(tensor, d, sizes or [n], "SplitBackward0")
    if not isinstance(s, (list, tuple)):
        raise TypeError("split_with_sizes(): argument 'split_sizes' (position 2) must be tuple of "
                        f"ints, not {type(s).__name__}")
    sizes = [int(v) for v in s]
    if any(v < 0 for v in sizes):
        raise RuntimeError("split_with_sizes expects split_sizes have only non-negative entries, "
                           f"but got split_sizes={_fmt(sizes)}")
    if sum(sizes) != n:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input "
                           f"tensor's size at dimension {dim}), but got split_sizes={_fmt(sizes)}")
    return _pieces(tensor, d, sizes, "SplitWithSizesBackward0")


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into at most ``chunks`` pieces of equal size (the last may be smaller)."""
    if not input._data.ndim:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _wrap_dim(dim, input._data.ndim)
    n = input._data.shape[d]
    if n == 0:
        return _pieces(input, d, [0] * chunks, "SplitWithSizesBackward0")
    return _split(input, -(-n // chunks), d)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """Every slice along ``dim``, with ``dim`` removed (views)."""
    shape = input._data.shape
    if not shape:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = _wrap_dim(dim, len(shape))
    rest = shape[:d] + shape[d + 1:]
    return _multi([_named(reshape(_range_slice(input, d, i, i + 1), shape=rest), "UnbindBackward0")
                   for i in range(shape[d])])


METHODS = {"select": select, "narrow": narrow, "split": split, "chunk": chunk, "unbind": unbind}

FUNCTIONS = ["select", "narrow", "split", "chunk", "unbind"]
# The torch-level functions check that their input is a Tensor (the methods need not).
_split = split
select, split, chunk, unbind = (tensor_function(f) for f in (select, split, chunk, unbind))
narrow = tensor_function(narrow, overloads=["Tensor input, int dim, Tensor start, int length",
                                            "Tensor input, int dim, int start, int length"])
