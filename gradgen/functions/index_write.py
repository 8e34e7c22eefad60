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
from ._operands import cast
from .indexing import _Index, _check_advanced, _data, _parse, _result_shape, _tracing, getitem
from .view_writes import COPY_SLICES, base_alias, qualified, write_through_view
from .inplace_checks import (LEAF_MESSAGE, OVERLAP_MESSAGE, PARTIAL_MESSAGE, VIEW_OF_LEAF_MESSAGE,
                             check_view_write)
from .shape import _fmt, expanded_shape



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
                           f"{self.dtype.scalar_name} for the destination and "
                           f"{value.dtype.scalar_name} for the source.")
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
        if adv is Ellipsis and _same_view(v, region):
            return  # x[i] = x[i], e.g. the write-back of `x[i] += 1`: nothing to copy
        if v.flags.c_contiguous and region.flags.c_contiguous:
            raise RuntimeError(PARTIAL_MESSAGE)
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
    recording = False
    if _state.enabled:
        for t in (self, value):  # stale views: their requires_grad and grad_fn are rebuilt first
            if isinstance(t, Tensor) and t._view_op is not None:
                refresh_view(t, writing=t is self)
        recording = self._requires_grad or (isinstance(value, Tensor) and value._requires_grad)
        _check_recordable(self, ix, recording)
    tracing = _tracing()
    old = _old_value(self, tracing) if recording or tracing else None
    view = old is not None and self._view_op is not None and self._base is not None
    old_base = base_alias(self, tracing) if view else None
    basic = tuple(ix.np_basic) + (Ellipsis,)
    _write(self._data[basic], adv, v, value)
    self._version.value += 1
    if old is not None:
        new = _new_value(self, old, index, basic, adv, value, target, tracing)
        if tracing:
            from ..ir.trace import traced_inplace  # noqa: PLC0415
            traced_inplace(self, new)
        if view:  # self is a view: PyTorch's CopySlices on its base, self's grad_fn replayed
            write_through_view(self, new, old_base, tracing)
        elif new._grad_fn is not None:
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


_COPY_BACKWARDS = qualified("CopyBackwards")


def _write_name(self: Tensor, ix: _Index, value: Any) -> Any:
    """PyTorch's grad_fn after the write: IndexPut, Fill (whole tensor, one value), Copy*."""
    if ix.viewed:
        return COPY_SLICES  # the write went through a view: PyTorch rebases the base
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



METHODS = {"__setitem__": setitem}

FUNCTIONS: list[str] = []
