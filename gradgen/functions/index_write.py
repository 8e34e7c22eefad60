"""Indexed writes: ``Tensor.__setitem__`` with every index form ``__getitem__`` reads.

The index is parsed as for reading (``indexing._parse``). Writes go straight into
the numpy storage; when autograd is recording, the new value of the tensor is also
recorded functionally -- ``select`` between the old value and the written values
scattered into place -- and the tensor's grad_fn is rebased onto that node
(PyTorch's CopySlices); when the tensor is itself a view, the write goes on to its
base through ``view_writes.write_through_view``. While tracing, the same composite is
what the program sees (positions and mask are computed from the index tensors
there, so they stay variables); with duplicate indices the traced write sums the
duplicates where eager keeps the last one.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import _state
from ..autograd.node import _LEGACY_TYPE, rename
from ..autograd.record import refresh_view
from ..ops import elementwise as E
from ..ops.indexing import scatter_add
from ..ops.shape import broadcast_in_dim, reshape
from ..tensor import Tensor
from ._operands import cast, checked_number
from .indexing import (_Index, _check_advanced, _check_index_bounds, _data, _expand_masks,
                       _parse, _result_shape, _tracing, getitem)
from .view_writes import COPY_BACKWARDS, COPY_SLICES, base_alias, write_through_view
from .inplace_checks import (_NUMBERS, LEAF_MESSAGE, OVERLAP_MESSAGE, PARTIAL_MESSAGE,
                             VIEW_OF_LEAF_MESSAGE, _check_partial_overlap, _dense, check_view_write)
from .shape import _fmt, expanded_shape



_VALUES = (Tensor,) + _NUMBERS


def _check_value_type(self: Tensor, value: Any) -> None:
    """PyTorch converts the value to a tensor before it looks at the index."""
    if not isinstance(value, _VALUES):
        kind = type(value)
        name = ("numpy." if kind.__module__ == "numpy" else "") + kind.__name__
        raise TypeError(f"can't assign a {name} to a torch.{_LEGACY_TYPE[self.dtype.name]}")
    if not isinstance(value, Tensor):  # (1e39 into float32, NaN into an int: refused, before
        checked_number(value, self.dtype)  # the index is looked at)


def _value_data(self: Tensor, value: Any, ix: _Index, target: tuple[int, ...], fill: bool) -> Any:
    """The value to write, checked against the indexed region like PyTorch checks it."""
    if not isinstance(value, Tensor):  # (checked by _check_value_type, before the index)
        return value
    v = value._data
    if fill:  # PyTorch's masked_fill_(mask, value.item()): any dtype, no overlap check
        return v.reshape(()).copy()
    shape = _strip_ones(v.shape, len(target))
    if not ix.advs:
        expanded_shape(shape, target, value.dtype.name)
        return v.reshape(shape)
    if not _broadcasts_to(shape, target):
        raise RuntimeError(f"shape mismatch: value tensor of shape {_fmt(v.shape)} cannot be "
                           f"broadcast to indexing result of shape {_fmt(target)}")
    if v.dtype != self._data.dtype:
        raise RuntimeError("Index put requires the source and destination dtypes match, got "
                           f"{self.dtype.scalar_name} for the destination and "
                           f"{value.dtype.scalar_name} for the source.")
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


def _check_recordable(self: Tensor, ix: _Index, recording: bool) -> None:
    """PyTorch's errors for in-place writes autograd cannot record (grad mode is on)."""
    if recording and self._grad_fn is None and self._requires_grad:
        raise RuntimeError(VIEW_OF_LEAF_MESSAGE if ix.viewed else LEAF_MESSAGE)
    if self._view_op is not None and self._base is not None:
        check_view_write(self, recording, ix.name if ix.viewed else None)


def _write(region: np.ndarray, adv: Any, v: Any, value: Any) -> None:
    if not region.flags.writeable:
        # An expanded tensor: numpy marks it read-only, PyTorch refuses only repeated elements.
        if any(st == 0 and n > 1 for st, n in zip(region.strides, region.shape)):
            raise RuntimeError(OVERLAP_MESSAGE)
        region = region.view()
        try:
            region.flags.writeable = True
        except ValueError:
            raise RuntimeError("cannot write into a tensor over read-only memory (a read-only "
                               "numpy array); clone() it first") from None
    if isinstance(value, Tensor) and np.may_share_memory(v, region):
        if adv is Ellipsis:
            if _same_view(v, region):
                return  # x[i] = x[i], e.g. the write-back of `x[i] += 1`: nothing to copy
            if value._data.ndim:  # copy_'s rule (a 0-d value fills); a broadcast one has gaps
                _check_partial_overlap(region, np.broadcast_to(v, region.shape))
        v = v.copy()  # where PyTorch gives up ("too hard") and copies element by element
    region[adv] = v


