"""Indexing: ``Tensor.__getitem__`` / ``__setitem__`` with every numpy and PyTorch index form.

An index is parsed once (``_parse``) into a *basic* part and an *advanced*
part, in PyTorch's order: integers, slices, ``None`` and ``...`` first (a view:
``slice_``, then ``rev`` for negative steps, then one ``reshape`` that drops
integer-indexed dims and inserts new ones), then integer and boolean index
tensors (a gather: ``take``). Several index tensors broadcast together; they
are merged into one flat index over their dims (moved to the front first when
they are not adjacent, numpy's placement rule), so one ``take`` does the
gather. Boolean masks become integer indices with ``np.nonzero`` (their
result shape depends on the data).

Writes (``__setitem__``) go straight into the numpy storage; when autograd is
recording, the new value of the tensor is also recorded functionally -- ``select``
between the old value and the written values scattered into place -- and the
tensor's grad_fn is rebased onto that node (PyTorch's CopySlices). While tracing,
the same composite is what the program sees (positions and mask are computed
from the index tensors there, so they stay variables); with duplicate indices
the traced write sums the duplicates where eager keeps the last one.
"""
from __future__ import annotations

import functools
import math
import operator
import warnings
from typing import Any, NoReturn

import numpy as np

from ..autograd import record
from ..autograd.grad_mode import _state
from ..autograd.node import _LEGACY_TYPE, node_class, rename
from ..dtypes import int64 as _INT64
from ..ops import elementwise as E
from ..ops.indexing import check_bounds, scatter_add, slice_, rev, take as _take
from ..ops.shape import broadcast_in_dim, reshape, transpose
from ..tensor import Tensor, _wrap_dim
from ._operands import cast
from .math import _named
from .shape import _fmt, expanded_shape

_NOT_AN_INDEX = ("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables "
                 "are valid indices (got {})")
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
    if isinstance(obj, (bool, np.bool_)):
        return "m", np.asarray(bool(obj))
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
        if arr.dtype.kind in "fiu" or arr.size == 0:
            arr = arr.astype(np.int64)  # PyTorch truncates float lists to long indices
        return _classify_array(arr, arr)
    if isinstance(obj, str):
        raise TypeError("new(): invalid data type 'str'")
    raise IndexError(_NOT_AN_INDEX.format(type(obj).__name__))


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
    """A parsed index: the slice/rev/reshape of its basic part and the gathers of its advanced part."""

    __slots__ = ("starts", "stops", "steps", "flips", "shape", "np_basic", "advs", "name", "viewed")

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.starts = [0] * len(shape)
        self.stops = list(shape)
        self.steps = [1] * len(shape)
        self.flips: list[int] = []
        self.shape: list[int] = []        # shape after the basic part
        self.np_basic: list[Any] = []     # the basic part as a numpy index (a view)
        self.advs: list[tuple[int, Any]] = []  # (dim after the basic part, integer indices)
        self.name: str | None = None      # grad_fn name of the basic part's last step
        self.viewed = False               # whether PyTorch's basic part makes a view (not self)


def _consumed(items: list) -> int:
    return sum(1 if k in "isa" else (v.ndim if k == "m" else 0) for k, v in items)


def _parse(shape: tuple[int, ...], index: Any) -> _Index:
    items, single = _items(index)
    ndim = len(shape)
    used = _consumed(items)
    if used > ndim:
        if ndim == 0 and single and items[0][0] == "i":
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                             "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
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
    if any(isinstance(i, np.ndarray) and i.dtype == np.bool_ for _, i in ix.advs):
        ix.advs = _expand_masks(ix)
    return ix


def _int_item(ix: _Index, shape: tuple, d: int, i: int, pos: int) -> None:
    n = shape[d]
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of bounds for dimension {pos} with size {n}")
    i %= n
    ix.starts[d], ix.stops[d] = i, i + 1
    ix.np_basic.append(i)
    ix.name = "SelectBackward0"
    ix.viewed = True


