"""Indexing: ``Tensor.__getitem__`` / ``__setitem__`` with every numpy and PyTorch index form.

An index is parsed once (``_parse``) into a *basic* part and an *advanced*
part, in PyTorch's order: integers, slices, ``None`` and ``...`` first (a view:
``slice_`` (steps are positive, as in PyTorch), then one ``reshape`` that drops
integer-indexed dims and inserts new ones), then integer and boolean index
tensors (a gather: ``take``). Several index tensors broadcast together; they
are merged into one flat index over their dims (moved to the front first when
they are not adjacent, numpy's placement rule), so one ``take`` does the
gather. Boolean masks become integer indices with ``np.nonzero`` (their
result shape depends on the data).

Writes (``__setitem__``) parse the index the same way; they live in ``index_write``.
"""
from __future__ import annotations

import math
import operator
import warnings
from typing import Any, NoReturn

import numpy as np

from ..autograd import record
from ..dtypes import int64 as _INT64
from ..ops import elementwise as E
from ..ops.indexing import check_index, slice_, take as _take
from ..ops.shape import broadcast_in_dim, reshape, transpose
from ..tensor import Tensor
from ._operands import cast, type_name
from .index_errors import (NOT_AN_INDEX, check_long, check_longs, raise_out_of_bounds, specified,
                           zero_dim_error)
from .math import _named
from .shape import _fmt

_SEQUENCE_WARNING = (
    "Using a non-tuple sequence for multidimensional indexing is deprecated and will be changed in "
    "pytorch 2.9; use x[tuple(seq)] instead of x[seq]. In pytorch 2.9 this will be interpreted as "
    "tensor index, x[torch.tensor(seq)], which will result either in an error or a different result")

# ---------------------------------------------------------------- parsing


def _classify(obj: Any) -> tuple[str, Any]:
    """One index item as (kind, value): i(nt), s(lice), n(one), e(llipsis), m(ask), a(rray)."""
    if type(obj) is int:
        return "i", obj
    if isinstance(obj, slice):
        return "s", obj
    if obj is None:
        return "n", None
    if obj is Ellipsis:
        return "e", None
    if isinstance(obj, bool):  # (numpy's bool is no index in PyTorch)
        return "m", np.asarray(obj)
    if isinstance(obj, (int, np.integer)):
        return "i", int(obj)
    if isinstance(obj, Tensor):
        return _classify_array(obj._data, obj)
    if isinstance(obj, np.ndarray):
        return _classify_array(obj, obj)
    if isinstance(obj, (list, tuple)):
        try:
            arr = np.asarray(obj)
        except ValueError:
            raise IndexError(f"could not build an index tensor from {obj!r}: the sequence is ragged") from None
        if arr.dtype.kind in "uOf":  # where a big int can hide (numpy made it uint64, object or float)
            check_longs(np.asarray(obj, dtype=object))
        if arr.dtype.kind in "fiu" or arr.size == 0:
            arr = arr.astype(np.int64)  # PyTorch truncates float lists to long indices
        return _classify_array(arr, arr)
    if isinstance(obj, str):
        raise TypeError("new(): invalid data type 'str'")
    raise IndexError(NOT_AN_INDEX.format(type_name(obj)))


def _classify_array(arr: np.ndarray, orig: Any) -> tuple[str, Any]:
    kind = arr.dtype.kind
    if kind == "b":
        return "m", arr
    if kind not in "iu":
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    if arr.ndim == 0:  # PyTorch selects with a 0-d integer tensor (a view)
        return "i", orig.__index__() if isinstance(orig, Tensor) else int(arr)
    return "a", orig


def _items(index: Any) -> tuple[list[tuple[str, Any]], bool]:
    """The classified items of ``index`` and whether it was a single item (not a tuple)."""
    if type(index) is tuple:
        return [_classify(i) for i in index], False
    if isinstance(index, list) and len(index) < 32 and any(
            isinstance(i, (list, tuple, slice, Tensor, np.ndarray)) or i is None or i is Ellipsis
            for i in index):
        # numpy's old heuristic, which PyTorch still follows: such a list is a tuple.
        warnings.warn(_SEQUENCE_WARNING, UserWarning, stacklevel=4)
        return [_classify(i) for i in index], False
    return [_classify(index)], True