def _check_no_overlap(data: np.ndarray, basic: tuple, ix: _Index, value: Any) -> None:
    """PyTorch's index_put_ refuses a value or index tensor sharing memory with the written
    region ``data[basic]`` (assert_no_overlap: unlike copy_, the same memory in the same layout
    too) when both are dense; other layouts are "too hard" to tell and are written from a copy."""
    arrays = [_data(idx) for _, idx in ix.advs]
    if isinstance(value, Tensor):
        arrays.append(value._data)
    region = None
    for a in arrays:
        # Two arrays that each own their memory can't overlap; skip numpy's bounds check.
        if (a is data or a.base is not None or data.base is not None) and a.size:
            region = data[basic] if region is None else region
            if region.size and np.may_share_memory(a, region) and _dense(a) and _dense(region):
                raise RuntimeError(PARTIAL_MESSAGE)


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
    _check_value_type(self, value)
    if index is False:  # PyTorch: a lone Python False writes nothing (no checks, no version bump)
        return
    if index is True:  # ... and a lone True is basic, self.unsqueeze(0) written like self[None]
        index = None
    ix = _parse(self._data.shape, index, masks=False)
    basic = tuple(ix.np_basic) + (Ellipsis,)
    if ix.advs:  # index_put_: autograd's checks, then the kernel's (value before bounds)
        recording = _recording(self, ix, value)
        masks = [i for _, i in ix.advs if isinstance(i, np.ndarray) and i.dtype == np.bool_]
        # PyTorch's masked_fill_ dispatch: one mask, one value
        fill = len(masks) == len(ix.advs) == 1 and (not isinstance(value, Tensor)
                                                    or value._data.size == 1)
        if not fill:
            _check_no_overlap(self._data, basic, ix, value)
        if masks:
            ix.advs = _expand_masks(ix)
        bshape = _check_advanced(ix, bounds=False)
        target = _result_shape(ix, bshape)
        v = _value_data(self, value, ix, target, fill)
        _check_index_bounds(ix, bshape)
        adv = _np_advanced(ix)
    else:  # copy_ into the view: the value's shape first
        target, adv = tuple(ix.shape), Ellipsis
        v = _value_data(self, value, ix, target, False)
        recording = _recording(self, ix, value)
    tracing = _tracing()
    old = _old_value(self, tracing) if recording or tracing else None
    view = old is not None and self._view_op is not None and self._base is not None
    old_base = base_alias(self, tracing) if view else None
    _write(self._data[basic], adv, v, value)
    self._version.value += 1
    if old is not None:
        new = _new_value(self, old, index, basic, adv, value, target, tracing)
        if tracing:
            from ..ir.trace_writes import traced_inplace  # noqa: PLC0415
            traced_inplace(self, new)
        if view:  # self is a view: PyTorch's CopySlices on its base, self's grad_fn replayed
            write_through_view(self, new, old_base, tracing)
        elif new._grad_fn is not None:
            _rebase(self, new._grad_fn, _write_name(self, ix, value))


def _recording(self: Tensor, ix: _Index, value: Any) -> bool:
    """Whether autograd records the write, after PyTorch's refusals of it (grad mode on)."""
    if not _state.enabled:
        return False
    for t in (self, value):  # stale views: their requires_grad and grad_fn are rebuilt first
        if isinstance(t, Tensor) and t._view_op is not None:
            refresh_view(t, writing=t is self)
    recording = self._requires_grad or (isinstance(value, Tensor) and value._requires_grad)
    _check_recordable(self, ix, recording)
    return recording


def _old_value(self: Tensor, tracing: bool) -> Tensor:
    """An alias of self's storage holding self's place in the graph, with its own version counter.

    The node recording the write saves it; later writes into self must not fail that
    node's version check (the select it feeds never reads the values it saved).
    """
    old = Tensor._make(self._data, self._grad_fn)
    if tracing:
        from ..ir.trace_writes import before_inplace, traced_inplace  # noqa: PLC0415
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


def _write_name(self: Tensor, ix: _Index, value: Any) -> Any:
    """PyTorch's grad_fn after the write: IndexPut, Fill (whole tensor, one value), Copy*."""
    if ix.viewed:
        return COPY_SLICES  # the write went through a view: PyTorch rebases the base
    if ix.advs:
        return "IndexPutBackward0"
    one_value = not isinstance(value, Tensor) or not value._data.ndim
    return "FillBackward3" if one_value and self._data.ndim else COPY_BACKWARDS


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



METHODS = {"__setitem__": setitem}

FUNCTIONS: list[str] = []
