"""Recomputing cheap values where they are read instead of storing them (after fusion).

The greedy fusion of :mod:`gradgen.codegen.schedule` stores every value a kernel
computes that another kernel reads. Over a whole domain that is a full write and
a full read of memory per value -- layer norm's gradient stored ``x - mean``,
``rstd`` broadcast over the row and three products of them, 2 MB each at
512x1024, for kernels that could have computed them from ``x`` and two numbers
per row. This pass revisits each such stored buffer: if every kernel reading it
can compute the value itself from what it can read anyway -- program inputs and
constants, buffers other kernels store, and per-row values of the producing
kernel, stored small (one element per row) and read through a broadcast -- with
at most ``MAX_EQNS`` arithmetic equations (``CHEAP``: no libm call, so a reader
never redoes an ``exp`` to save a read), those equations join the readers and
the buffer is no longer stored. Equations and loads a kernel no longer needs go,
and a kernel left with nothing to do disappears.

The recomputed equations are the same IR equations, so each reader computes
exactly the value the producer would have stored: results do not change.
Values read by host ops or returned by the program, and values read through a
layout (a transpose, a slice) rather than element for element, stay stored.
"""
from __future__ import annotations

from typing import Any

from ..ir.core import Eqn, Literal, Var
from . import clower
from .layout import contiguous
from .steps import Buffer, HostOp, Kernel, View

MAX_EQNS = 16  # equations recomputed per reader at most
CHEAP = frozenset({"add", "sub", "mul", "div", "neg", "abs", "sign", "max", "min", "select",
                   "convert", "stop_gradient", "eq", "ne", "lt", "le", "gt", "ge", "and", "or",
                   "not"})


class _Plan:
    """What a reader needs to compute one value itself (collected without side effects)."""

    def __init__(self) -> None:
        self.eqns: list[Eqn] = []
        self.loads: dict[Var, View] = {}
        self.consts: dict[Var, Literal] = {}
        self.aliases: dict[Var, tuple[Eqn, Any]] = {}  # per-row broadcast -> (eqn, strides)
        self.done: set[Var] = set()


def rematerialize(s: Any, outputs: list) -> None:
    """Apply the pass to scheduler ``s`` (a ``schedule._Scheduler``) whose program outputs
    are ``outputs`` (views and literals)."""
    kernels = [k for k in s.steps if isinstance(k, Kernel)]
    defn = {e.out: e for k in kernels for e in k.eqns}
    pinned = {o.buffer for o in outputs if isinstance(o, View)}
    pinned |= {a.buffer for h in s.steps if isinstance(h, HostOp) for a in h.inputs
               if isinstance(a, View)}
    changed = False
    for producer in kernels:
        for v, buf in list(producer.stores.items()):
            if buf in pinned or v.aval.shape != producer.domain:
                continue
            readers = [k for k in kernels if k is not producer and
                       any(w.buffer is buf for w in k.loads.values())]
            plans = [_plan_reader(s, k, v, buf, defn) for k in readers]
            if readers and all(p is not None for p in plans):
                for k, p in zip(readers, plans):
                    _apply(s, k, p)
                changed = True
    if changed:
        _drop_unread(s, outputs)


def _plan_reader(s: Any, k: Kernel, v: Var, buf: Buffer, defn: dict) -> _Plan | None:
    """How kernel ``k`` computes ``v`` (which it reads from ``buf``), or None if it cannot."""
    if any(w.buffer is buf and not (a is v and w.is_whole) for a, w in k.loads.items()):
        return None  # read through a layout: the loop index is not the value's own
    p = _Plan()
    return p if _need(s, k, v, p, defn) else None


def _need(s: Any, k: Kernel, v: Any, p: _Plan, defn: dict) -> bool:
    """Whether ``v`` can be made available in ``k`` (recording how in ``p``)."""
    if isinstance(v, Literal):
        if v.aval.ndim and v not in k.loads:  # an array constant is read from its buffer
            p.loads[v] = s.where(v)
        return True
    if v in p.done:
        return True
    w = s.where(v)
    if w is k and v not in k.loads:
        return True  # computed in k itself
    if isinstance(w, Literal):
        p.consts[v] = w
    elif isinstance(w, View):
        if s.reaches([w], k):
            return False
        p.loads[v] = w
    elif not isinstance(w, Kernel) or s.feeds(k, w):
        return False
    elif v in w.row_values:
        alias = _row_alias(w, v, defn)
        if alias is None:
            return False
        p.aliases[v] = alias
    else:
        e = defn.get(v)
        if e is None or e.prim.name not in CHEAP or clower.elementwise_template(e) is None \
                or v.aval.shape != k.domain or len(p.eqns) >= MAX_EQNS:
            return False
        if not all(_need(s, k, a, p, defn) for a in e.inputs):
            return False
        p.eqns.append(e)
    p.done.add(v)
    return True


def _row_alias(w: Kernel, v: Var, defn: dict) -> tuple[Eqn, Any] | None:
    """A broadcast of a per-row value of ``w`` back over the domain: (its equation, the strides
    it reads the row-shaped value's buffer with), or None."""
    e = defn.get(v)
    if e is None or w.is_row_shaped(v) or len(e.inputs) != 1:
        return None
    base = e.inputs[0]
    low = e.prim.c_lowering
    if not (isinstance(low, dict) and "view" in low and isinstance(base, Var)
            and base in w.row_values and w.is_row_shaped(base)):
        return None
    strides = low["view"](base.aval.shape, contiguous(base.aval.shape), **e.params)
    return None if strides is None else (e, tuple(strides))


def _apply(s: Any, k: Kernel, p: _Plan) -> None:
    for v, (e, strides) in p.aliases.items():
        base = s.as_view(e.inputs[0])  # stored small: one element per row
        k.loads[v] = View(base.buffer, v.aval.shape, strides)
    k.loads.update(p.loads)
    k.consts.update(p.consts)
    for e in p.eqns:
        k.loads.pop(e.out, None)
    have = {id(e) for e in k.eqns}
    k.eqns = sorted(k.eqns + [e for e in p.eqns if id(e) not in have],
                    key=lambda e: s.order[id(e)])


def _drop_unread(s: Any, outputs: list) -> None:
    """Stores nobody reads go, then equations no store needs, then empty kernels."""
    read = {o.buffer for o in outputs if isinstance(o, View)}
    for step in s.steps:
        views = step.loads.values() if isinstance(step, Kernel) else step.inputs
        read |= {w.buffer for w in views if isinstance(w, View)}
    for k in [k for k in s.steps if isinstance(k, Kernel)]:
        for v, buf in list(k.stores.items()):
            if buf not in read:
                del k.stores[v]
                s.producer.pop(buf, None)
        k.column_sums = [c for c in k.column_sums if c.partial in k.stores]
        live = set(k.stores) | {c.eqn.inputs[0] for c in k.column_sums}
        kept = []
        for e in reversed(k.eqns):
            if e.out in live:
                kept.append(e)
                live.update(e.inputs)  # (array literals are loads too: keyed by the literal)
        k.eqns = kept[::-1]
        k.loads = {a: w for a, w in k.loads.items() if a in live}
        k.consts = {a: c for a, c in k.consts.items() if a in live}
        k.row_values &= {e.out for e in k.eqns}
        if not any(clower.is_reduction(e) for e in k.eqns) and not k.column_sums:
            k.red_axes = None
        if not k.eqns:
            s.steps.remove(k)


__all__ = ["rematerialize", "MAX_EQNS"]
