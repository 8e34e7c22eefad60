"""Whole-array reductions split into a reduction per row and one over the rows (before fusion).

Fusion groups reductions over the same axes (:mod:`gradgen.codegen.schedule`): a
loss summed over a whole ``[rows, ...]`` value cannot join the row-wise kernel
that computes that value, whose reductions run over each row -- so the value is
stored and read back by a kernel of its own (layer norm's output, 2 MB at
512x1024, only to be summed). Written as a sum over each row, then over the rows,
the first part is one more accumulator of the row-wise kernel and the second a
tiny kernel. ``reduce_sum/max/min/prod`` split this way give the same result up to
the order of the additions (float32 sums still accumulate in double per row).

Only reductions that can join such a kernel are split: of operands of rank 2 or more
whose rows hold at least ``MIN_ROW`` elements, in a program that also reduces a value of
that shape over each row. Others keep their one-pass (chunked) form.
"""
from __future__ import annotations

from typing import Any

from ..ir.core import Eqn, Program
from ..passes._rewrite import Context, rewrite

MIN_ROW = 64
SPLIT = frozenset({"reduce_sum", "reduce_max", "reduce_min", "reduce_prod"})


def _rule(e: Eqn, ctx: Context, row_reduced: set) -> Any:
    if e.prim.name not in SPLIT:
        return None
    x = e.inputs[0]
    shape, axes = tuple(x.aval.shape), tuple(sorted(e.params["axes"]))
    if len(shape) < 2 or axes != tuple(range(len(shape))) or shape[0] < 2 \
            or shape not in row_reduced:
        return None
    row = 1
    for n in shape[1:]:
        row *= n
    if row < MIN_ROW:
        return None
    per_row = ctx.fresh(type(e.out.aval)((shape[0],), e.out.aval.dtype))
    first = Eqn(e.prim, (x,), per_row, {"axes": tuple(range(1, len(shape)))}, e.loc)
    return [first, Eqn(e.prim, (per_row,), e.out, {"axes": (0,)}, e.loc)]


def split_whole_reductions(program: Program) -> Program:
    """``program`` with its whole-array reductions split in two where a row-wise kernel over
    the same shape will hold the first part."""
    row_reduced = {shape for e in program.eqns if e.prim.name in SPLIT
                   for shape in [tuple(e.inputs[0].aval.shape)]
                   if len(shape) >= 2
                   and tuple(sorted(e.params["axes"])) == tuple(range(1, len(shape)))}
    return rewrite(program, lambda e, ctx: _rule(e, ctx, row_reduced))


__all__ = ["split_whole_reductions", "MIN_ROW"]
