"""Gathers and scatters of one index per row, lowered to comparisons the scheduler fuses.

Cross-entropy picks one class per row (``take_along`` with an index of extent 1
along the class axis) and its gradient scatters one value per row back
(``scatter_add_along``). Run as host ops (numpy between kernels), they force the
whole log-softmax to be stored and the gradient to be built in a zeroed buffer.
Written instead as elementwise work over the row, with ``iota`` the positions
along ``axis`` and ``idx'`` the checked index::

    take_along(x, idx)        -> reduce_max(select(iota == idx', x, -inf), axis)
    scatter_add_along(u, idx) -> select(iota == idx', bcast(u + 0.0), 0.0)

both join the row-wise kernels around them (see :mod:`gradgen.codegen.schedule`).
They are exact: the maximum of one value and -infs is that value (NaN included,
and -0.0 > -inf keeps -0.0); ``u + 0.0`` turns -0.0 into +0.0 as adding it to
zeros does in the numpy implementation (computed once per row, outside the loop
over the row: gcc does not vectorize a loop calling libm whose select computes
its operand). A ``reduce_sum`` along the axis of such a scatter (or of its
negation, as log_softmax's gradient has) is its row value ``u + 0.0`` (negated):
the sum of one value and zeros, without a pass over the row. Only floating operands are rewritten
(-inf has no integer counterpart), and only when the index covers the operand on
every other axis, so each row holds exactly one selected element.

``idx'`` is ``check_index[mode='wrap']`` of the index: a small check kernel
(:mod:`gradgen.codegen.checks`) after which the call raises the eager error for an
index out of range (a compiled call never answers with a wrong element), wrapping
negatives and writing 0 for a bad index (the pick then stays inside the row). An index already checked for this axis
size by the front end (nll_loss records its check) is used as it is. When the
axis has at most 2**31 - 1 positions, ``iota`` is int32 and ``idx'`` is converted
to int32 (exact: it is in range), so the compare runs in the lanes of a float32
row, not in int64 lanes packed down. In C ``iota`` is the loop index itself (no
array is read, see ``render._KernelText.load``) and a row-wise kernel does the
pick ``reduce_max(select(...))`` as one load of ``x`` at ``idx'`` per row when ``x``
is read from memory (:func:`gradgen.codegen.rowwise.picks`).

Before that, a pick is moved ahead of the elementwise equations producing its
operand, as far as their other operands are constant along ``axis``:
``take_along(x - bcast(m) - bcast(l), idx)`` becomes ``take_along(x, idx) - m - l``
with ``m`` and ``l`` one value per row. The same scalar operations run on the
same element, so the value is the same; the pick then reads ``x`` in the first
pass over each row instead of needing the whole chain (cross-entropy picks from
the log-softmax, whose terms are known only after the second pass).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.builder import Builder, building
from ..ir.core import Eqn, Literal, Program, Var
from ..dtypes import int32
from ..ops.elementwise import add, convert, eq, neg, select
from ..ops.indexing import check_index, scatter_add_along, take_along
from ..ops.reduce import reduce_max, reduce_sum
from ..ops.registry import Aval
from ..ops.shape import broadcast_in_dim, reshape
from ..passes._rewrite import Context, rewrite
from ..passes.dce import dce
from ..passes.fold import ELEMENTWISE
from . import clower


# How many elementwise equations a pick may move ahead of (a bound on the recursion).
_MAX_DEPTH = 32


class _Emitter(Builder):
    """A builder whose new variables are numbered by the rewrite's context (no clashes)."""

    def __init__(self, ctx: Context, loc: str | None) -> None:
        super().__init__()
        self.ctx = ctx
        self.loc = loc

    def new_var(self, aval: Aval, name: str | None = None) -> Var:
        return self.ctx.fresh(aval)


