"""Writes through differentiable views: PyTorch's CopySlices, shared by in-place ops and ``__setitem__``.

A write through a differentiable view is PyTorch's CopySlices: the base's new value
is recorded as ``select(mask, Vᵀ(result), base)``, where Vᵀ runs the VJP rules of
the view's steps backwards (slice -> pad, transpose -> transpose, ...) and the mask
marks the elements the view covers; the base is rebased onto that node and the
view's grad_fn is replayed from it (``AsStridedBackward0``). Other views of the base
become stale and are replayed when next used (``record.refresh_view``).
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ..autograd import record
from ..autograd.node import node_class
from ..ops import elementwise as P
from ..ops.registry import Aval
from ..tensor import Tensor


def qualified(name: str) -> type:
    """A node class for a PyTorch C++-only node: prints as <CopySlices object ...>, while its
    name() is the C++ name (torch::autograd::CopySlices)."""
    return type(name, (node_class(name),),
                {"__slots__": (), "name": lambda self: "torch::autograd::" + name})


COPY_SLICES = qualified("CopySlices")
COPY_BACKWARDS = qualified("CopyBackwards")


def set_history(self: Tensor, node: Any) -> None:
    """Make ``node`` self's grad_fn; a retained gradient moves along."""
    if self._retains_grad:
        old = self._grad_fn
        if old is not None and old._retains is not None:
            old._retains = None
        node._retains = weakref.ref(self)
    self._grad_fn = node
    self._requires_grad = True


def base_alias(view: Tensor, tracing: bool) -> Tensor:
    """The view's base before a write through the view: same memory and history, own counter.

    The select recording the write saves only its mask, so the alias's values are never read
    by a backward; a trace is told (before the write) that it holds the base's value.
    """
    base = view._view_op[0]
    t = Tensor._make(base._data, base._grad_fn)
    t._requires_grad = base._requires_grad
    if tracing:
        from ..ir.trace_writes import traced_inplace  # noqa: PLC0415
        traced_inplace(t, base)
    return t


def write_through_view(view: Tensor, result: Tensor, old_base: Tensor, tracing: bool) -> None:
    """PyTorch's CopySlices: record the base's new value after ``view`` was overwritten by ``result``.

    The values are already in memory; this records ``select(mask, Vᵀ(result), old base)``,
    rebases the base onto it and replays the view's grad_fn on the base's new history.
    """
    base, steps = view._view_op[:2]
    dt = view.dtype
    g = result
    with record.trace_suspended():  # the mask is a constant: Vᵀ(ones) is nonzero exactly
        m = Tensor._make(np.ones(view._data.shape, dt.np))  # where the view reads the base
        for prim, params, shape in reversed(steps):
            m = prim.vjp(m, (Aval(shape, dt),), None, (True,), **params)[0]
        mask = m._data != 0
    for prim, params, shape in reversed(steps):
        g = prim.vjp(g, (Aval(shape, dt),), None, (True,), **params)[0]
    new = P.select(mask, g, old_base)
    if tracing:
        from ..ir.trace_writes import traced_inplace  # noqa: PLC0415
        traced_inplace(base, new)
    if new._grad_fn is not None:
        new._grad_fn.__class__ = COPY_SLICES
        set_history(base, new._grad_fn)
        record.refresh_view(view)
