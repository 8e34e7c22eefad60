"""Applying a primitive to tensors: run its numpy implementation and record the tape.

``bind`` is the one place where eager execution meets autograd: it computes the
output, and when grad mode is on and an operand requires grad, records a
``PrimNode`` holding exactly what the primitive's VJP rule needs. While a trace
is active (``gradgen.trace``), every application is also reported to the tracer.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..dtypes import _BY_NP
from ..ops import registry
from ..ops.registry import Aval, Primitive
from .grad_mode import _state
from .node import _sequence, node_class

# Set by gradgen.tensor once the classes exist (record is imported before tensor).
Tensor: Any = None
_VersionCounter: Any = None
_new = object.__new__
_new_aval = tuple.__new__  # Aval(...) without NamedTuple's Python-level __new__

# The active tracer's callback (prim, args, params, out) or None; set by tracing.
tracer: list[Callable[..., None] | None] = [None]


def _scalar_dtype(args: tuple) -> np.dtype:
    fallback = None
    for a in args:
        d = getattr(a, "_data", a)
        if isinstance(d, np.ndarray):
            if d.dtype.kind != "b":
                return d.dtype
            fallback = d.dtype
    return fallback if fallback is not None else np.dtype(np.float32)


def bind(prim: Primitive, args: tuple, params: dict) -> Any:
    """Apply ``prim`` to ``args`` (tensors, numpy constants or Python scalars)."""
    datas = []
    record = False
    scalars = None
    for i, a in enumerate(args):
        ta = type(a)
        if ta is Tensor:
            datas.append(a._data)
            if a._requires_grad:
                record = True
        elif ta is np.ndarray:
            datas.append(a)
        else:
            datas.append(a)
            if scalars is None:
                scalars = [i]
            else:
                scalars.append(i)
    if scalars is not None:
        # Python scalars become 0-d constants of the operands' dtype ("weak" scalars).
        sd = _scalar_dtype(args)
        args = list(args)
        for i in scalars:
            args[i] = datas[i] = np.asarray(args[i], sd)
        args = tuple(args)
    out = prim.impl(*datas, **params)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    counter = None
    base = None
    if prim.is_view:
        a0 = args[0]
        if type(a0) is Tensor and (out is datas[0] or (out.base is not None and np.may_share_memory(out, datas[0]))):
            counter = a0._version
            base = a0._base if a0._base is not None else a0
    t = _new(Tensor)  # Tensor._init inlined: this is the hottest line of eager mode
    t._data = out
    t._requires_grad = False
    t._grad_fn = None
    t._grad = None
    t._version = counter or _VersionCounter()
    t._base = base
    if base is not None:
        t._view_fn = base._grad_fn
    t._accumulator = None
    t._retains_grad = False
    if record and prim.vjp is not None and _state.enabled and out.dtype.kind == "f":
        _record_node(prim, args, params, t, out)
    tr = tracer[0]
    if tr is not None:
        tr(prim, args, params, t)
    return t


STALE_VIEW_MESSAGE = (
    "a view was used after the tensor it views was modified by an in-place operation that "
    "autograd recorded, so the view's autograd history is stale. PyTorch rebuilds it (CopySlices); "
    "gradgen does not yet: take the view again after the in-place operation, or clone() it "
    "before.")


def _record_node(prim: Primitive, args: tuple, params: dict, t: Any, out: np.ndarray) -> None:
    cls = node_class(prim.grad_name)
    node = cls.__new__(cls)
    nexts = []
    needs = []
    for a in args:
        if type(a) is Tensor and a._requires_grad:
            if a._base is not None and a._base._grad_fn is not a._view_fn:
                raise RuntimeError(STALE_VIEW_MESSAGE)
            nexts.append(a._grad_fn if a._grad_fn is not None else a._get_accumulator())
            needs.append(True)
        else:
            nexts.append(None)
            needs.append(False)
    node._next = tuple(nexts)
    node._seq = next(_sequence)
    node._pre_hooks = None
    node._retains = None
    node.metadata = {}
    node.prim = prim
    node.params = params
    node._needs = needs = tuple(needs)
    if prim.save_inputs:
        keep = prim.saved_for
        if keep is not None:  # save only the operands the wanted cotangents read
            mask = keep(needs)
            args = tuple(a if m or type(a) is not Tensor else Aval(a._data.shape, a.dtype)
                         for a, m in zip(args, mask))
        node._ins = args
        versions = []
        for a in args:
            versions.append(a._version.value if type(a) is Tensor else None)
        node._versions = versions
    else:
        avals = []
        for a in args:
            d = a._data if type(a) is Tensor else a
            avals.append(_new_aval(Aval, (d.shape, _BY_NP[d.dtype])))
        node._ins = avals
        node._versions = None
    node._out = (out, t._version, t._version.value) if prim.save_output else None
    node._freed = False
    t._grad_fn = node
    t._requires_grad = True


registry._binder[0] = bind


class TraceError(RuntimeError):
    """Tracing met something the IR cannot hold; ``reason`` says what, ``where`` the user's line."""

    def __init__(self, reason: str, where: str | None = None) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{reason} (at {where})" if where else reason)


# Set by the tracer: called with a reason, raises TraceError pointing at the user's line.
stop_tracing: list[Callable[[str], None] | None] = [None]


def untraceable(reason: str) -> None:
    """Called by operations whose result the IR cannot represent; stops an active trace."""
    stop = stop_tracing[0]
    if stop is not None:
        stop(reason)