class _Index:
    """A parsed index: the slice/reshape of its basic part and the gathers of its advanced part."""

    __slots__ = ("starts", "stops", "steps", "shape", "np_basic", "advs", "name", "viewed")

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.starts = [0] * len(shape)
        self.stops = list(shape)
        self.steps = [1] * len(shape)
        self.shape: list[int] = []        # shape after the basic part
        self.np_basic: list[Any] = []     # the basic part as a numpy index (a view)
        self.advs: list[tuple[int, Any]] = []  # (dim after the basic part, integer indices)
        self.name: str | None = None      # grad_fn name of the basic part's last step
        self.viewed = False               # whether PyTorch's basic part makes a view (not self)


def _consumed(items: list) -> int:
    return sum(1 if k in "isa" else (v.ndim if k == "m" else 0) for k, v in items)


def _parse(shape: tuple[int, ...], index: Any, masks: bool = True) -> _Index:
    """``index`` parsed against ``shape``; ``masks=False`` leaves boolean masks for ``_expand_masks``."""
    ndim = len(shape)
    try:
        items, single = _items(index)
    except (IndexError, TypeError):
        if specified(index) > ndim:  # PyTorch counts the items before it converts them
            raise IndexError(f"too many indices for tensor of dimension {ndim}") from None
        raise
    used = _consumed(items)
    if used > ndim:
        if ndim == 0 and single:
            zero_dim_error(index, *items[0])
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    ix = _Index(shape)
    d = 0
    ellipsis_seen = False
    for pos, (kind, v) in enumerate(items):
        if kind == "i":  # PyTorch numbers the dimension by the item's position in the index
            _int_item(ix, shape, d, v, pos)
        elif kind == "s":
            _slice_item(ix, shape, d, v, single)
        elif kind == "n":
            ix.shape.append(1)
            ix.np_basic.append(None)
            ix.name = "UnsqueezeBackward0"
            ix.viewed = True
            continue
        elif kind in "am":
            d = _array_item(ix, shape, d, v)
            continue
        elif not ellipsis_seen:  # PyTorch lets later ellipses match no dims
            ellipsis_seen = True
            n = ndim - used
            ix.shape.extend(shape[d:d + n])
            ix.np_basic.extend([slice(None)] * n)
            d += n
            continue
        else:
            continue
        d += 1
    ix.shape.extend(shape[d:])
    if masks and any(_is_mask(i) for _, i in ix.advs):
        ix.advs = _expand_masks(ix)
    return ix


def _is_mask(idx: Any) -> bool:
    return isinstance(idx, np.ndarray) and idx.dtype == np.bool_


def _int_item(ix: _Index, shape: tuple, d: int, i: int, pos: int) -> None:
    n = shape[d]
    if not -n <= i < n:
        check_long(i)
        raise IndexError(f"index {i} is out of bounds for dimension {pos} with size {n}")
    i %= n
    ix.starts[d], ix.stops[d] = i, i + 1
    ix.np_basic.append(i)
    ix.name = "SelectBackward0"
    ix.viewed = True


def _slice_item(ix: _Index, shape: tuple, d: int, s: slice, bare: bool) -> None:
    n = shape[d]
    a, b, step = s.indices(n)
    if step < 0:  # PyTorch has no negative strides (flip() copies)
        raise ValueError("step must be greater than zero")
    m = len(range(a, b, step))
    ix.starts[d], ix.stops[d], ix.steps[d] = a, (a + (m - 1) * step + 1 if m else a), step
    ix.shape.append(m)
    ix.np_basic.append(slice(a, b, step))
    skipped = _skipped(s, n)
    if bare or not skipped:
        ix.name = "SliceBackward0"
    ix.viewed = ix.viewed or not skipped


def _skipped(s: slice, n: int) -> bool:
    """PyTorch's test (on the slice as written) for a slice in a tuple that it does not apply."""
    return ((s.start is None or operator.index(s.start) == 0) and (s.step is None or operator.index(s.step) == 1)
            and (s.stop is None or operator.index(s.stop) >= n))