def _one_per_row(idx: Any, shape: tuple[int, ...], axis: int, dtype: Any) -> bool:
    """Whether the (take_along / scatter_add_along) equation picks one element of each row."""
    return (dtype.is_floating_point and isinstance(idx, Var) and 0 not in shape
            and idx.shape[axis] == 1
            and all(a == b for d, (a, b) in enumerate(zip(idx.shape, shape)) if d != axis))


def _is_checked(ctx: Context, idx: Any, size: int) -> bool:
    """Whether ``idx`` is (a reshape of) the output of a check_index for ``size``: every mode
    leaves only indices in ``[0, size)``."""
    e = ctx.defn(idx)
    while e is not None and e.prim is reshape:
        e = ctx.defn(e.inputs[0])
    return e is not None and e.prim is check_index and e.params["size"] == size


class _Lowering:
    """The rewrite rule; remembers each index's check, each iota, each pick and each
    scattered row value, so that each is made once."""

    def __init__(self) -> None:
        self.checked: dict[tuple, Var] = {}
        self.narrowed: dict[Var, Var] = {}   # checked index -> as int32
        self.iotas: dict[tuple, Literal] = {}
        self.picks: dict[tuple, Any] = {}
        self.values: dict[Var, Var] = {}     # u -> u + 0.0 (one per row)
        self.onehots: dict[Var, tuple] = {}  # lowered scatter -> (its row value, axis)

    def hits(self, b: _Emitter, idx: Var, shape: tuple[int, ...], axis: int) -> Var:
        """``iota == idx'`` over ``shape``: true at the one selected element of each row."""
        n = shape[axis]
        ok = self.checked.get((idx, n))
        if ok is None:
            ok = idx if _is_checked(b.ctx, idx, n) else check_index(idx, size=n, axis=axis,
                                                                      mode="wrap")
            self.checked[(idx, n)] = ok
        narrow = n <= np.iinfo(np.int32).max and idx.dtype is not int32
        if narrow:  # exact: the checked index is in [0, n)
            if ok not in self.narrowed:
                self.narrowed[ok] = convert(ok, dtype=int32)
            ok = self.narrowed[ok]
        dt = int32 if narrow else idx.dtype
        key = (n, axis, len(shape), dt)
        iota = self.iotas.get(key)
        if iota is None:
            at = tuple(n if d == axis else 1 for d in range(len(shape)))
            iota = self.iotas[key] = Literal(np.arange(n, dtype=dt.np).reshape(at))
        dims = tuple(range(len(shape)))
        return eq(broadcast_in_dim(iota, shape=shape, dims=dims),
                  broadcast_in_dim(ok, shape=shape, dims=dims))

    def pick(self, b: _Emitter, x: Any, idx: Var, axis: int, depth: int = 0) -> Any:
        """``take_along(x, idx)`` (shape ``idx.shape``), moved ahead of the elementwise
        equations making ``x`` where their other operands are constant along ``axis``."""
        key = (x, idx, axis)
        got = self.picks.get(key)
        if got is not None:
            return got
        e = b.ctx.defn(x)
        sink = e is not None and depth < _MAX_DEPTH and _sinkable(e)
        rows = _row_operands(b.ctx, e, axis) if sink else None
        if rows is not None:
            ops = [self.pick(b, a, idx, axis, depth + 1) if r is None else
                   r if isinstance(r, Literal) else _at_rows(r, idx.shape)
                   for a, r in zip(e.inputs, rows)]
            got = e.prim(*ops, **e.params)
        else:
            picked = reduce_max(select(self.hits(b, idx, x.shape, axis), x, -np.inf),
                                axes=(axis,))
            got = reshape(picked, shape=tuple(idx.shape))
        self.picks[key] = got
        return got

    def scatter(self, b: _Emitter, u: Var, idx: Var, axis: int, shape: tuple[int, ...]) -> Var:
        # u + 0.0 once per row, outside the loop over the row: gcc vectorizes a select between
        # a loaded value and 0 next to libm calls, not one computing its operand.
        value = self.values.get(u)
        if value is None:
            value = self.values[u] = add(u, 0.0)
        spread = broadcast_in_dim(value, shape=shape, dims=tuple(range(len(shape))))
        out = select(self.hits(b, idx, shape, axis), spread, 0.0)
        self.onehots[out] = (value, axis)
        return out

    def row_sum(self, b: _Emitter, e: Eqn) -> Any:
        """``reduce_sum`` along the axis of (negations of) a lowered scatter: its row value
        (negated as often), as the sum of one value and zeros is that value."""
        x, flips = e.inputs[0], 0
        while isinstance(x, Var) and x not in self.onehots:
            d = b.ctx.defn(x)
            if d is None or d.prim is not neg:
                return None
            x, flips = d.inputs[0], flips + 1
        value, axis = self.onehots.get(x, (None, None))
        if value is None or tuple(e.params["axes"]) != (axis,):
            return None
        for _ in range(flips):
            value = neg(value)
        return reshape(value, shape=tuple(e.out.shape))

    def __call__(self, e: Eqn, ctx: Context) -> Any:
        b = _Emitter(ctx, e.loc)
        with building(b):
            got = self.lower(b, e)
        if got is None:
            return None
        return b.eqns if b.eqns else got

    def lower(self, b: _Emitter, e: Eqn) -> Any:
        if e.prim is take_along:
            x, idx = e.inputs
            axis = e.params["axis"]
            if isinstance(x, Var) and _one_per_row(idx, x.shape, axis, x.dtype):
                return self.pick(b, x, idx, axis)
        elif e.prim is scatter_add_along:
            u, idx = e.inputs
            axis, shape = e.params["axis"], tuple(e.params["shape"])
            if isinstance(u, Var) and _one_per_row(idx, shape, axis, u.dtype):
                return self.scatter(b, u, idx, axis, shape)
        elif e.prim is reduce_sum and self.onehots:
            return self.row_sum(b, e)
        return None