def _slice_item(ix: _Index, shape: tuple, d: int, s: slice, bare: bool) -> None:
    n = shape[d]
    a, b, step = s.indices(n)
    m = len(range(a, b, step))
    if step > 0:
        ix.starts[d], ix.stops[d], ix.steps[d] = a, (a + (m - 1) * step + 1 if m else a), step
    elif m:  # a, a+step, ... downwards: slice the same elements upwards, then reverse them
        ix.starts[d], ix.stops[d], ix.steps[d] = a + (m - 1) * step, a + 1, -step
        ix.flips.append(d)
    else:
        ix.starts[d] = ix.stops[d] = 0
    ix.shape.append(m)
    ix.np_basic.append(slice(a, b if b >= 0 else None, step))
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
            ix.advs.append((len(ix.shape), np.zeros(int(arr), np.int64)))
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
        if not (isinstance(idx, np.ndarray) and idx.dtype == np.bool_):
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


def _check_advanced(ix: _Index) -> tuple[int, ...]:
    """PyTorch's checks of the index tensors; their broadcast shape.

    They must broadcast together; an index into an empty dim is an error; bounds are
    checked only when something is selected (PyTorch's kernel checks as it gathers).
    Indices that select nothing are replaced by zeros, so numpy does not check them.
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
    positions = {p for p, _ in ix.advs}
    if math.prod(s for i, s in enumerate(ix.shape) if i not in positions):
        for j, (pos, idx) in enumerate(ix.advs):  # PyTorch numbers the index tensors 0, 1, ...
            check_bounds(_data(idx), ix.shape[pos], j)
    else:
        ix.advs = [(pos, np.zeros(_data(idx).shape, np.int64)) for pos, idx in ix.advs]
    return bshape


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
    if ix.flips:
        y = rev(y, axes=tuple(ix.flips))
    if y._data.shape != tuple(ix.shape) or (alias and y is x):
        y = reshape(y, shape=tuple(ix.shape))
    return y


def _tracing() -> bool:
    return record.tracer[0] is not None


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
    # While tracing, the arithmetic is recorded so a compiled call recomputes it from its indices.
    bshape = np.broadcast_shapes(*(_data(i).shape for i in idxs))
    flat = None
    for idx, n, st in zip(idxs, sizes, strides):
        t = cast(idx if isinstance(idx, Tensor) else Tensor._make(idx), _INT64)
        t = E.select(E.lt(t, 0), E.add(t, n), t)
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


# ---------------------------------------------------------------- writing

_LEAF = "a leaf Variable that requires grad is being used in an in-place operation."
_VIEW_OF_LEAF = "a view of a leaf Variable that requires grad is being used in an in-place operation."
_OVERLAP = ("unsupported operation: some elements of the input tensor and the written-to tensor "
            "refer to a single memory location. Please clone() the tensor before performing the "
            "operation.")
_EXPANDED = ("unsupported operation: more than one element of the written-to tensor refers to a "
             "single memory location. Please clone() the tensor before performing the operation.")
_SHORT = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}


def _value_data(self: Tensor, value: Any, ix: _Index, target: tuple[int, ...]) -> Any:
    """The value to write, checked against the indexed region like PyTorch checks it."""
    if isinstance(value, (bool, int, float, np.generic)):
        return value
    if not isinstance(value, Tensor):
        kind = type(value)
        name = ("numpy." if kind.__module__ == "numpy" else "") + kind.__name__
        raise TypeError(f"can't assign a {name} to a torch.{_LEGACY_TYPE[self.dtype.name]}")
    v = value._data
    if ix.advs and v.dtype != self._data.dtype:
        raise RuntimeError("Index put requires the source and destination dtypes match, got "
                           f"{_SHORT[self.dtype.name]} for the destination and "
                           f"{_SHORT[value.dtype.name]} for the source.")
    shape = _strip_ones(v.shape, len(target))
    if not ix.advs:
        expanded_shape(shape, target, value.dtype.name)
    elif not _broadcasts_to(shape, target):
        raise RuntimeError(f"shape mismatch: value tensor of shape {_fmt(v.shape)} cannot be "
                           f"broadcast to indexing result of shape {_fmt(target)}")
    return v.reshape(shape)


def _strip_ones(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Drop leading size-1 dims beyond ``ndim`` (PyTorch writes ones(1, 3) into a row)."""
    while len(shape) > ndim and shape[0] == 1:
        shape = shape[1:]
    return shape


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    if len(shape) > len(target):
        return False
    return all(a in (1, b) for a, b in zip(reversed(shape), reversed(target)))