def _array_item(ix: _Index, shape: tuple, d: int, arr: Any) -> int:
    """An index tensor or mask: its dims stay through the basic part; returns the next input dim."""
    if isinstance(arr, np.ndarray) and arr.dtype == np.bool_:
        if arr.ndim == 0:  # a Python bool: a new dim of size 1 (True) or 0 (False)
            n = int(record.values(arr, "indexing with a 0-d boolean tensor"))
            ix.advs.append((len(ix.shape), np.zeros(n, np.int64)))
            ix.shape.append(1)
            ix.np_basic.append(None)
            ix.viewed = True
            return d
        record.untraceable("indexing with a boolean mask (the result's shape depends on the data)")
    k = 1 if isinstance(arr, Tensor) or arr.dtype != np.bool_ else arr.ndim
    ix.advs.append((len(ix.shape), arr))
    ix.shape.extend(shape[d:d + k])
    ix.np_basic.extend([slice(None)] * k)
    return d + k


def _expand_masks(ix: _Index) -> list[tuple[int, Any]]:
    """Masks as integer indices (np.nonzero), checked against the basic part's result like PyTorch."""
    advs: list[tuple[int, Any]] = []
    for pos, idx in ix.advs:
        if not _is_mask(idx):
            advs.append((pos, idx))
            continue
        for j, s in enumerate(idx.shape):
            if s != ix.shape[pos + j]:
                raise IndexError(f"The shape of the mask {_fmt(idx.shape)} at index {j} does not "
                                 f"match the shape of the indexed tensor {_fmt(ix.shape)} at index "
                                 f"{pos + j}")
        advs.extend((pos + j, nz) for j, nz in enumerate(np.nonzero(idx)))
    return advs


def _data(idx: Any) -> np.ndarray:
    return idx._data if isinstance(idx, Tensor) else idx


def _check_advanced(ix: _Index, bounds: bool = True) -> tuple[int, ...]:
    """PyTorch's checks of the index tensors; their broadcast shape.

    They must broadcast together; an index into an empty dim is an error; then (unless
    ``bounds`` is False: a write checks its value first) ``_check_index_bounds``.
    """
    shapes = [_data(idx).shape for _, idx in ix.advs]
    bshape = shapes[0]
    if any(sh != bshape for sh in shapes):
        try:
            bshape = np.broadcast_shapes(*shapes)
        except ValueError:
            _raise_mismatch([idx for _, idx in ix.advs])
    if not math.prod(bshape):
        return bshape
    for pos, idx in ix.advs:
        if not ix.shape[pos] and _data(idx).size:
            raise IndexError("index is out of bounds for dimension with size 0")
    if bounds:
        _check_index_bounds(ix, bshape)
    return bshape


def _check_index_bounds(ix: _Index, bshape: tuple[int, ...]) -> None:
    """Bounds are checked only when something is selected (PyTorch's kernel checks as it
    gathers); indices that select nothing are replaced by zeros, so numpy does not check them."""
    positions = {p for p, _ in ix.advs}
    if not math.prod(bshape) * math.prod(s for i, s in enumerate(ix.shape) if i not in positions):
        if math.prod(bshape):
            ix.advs = [(pos, np.zeros(_data(idx).shape, np.int64)) for pos, idx in ix.advs]
        return
    for pos, idx in ix.advs:
        a, n = _data(idx), ix.shape[pos]
        if a.size and (a.max() >= n or a.min() < -n):
            raise_out_of_bounds([_data(i) for _, i in ix.advs], [ix.shape[p] for p, _ in ix.advs],
                                bshape)


def _adjacent(positions: list[int]) -> bool:
    return positions == list(range(positions[0], positions[0] + len(positions)))


def _result_shape(ix: _Index, bshape: tuple[int, ...]) -> tuple[int, ...]:
    positions = [p for p, _ in ix.advs]
    rest = [s for i, s in enumerate(ix.shape) if i not in positions]
    at = positions[0] if _adjacent(positions) else 0
    return tuple(rest[:at]) + tuple(bshape) + tuple(rest[at:])


# ---------------------------------------------------------------- reading

def _basic(x: Tensor, ix: _Index, alias: bool) -> Tensor:
    shape = x._data.shape
    y = x
    if ix.starts != [0] * len(shape) or ix.stops != list(shape) or ix.steps != [1] * len(shape):
        y = slice_(y, starts=tuple(ix.starts), stops=tuple(ix.stops), steps=tuple(ix.steps))
    if y._data.shape != tuple(ix.shape) or (alias and y is x):
        y = reshape(y, shape=tuple(ix.shape))
    return y


