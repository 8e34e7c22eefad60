"""Applying a primitive to tensors: run its numpy implementation and record the tape.

``bind`` is the one place where eager execution meets autograd: it computes the
output, and when grad mode is on and an operand requires grad, records a
``PrimNode`` holding exactly what the primitive's VJP rule needs. While a trace
is active (``gradgen.trace``), every application is also reported to the tracer.
A view primitive's output shares its operand's memory and version counter and
remembers how to be replayed from its base; a view whose base was written in place
since is replayed when next used (``refresh_view``), as PyTorch regenerates it.
"""
from __future__ import annotations

from contextlib import contextmanager
from threading import get_ident
from typing import Any, Callable, Iterator

import numpy as np

from ..dtypes import _BY_NP, scalar_overflow
from ..ops import registry
from ..ops.registry import Aval, Primitive
from .grad_mode import _state
from .node import _sequence, multi_output_message, node_class

# Set by gradgen.tensor once the classes exist (record is imported before tensor).
Tensor: Any = None
_VersionCounter: Any = None
_new = object.__new__
_new_aval = tuple.__new__  # Aval(...) without NamedTuple's Python-level __new__

# The active tracer's callback (prim, args, params, out) or None; set by tracing. One trace at
# a time in the process (gradgen.ir.trace holds a lock), recording only the operations of the
# thread it runs in, ``trace_owner[0]`` (get_ident()): other threads run eagerly, unseen. Eager
# code reads ``tracer[0]`` first, so it pays the thread check only while some trace is active.
tracer: list[Callable[..., None] | None] = [None]
trace_owner: list[int | None] = [None]
# Called with (prim, args, params, out) for an operation of another thread during a trace: the
# trace notes the tensor (using it would stop the trace; see gradgen.ir.trace).
foreign: list[Callable[..., None] | None] = [None]


def tracing() -> bool:
    """Whether a trace is recording this thread's operations."""
    return tracer[0] is not None and trace_owner[0] == get_ident()


@contextmanager
def trace_suspended() -> Iterator[None]:
    """Run the block unseen by this thread's trace (nothing to do in other threads)."""
    if not tracing():
        yield
        return
    prev, tracer[0] = tracer[0], None
    try:
        yield
    finally:
        tracer[0] = prev


# During an abstract trace, (prim, operand arrays, params) -> the output array in place of
# ``prim.impl``'s (see gradgen.ir.trace). Read only while ``tracer[0]`` is set: eager pays nothing.
abstract: list[Callable[..., np.ndarray] | None] = [None]
# Called with (tensor, its .data) when this thread's trace is active (see gradgen.ir.trace).
data_made: list[Callable[..., None] | None] = [None]


class NoValues(np.ndarray):
    """The data of a tensor an abstract trace computed: its shape, dtype and layout, no values.

    numpy keeps the class through views, copies and astype, so the front end can tell data
    that holds no values (:func:`values`) wherever it came from.
    """


