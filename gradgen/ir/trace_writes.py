"""How a trace (:mod:`gradgen.ir.trace`) meets in-place writes and ``.data``.

The IR holds values, not memory: a write into a tensor made inside ``fn`` is followed (the
tensor's variable becomes the written value), while a write into an input's memory cannot be:
a compiled call would not make it. Such a write stops the trace *before* it happens, so the
call that falls back to eager writes once, as eager does. An input's memory is reached through
the input itself, or through a tensor made from it by view primitives alone: ``x[0]``,
``x.detach()`` and ``x.data`` (which a trace records as a ``stop_gradient`` of ``x``, so that a
captured tensor read through ``.data`` is read by reference, never baked in as a constant).
A write through ``.data`` stops the trace whatever it writes into: autograd does not see it,
and a program could not either.

In-place front-end functions call :func:`before_inplace` before writing and
:func:`traced_inplace` after (while ``record.tracer[0]`` is set).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..autograd import record
from ..autograd.record import NoValues
from ..ops.elementwise import stop_gradient
from ..tensor import Tensor
from .core import Var
from .location import user_location

if TYPE_CHECKING:
    from .trace import _Tracer

# The active traces (innermost last).
_active: list["_Tracer"] = []


def on_data(tr: "_Tracer", src: Tensor, out: Tensor) -> None:
    """``out = src.data`` inside fn: ``src``'s memory, detached, standing for ``src``'s value."""
    a = tr.atom(src)
    tr.bind(out, tr.emit(stop_gradient, (a,), {}, user_location()) if isinstance(a, Var) else a)
    tr.data_made.add(id(out))


def writes_input(tr: "_Tracer", t: Tensor) -> bool:
    """Whether writing into ``t`` writes into an input of ``tr``: ``t`` is one, or is made
    from one by view primitives alone (the same memory)."""
    if tr.is_input(t):
        return True
    entry = tr.known.get(id(t))
    if entry is None or type(entry[1]) is not Var:
        return False
    return tr.view_root.get(entry[1], entry[1]) in tr.input_vars


def before_inplace(target: Tensor, supported: bool = False) -> None:
    """Stop the active trace before an in-place write into ``target`` it cannot follow.

    A write into a program input's memory always stops ("in-place mutation of an input that
    requires grad", or of any other input), as does a write through ``.data``; other writes
    stop too unless the caller reports them afterwards with :func:`traced_inplace`
    (``supported=True``).
    """
    if not _active or not record.tracing():
        return
    tr = _active[-1]
    if writes_input(tr, target):
        tr.stop_input_mutation(target)
    if id(target) in tr.data_made:
        tr.stop("an in-place write through .data (autograd does not see it; a compiled "
                "program could not)")
    if not supported:
        tr.stop("an in-place operation (the traced program would not see the write)")
    if tr.abstract is not None and not isinstance(target._data, NoValues):
        tr.stop_abstract("an in-place write into memory holding values (the abstract trace has "
                         "none to write)")


def traced_inplace(target: Tensor, result: Tensor) -> None:
    """Tell the active trace that ``target`` now holds ``result``'s value (after an in-place
    write): the IR continues with ``result``'s variable. Writes into an input stop the trace."""
    if _active and record.tracing():
        tr = _active[-1]
        if tr.is_input(target):
            tr.stop_input_mutation(target)
        tr.bind(target, tr.atom(result))


__all__ = ["before_inplace", "traced_inplace", "on_data", "writes_input"]