def _check_recordable(self: Tensor, ix: _Index) -> None:
    """PyTorch's errors for in-place writes autograd cannot record (and ours for views)."""
    if self._grad_fn is None and self._requires_grad:
        raise RuntimeError(_VIEW_OF_LEAF if ix.viewed else _LEAF)
    base = self._base
    if base is not None and not (self._grad_fn is None and self._data is base._data):  # detach()
        if base._grad_fn is None and base._requires_grad:
            raise RuntimeError(_VIEW_OF_LEAF)
        raise NotImplementedError(
            "gradgen: in-place writes into views of tensors that require grad are not supported "
            "yet (autograd would have to rebase the base tensor's graph); write through the base "
            "tensor instead, or clone() the view first")


def _write(region: np.ndarray, adv: Any, v: Any, value: Any) -> None:
    if not region.flags.writeable:
        # An expanded tensor: numpy marks it read-only, PyTorch refuses only repeated elements.
        if any(st == 0 and n > 1 for st, n in zip(region.strides, region.shape)):
            raise RuntimeError(_EXPANDED)
        region = region.view()
        try:
            region.flags.writeable = True
        except ValueError:
            raise RuntimeError("cannot write into a tensor over read-only memory (a read-only "
                               "numpy array); clone() it first") from None
    if isinstance(value, Tensor) and np.may_share_memory(v, region):
        if adv is Ellipsis and _same_view(v, region):
            return  # x[i] = x[i], e.g. the write-back of `x[i] += 1`: nothing to copy
        if v.flags.c_contiguous and region.flags.c_contiguous:
            raise RuntimeError(_OVERLAP)
        v = v.copy()
    region[adv] = v


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    return (a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _np_advanced(ix: _Index) -> tuple:
    adv: list[Any] = [slice(None)] * (ix.advs[-1][0] + 1)
    for pos, idx in ix.advs:
        adv[pos] = _data(idx)
    return tuple(adv)


def setitem(self: Tensor, index: Any, value: Any) -> None:
    """``self[index] = value``: writes in place, bumps the version counter, and records the write."""
    ix = _parse(self._data.shape, index)
    if ix.advs:
        target = _result_shape(ix, _check_advanced(ix))
        adv = _np_advanced(ix)
    else:
        target, adv = tuple(ix.shape), Ellipsis
    v = _value_data(self, value, ix, target)
    recording = _state.enabled and (self._requires_grad or (isinstance(value, Tensor) and value._requires_grad))
    if recording:
        _check_recordable(self, ix)
    tracing = _tracing()
    old = _old_value(self, tracing) if recording or tracing else None
    basic = tuple(ix.np_basic) + (Ellipsis,)
    _write(self._data[basic], adv, v, value)
    self._version.value += 1
    if old is not None:
        new = _new_value(self, old, index, basic, adv, value, target, tracing)
        if tracing:
            from ..ir.trace import traced_inplace  # noqa: PLC0415
            traced_inplace(self, new)
        if new._grad_fn is not None:
            _rebase(self, new._grad_fn, _write_name(self, ix, value))


def _old_value(self: Tensor, tracing: bool) -> Tensor:
    """An alias of self's storage holding self's place in the graph, with its own version counter.

    The node recording the write saves it; later writes into self must not fail that
    node's version check (the select it feeds never reads the values it saved).
    """
    old = Tensor._make(self._data, self._grad_fn)
    if tracing:
        from ..ir.trace import before_inplace, traced_inplace  # noqa: PLC0415
        before_inplace(self, supported=True)
        traced_inplace(old, self)  # the alias holds self's value before the write
    return old


def _new_value(self: Tensor, old: Tensor, index: Any, basic: tuple, adv: Any, value: Any,
               target: tuple[int, ...], tracing: bool) -> Tensor:
    """select(mask, written values scattered into place, old value): self's value after the write."""
    shape, size = self._data.shape, self._data.size
    pos = None
    if tracing:  # index tensors stay variables of the traced program
        pos = getitem(Tensor._make(np.arange(size).reshape(shape)), index)
        ones = Tensor._make(np.ones(pos._data.shape, np.int64))
        mask = E.gt(reshape(scatter_add(ones, pos, shape=(size,), axis=0), shape=shape), 0)
    else:
        mask = np.zeros(shape, np.bool_)
        mask[basic][adv] = True
    if isinstance(value, Tensor) and (value._requires_grad or tracing):
        if pos is None:
            pos = np.arange(size).reshape(shape)[basic][adv]
        v = cast(value, self.dtype)
        stripped = _strip_ones(v._data.shape, len(target))
        if v._data.shape != stripped:
            v = reshape(v, shape=stripped)
        if stripped != target:
            v = broadcast_in_dim(v, shape=target, dims=tuple(range(len(target) - len(stripped), len(target))))
        placed = reshape(scatter_add(v, pos, shape=(size,), axis=0), shape=shape)
    elif isinstance(value, Tensor):
        placed = self._data.copy()
    else:
        placed = np.asarray(value).astype(self._data.dtype)
    return E.select(mask, placed, old)


def _qualified(name: str) -> type:
    # PyTorch's C++-only nodes print as <CopySlices object ...> but name() gives the C++ name.
    return type(name, (node_class(name),), {"__slots__": (), "name": lambda self: "torch::autograd::" + name})


_COPY_SLICES, _COPY_BACKWARDS = _qualified("CopySlices"), _qualified("CopyBackwards")


def _write_name(self: Tensor, ix: _Index, value: Any) -> Any:
    """PyTorch's grad_fn after the write: IndexPut, Fill (whole tensor, one value), Copy*."""
    if ix.viewed:
        return _COPY_SLICES  # the write went through a view: PyTorch rebases the base
    if ix.advs:
        return "IndexPutBackward0"
    one_value = not isinstance(value, Tensor) or not value._data.ndim
    return "FillBackward3" if one_value and self._data.ndim else _COPY_BACKWARDS


def _rebase(self: Tensor, node: Any, name: Any) -> None:
    """Make ``node`` self's grad_fn: self's history now ends with the write."""
    if isinstance(name, str):
        rename(node, name)
    else:
        node.__class__ = name
    if self._retains_grad and self._grad_fn is not None:
        node._retains, self._grad_fn._retains = self._grad_fn._retains, None
    self._grad_fn = node
    self._requires_grad = True


# ---------------------------------------------------------------- select, narrow, split

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
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    start = start + n if start < 0 else start
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return _range_slice(input, d, start, start + length)


def _pieces(x: Tensor, d: int, sizes: list[int], name: str) -> tuple[Tensor, ...]:
    out = []
    start = 0
    for size in sizes:
        out.append(_named(_range_slice(x, d, start, start + size), name))
        start += size
    return tuple(out)


def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Views of consecutive pieces: of size ``split_size`` (the last may be smaller) or of the given sizes."""
    shape = tensor._data.shape
    if not shape:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, len(shape))
    n, s = shape[d], split_size_or_sections
    if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
        s = int(s)
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
                           f"tensor's size at dimension {d}), but got split_sizes={_fmt(sizes)}")
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
    return split(input, -(-n // chunks), d)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """Every slice along ``dim``, with ``dim`` removed (views)."""
    shape = input._data.shape
    if not shape:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = _wrap_dim(dim, len(shape))
    rest = shape[:d] + shape[d + 1:]
    return tuple(_named(reshape(_range_slice(input, d, i, i + 1), shape=rest), "UnbindBackward0")
                 for i in range(shape[d]))


# ---------------------------------------------------------------- gathers

def _int_index(index: Any, fn: str, what: str) -> Tensor:
    if not isinstance(index, Tensor) or index._data.dtype.kind not in "iu":
        raise RuntimeError(f"{fn}(): Expected dtype {what} for index")
    return index


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries ``index`` (a vector) of dim ``dim``."""
    idx = _int_index(index, "index_select", "int32 or int64")
    if idx._data.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = _wrap_dim(dim, input._data.ndim)
    n = input._data.shape[d] if input._data.ndim else 1
    a = idx._data
    if a.size and (a.min() < 0 or a.max() >= n):
        bad = a[(a < 0) | (a >= n)].flat[0]
        raise RuntimeError(f"INDICES element is out of DATA bounds, id={bad} axis_dim={n}")
    if idx._data.ndim == 0:
        idx = reshape(idx, shape=(1,))
    if input._data.ndim == 0:
        return _named(reshape(_take(reshape(input, shape=(1,)), idx, axis=0), shape=()),
                      "IndexSelectBackward0")
    return _take(input, idx, axis=d)


def take(input: Tensor, index: Tensor) -> Tensor:
    """``input`` read as a flat vector at positions ``index`` (any shape; negatives wrap)."""
    idx = _int_index(index, "take", "int64")
    n = input._data.size
    a = idx._data
    if a.size and (a.min() < -n or a.max() >= n):
        bad = a[(a < -n) | (a >= n)].flat[0]
        raise IndexError(f"out of range: tried to access index {bad} on a tensor of {n} elements.")
    return _named(_take(reshape(input, shape=(n,)), idx, axis=0), "TakeBackward0")


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j][k] = input[i][index[i][j][k]][k]`` (for dim 1): an elementwise gather."""
    idx = _int_index(index, "gather", "int32/int64")
    shape, ishape = input._data.shape or (1,), idx._data.shape or (1,)
    if len(ishape) != len(shape):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    d = _wrap_dim(dim, len(shape))
    for i, (a, b) in enumerate(zip(ishape, shape)):
        if i != d and a > b:
            raise RuntimeError(f"Size does not match at dimension {i} expected index {_fmt(ishape)} "
                               f"to be no larger than self {_fmt(shape)} apart from dimension {d}")
    a = idx._data
    if a.size and (a.min() < 0 or a.max() >= shape[d]):
        bad = a[(a < 0) | (a >= shape[d])].flat[0]
        raise RuntimeError(f"index {bad} is out of bounds for dimension {d} with size {shape[d]}")
    # Flat position = index * stride[d] + the (constant) offsets of the other coordinates.
    stride, offsets = _gather_offsets(shape, ishape, d)
    if _tracing():
        t = reshape(idx, shape=ishape) if idx._data.shape != ishape else idx
        flat = E.add(E.mul(cast(t, _INT64), stride), offsets)
    else:
        flat = a.reshape(ishape) * stride + offsets
    out = _take(reshape(input, shape=(input._data.size,)), flat, axis=0)
    if out._data.shape != idx._data.shape:
        out = reshape(out, shape=idx._data.shape)
    return _named(out, "GatherBackward0")


@functools.lru_cache(maxsize=256)
def _gather_offsets(shape: tuple[int, ...], ishape: tuple[int, ...], d: int) -> tuple[int, np.ndarray]:
    """The stride of dim ``d`` and the flat offsets of every other coordinate (read-only, cached)."""
    strides = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    offsets = np.zeros(ishape, np.int64)
    for i, s in enumerate(ishape):
        if i != d:
            offsets += (np.arange(s) * strides[i]).reshape((s,) + (1,) * (len(ishape) - i - 1))
    offsets.flags.writeable = False
    return strides[d], offsets


METHODS = {
    "__getitem__": getitem, "__setitem__": setitem, "select": select, "narrow": narrow,
    "split": split, "chunk": chunk, "unbind": unbind, "index_select": index_select,
    "take": take, "gather": gather,
}

FUNCTIONS = ["select", "narrow", "split", "chunk", "unbind", "index_select", "take", "gather"]
