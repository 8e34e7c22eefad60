"""Reductions over axes of extent 1, written as what they are (before fusion).

A reduction whose reduced axes all have extent 1 reduces one element per result: on
values it is a ``reshape``. Left a reduction, it makes a row-wise kernel whose rows are
single elements, where a per-row value and a whole-domain value have the same number of
elements. The scheduler tells those apart by shape alone (:meth:`Kernel.is_row_shaped`,
:func:`layout.row_access`), so it took whole-domain equations and loads of such a kernel
(the ``x == bcast(max(x))`` of max's gradient, an operand rematerialization recomputes in a
pass) for per-row ones: the C used a value of a pass outside it, or loaded one value twice.
Any other reduction loses its extent-1 axes too (a reduction over the others, then a
reshape), so reductions over the same axes with and without them fuse into one kernel.
:func:`gradgen.passes.simplify.simplify` does the same for ``reduce_sum``; here it holds for
every reduction, and for programs that were not simplified.

Exact: the maximum, minimum or product of one element is that element (NaN, infinities and
-0.0 included), as numpy's ``reduce`` gives it. So is a sum, except that numpy adds a lone
-0.0 to its identity and answers +0.0, the sign of zero ``simplify`` does not keep either.
"""
from __future__ import annotations

from typing import Any

from ..ir.core import Eqn, Program
from ..ops.shape import reshape
from ..passes._rewrite import Context, rewrite

REDUCTIONS = frozenset({"reduce_sum", "reduce_max", "reduce_min", "reduce_prod"})


def _rule(e: Eqn, ctx: Context) -> Any:
    if e.prim.name not in REDUCTIONS:
        return None
    x, axes = e.inputs[0], tuple(e.params["axes"])
    real = tuple(a for a in axes if x.aval.shape[a] != 1)
    if real == axes and axes:
        return None
    out = e.out.aval
    if not real:  # one element per result
        return x if x.aval == out else Eqn(reshape, (x,), e.out, {"shape": tuple(out.shape)},
                                           e.loc)
    kept = tuple(s for a, s in enumerate(x.aval.shape) if a not in real)
    mid = ctx.fresh(type(out)(kept, out.dtype))
    return [Eqn(e.prim, (x,), mid, {"axes": real}, e.loc),
            Eqn(reshape, (mid,), e.out, {"shape": tuple(out.shape)}, e.loc)]


def drop_unit_axes(program: Program) -> Program:
    """``program`` with no reduction over an axis of extent 1 (see the module docstring)."""
    return rewrite(program, _rule)


__all__ = ["drop_unit_axes", "REDUCTIONS"]