def _tracing() -> bool:
    return record.tracer[0] is not None and record.tracing()


def _flat_index(idxs: list, sizes: list[int]) -> Any:
    """One index into the merged dims ``sizes`` from one (bounds-checked) index per dim."""
    strides = [math.prod(sizes[i + 1:]) for i in range(len(sizes))]
    if _tracing():
        return _traced_flat_index(idxs, sizes, strides)
    flat = None
    for idx, n, st in zip(idxs, sizes, strides):
        a = _data(idx).astype(np.int64, copy=False)
        a = (a % n if n else a) * st  # wraps negative indices (all lie in [-n, n))
        flat = a if flat is None else flat + a
    return flat.astype(np.int64, copy=False)


def _raise_mismatch(idxs: list) -> NoReturn:
    raise IndexError("shape mismatch: indexing tensors could not be broadcast together with "
                     "shapes " + ", ".join(_fmt(_data(i).shape) for i in idxs))


def _traced_flat_index(idxs: list, sizes: list[int], strides: list[int]) -> Tensor:
    # While tracing, the arithmetic is recorded so a compiled call recomputes it from its
    # indices, and so are the bounds checks: each index within its own dim, negatives wrapped
    # (numbered 0, 1, ... in the message, as eager's; with several bad indices the first
    # index tensor's is reported, where eager names the first in their broadcast order).
    bshape = np.broadcast_shapes(*(_data(i).shape for i in idxs))
    flat = None
    for j, (idx, n, st) in enumerate(zip(idxs, sizes, strides)):
        t = cast(idx if isinstance(idx, Tensor) else Tensor._make(idx), _INT64)
        t = check_index(t, size=n, axis=j, mode="wrap")
        if t._data.shape != bshape:
            t = broadcast_in_dim(t, shape=bshape, dims=tuple(range(len(bshape) - t._data.ndim, len(bshape))))
        t = E.mul(t, st)
        flat = t if flat is None else E.add(flat, t)
    return flat


def _advanced(y: Tensor, ix: _Index) -> Tensor:
    if len(ix.advs) == 1:
        pos, idx = ix.advs[0]
        if not y._data.shape[pos] and _data(idx).size:  # numpy would return an empty result
            raise IndexError("index is out of bounds for dimension with size 0")
        try:
            return _take(y, idx, axis=pos)  # the common case: numpy finds nothing to complain about
        except IndexError:
            _check_advanced(ix)  # PyTorch's error, or indices that select nothing (now zeros)
            return _take(y, ix.advs[0][1], axis=pos)
    _check_advanced(ix)
    positions = [p for p, _ in ix.advs]
    if not _adjacent(positions):
        others = [i for i in range(y._data.ndim) if i not in positions]
        y = transpose(y, perm=tuple(positions + others))
        positions = list(range(len(positions)))
    p0, k = positions[0], len(positions)
    shape = y._data.shape
    sizes = list(shape[p0:p0 + k])
    y = reshape(y, shape=shape[:p0] + (math.prod(sizes),) + shape[p0 + k:])
    return _take(y, _flat_index([i for _, i in ix.advs], sizes), axis=p0)


def getitem(self: Tensor, index: Any) -> Tensor:
    """``self[index]``: basic indexing gives a view, index tensors and masks gather a copy."""
    shape = self._data.shape
    if type(index) is int and shape and -shape[0] <= index < shape[0]:
        i = index % shape[0]  # x[i], the commonest index, skips the parser
        nd = len(shape)
        y = slice_(self, starts=(i,) + (0,) * (nd - 1), stops=(i + 1,) + shape[1:], steps=(1,) * nd)
        return _named(reshape(y, shape=shape[1:]), "SelectBackward0")
    ix = _parse(shape, index)
    if ix.advs:
        return _named(_advanced(_basic(self, ix, False), ix), "IndexBackward0")
    return _named(_basic(self, ix, True), ix.name or "AliasBackward0")


METHODS = {"__getitem__": getitem}

FUNCTIONS: list[str] = []