def _owner(a: np.ndarray) -> np.ndarray:
    """The array owning ``a``'s memory (numpy points a view's ``base`` at it, or close to it):
    a zero-size view shares no bytes with its operand, so memory overlap cannot tell."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


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
            vo = a._view_op
            if vo is not None and vo[3] != a._version.value and _state.enabled:
                # written in place since its grad_fn was made: maybe stale (detach only reads)
                refresh_view(a, flag_only=prim.name == "stop_gradient")
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
            a = args[i]
            if type(a) is int:  # (an int no PyTorch Scalar holds raises its OverflowError)
                scalar_overflow(a)
            args[i] = datas[i] = np.asarray(a, sd)
        args = tuple(args)
    tr = tracer[0]
    if tr is not None and trace_owner[0] != get_ident():
        tr = foreign[0]  # another thread's trace: run eagerly; it only notes the output
    if tr is None or abstract[0] is None or tr is foreign[0]:
        out = prim.impl(*datas, **params)
        if type(out) is not np.ndarray:
            out = np.asarray(out)
    else:  # an abstract trace: the output's type, no values (see gradgen.ir.trace)
        out = abstract[0](prim, datas, params)
    counter = None
    base = None
    if prim.is_view:
        a0 = args[0]
        if type(a0) is Tensor and (out is datas[0] or (out.base is not None and (
                np.may_share_memory(out, datas[0]) or (out.size == 0 and _owner(out) is _owner(datas[0]))))):
            counter = a0._version
            base = a0._base if a0._base is not None else a0
    t = _new(Tensor)  # Tensor._init inlined: this is the hottest line of eager mode
    t._data = out
    t._requires_grad = False
    t._grad_fn = None
    t._grad = None
    t._version = counter or _VersionCounter()
    t._base = base
    if base is not None and prim.vjp is not None:
        # A differentiable view: remember how to replay it from its base (see refresh_view).
        vo = a0._view_op
        step = (prim, params, datas[0].shape)
        if vo is None or a0._base is None:  # a0 is the base (flip() copies: not a view)
            t._view_op = [a0, (step,), _state.enabled, counter.value, None, False]
        else:  # a view of an output of split/chunk/unbind (in grad mode) or of a custom
            # Function's returned view is refused as that output is
            t._view_op = [vo[0], vo[1] + (step,), vo[2] and _state.enabled, counter.value,
                          0 if vo[4] is not None and _state.enabled else None, vo[5]]
    else:
        t._view_op = None
    t._accumulator = None
    t._retains_grad = False
    if record and prim.vjp is not None and _state.enabled and out.dtype.kind == "f":
        _record_node(prim, args, params, t, out)
    if tr is not None:
        tr(prim, args, params, t)
    return t


# A differentiable view's ``_view_op`` is [base, steps, made in grad mode, version, index,
# made by a custom Function]: the base is the first tensor up the chain that is not a
# differentiable view (a detach() result is one); each step is (prim, params, operand shape) -- enough to replay the view on the base's
# current history (PyTorch's view replay) and to run the steps' VJP rules backwards (a write
# through the view, PyTorch's CopySlices); the version is the shared version counter's value
# when the view's grad_fn was made: a write since may have given the base a new history. The
# index is the output index of a split/chunk/unbind piece, or of a view or input a custom
# Function returned (the last entry says which; 0 on views of one), else None.
_AS_STRIDED = node_class("AsStridedBackward0")  # PyTorch's name for a replayed view's node


def refresh_view(t: Any, writing: bool = False, flag_only: bool = False) -> None:
    """Rebuild a stale view's grad_fn by replaying its steps on its base's current history.

    Like PyTorch, a view whose storage was written in place since its grad_fn was made
    (into the base or through any view of it) gets a new grad_fn lazily, when next used,
    named AsStridedBackward0, if its base requires grad. Views made under no_grad keep what
    they have (PyTorch refuses to write through them). An output of split/chunk/unbind, a
    view or input a custom Function returned, or a view of one, cannot be replayed: using it
    raises PyTorch's error, and so does writing into it (``writing``); ``flag_only``
    (``requires_grad``, ``detach``) only says it requires grad. It stays stale, so every later
    use raises again.
    """
    vo = t._view_op
    if vo is None or t._base is None or vo[3] == t._version.value:
        return
    root, steps, tracked, _, index, in_function = vo
    if tracked and root._requires_grad and index is not None:
        if flag_only:
            t._requires_grad = True
            return
        raise RuntimeError(multi_output_message(t, index, indirect=not writing,
                                                in_function=in_function))
    vo[3] = t._version.value
    if not tracked or not root._requires_grad:
        return
    old = t._grad_fn
    prev = _state.enabled
    _state.enabled = True
    try:
        with trace_suspended():  # a backward graph only: a trace sees the write itself
            y = root
            for prim, params, _ in steps:
                y = bind(prim, (y,), params)
    finally:
        _state.enabled = prev
    new = y._grad_fn
    new.__class__ = _AS_STRIDED
    if old is not None and old._retains is not None:
        new._retains, old._retains = old._retains, None
    t._grad_fn = new
    t._requires_grad = True


def _record_node(prim: Primitive, args: tuple, params: dict, t: Any, out: np.ndarray) -> None:
    cls = node_class(prim.grad_name)
    node = cls.__new__(cls)
    nexts = []
    needs = []
    for a in args:
        if type(a) is Tensor and a._requires_grad:
            nexts.append(a._grad_fn if a._grad_fn is not None else a._get_accumulator())
            needs.append(True)
        else:
            nexts.append(None)
            needs.append(False)
    node._next = tuple(nexts)
    node._seq = next(_sequence)
    node._pre_hooks = None
    node._retains = None
    node._metadata = None
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
    node._freed = node._saves_number = False
    t._grad_fn = node
    t._requires_grad = True


registry._binder[0] = bind


class TraceError(RuntimeError):
    """Tracing met something the IR cannot hold; ``reason`` says what, ``where`` the user's line."""

    def __init__(self, reason: str, where: str | None = None) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{reason} (at {where})" if where else reason)


class TraceBusy(RuntimeError):
    """Another thread is tracing (one trace at a time): a compiled call runs eagerly this time."""


# Set by the tracer: called with a reason, raises TraceError pointing at the user's line.
stop_tracing: list[Callable[[str], None] | None] = [None]


def values(data: np.ndarray, what: str) -> np.ndarray:
    """``data``, whose values the caller is about to read (``what`` says where).

    Data an abstract trace made holds no values: reading it stops that trace (the call is
    traced again on real data) rather than deciding anything on garbage. Outside an abstract
    trace this is a no-op.
    """
    if isinstance(data, NoValues) and abstract[0] is not None and tracing():
        abstract[0].stop(f"{what} reads values the abstract trace does not have")
    return data


def untraceable(reason: str) -> None:
    """Called by operations whose result the IR cannot represent; stops an active trace."""
    stop = stop_tracing[0]
    if stop is not None and trace_owner[0] == get_ident():
        stop(reason)