def _sinkable(e: Eqn) -> bool:
    """Whether a pick may move ahead of ``e``: an elementwise equation with a C lowering and a
    floating result."""
    return e.prim.name in ELEMENTWISE and e.out.dtype.is_floating_point \
        and clower.elementwise_template(e) is not None


def _row_operands(ctx: Context, e: Eqn, axis: int) -> list | None:
    """Per operand of ``e``: a rank-0 literal (kept), the broadcast equation making it constant
    along ``axis``, or None for a floating value to pick from in turn; None overall when an
    operand is none of these (a mask or array constant varying along the axis)."""
    out: list = []
    for a in e.inputs:
        d = ctx.defn(a)
        if isinstance(a, Literal):
            if a.aval.ndim:
                return None
            out.append(a)
        elif d is not None and d.prim is broadcast_in_dim and \
                (axis not in d.params["dims"] or
                 d.inputs[0].shape[tuple(d.params["dims"]).index(axis)] == 1):
            out.append(d)
        elif a.dtype.is_floating_point:
            out.append(None)
        else:
            return None
    return out


def _at_rows(bcast: Eqn, shape: tuple[int, ...]) -> Any:
    """The value of broadcast ``bcast`` (constant along the axis) at one element per row."""
    src, dims = bcast.inputs[0], tuple(bcast.params["dims"])
    if tuple(src.shape) == tuple(shape) and dims == tuple(range(len(shape))):
        return src
    return broadcast_in_dim(src, shape=tuple(shape), dims=dims)


def lower_onehot(program: Program) -> Program:
    """``program`` with its one-per-row take_along / scatter_add_along rewritten (module
    docstring); the program itself when it has none."""
    if not any(e.prim is take_along or e.prim is scatter_add_along for e in program.eqns):
        return program
    return dce(rewrite(program, _Lowering()))


__all__ = ["lower_onehot"]
