"""Whole-array reductions split into a reduction per row and one over the rows (before fusion).

Fusion groups reductions over the same axes (:mod:`gradgen.codegen.schedule`): a
loss summed over a whole ``[rows, ...]`` value cannot join the row-wise kernel
that computes that value, whose reductions run over each row -- so the value is
stored and read back by a kernel of its own (layer norm's output, 2 MB at
512x1024, only to be summed). Written as a sum over each row, then over the rows,
the first part is one more accumulator of the row-wise kernel and the second a
tiny kernel. ``reduce_sum/max/min/prod`` split this way give the same result up to
the order of the additions (float32 sums still accumulate in double per row).

Only reductions that can join such a kernel are split: of operands of rank 2 or more, in
a program that also reduces a value of that shape over trailing axes (its *rows*: the last
axis of a ``[batch, tokens, features]`` layer norm, or all but the first) holding at least
``MIN_ROW`` elements. The first part reduces those axes, the second the leading ones. Others
keep their one-pass (chunked) form.
"""
from __future__ import annotations

from typing import Any

from ..ir.core import Eqn, Program
from ..passes._rewrite import Context, rewrite
from .layout import numel, rows

MIN_ROW = 64
SPLIT = frozenset({"reduce_sum", "reduce_max", "reduce_min", "reduce_prod"})


def _rule(e: Eqn, ctx: Context, row_axes: dict) -> Any:
    if e.prim.name not in SPLIT:
        return None
    x = e.inputs[0]
    shape, axes = tuple(x.aval.shape), tuple(sorted(e.params["axes"]))
    red = row_axes.get(shape)
    if red is None or axes != tuple(range(len(shape))):
        return None
    kept = shape[:red[0]]
    per_row = ctx.fresh(type(e.out.aval)(kept, e.out.aval.dtype))
    first = Eqn(e.prim, (x,), per_row, {"axes": red}, e.loc)
    return [first, Eqn(e.prim, (per_row,), e.out, {"axes": tuple(range(len(kept)))}, e.loc)]


def _row_axes(e: Eqn) -> tuple[int, ...] | None:
    """The trailing axes ``e`` reduces (rows of at least ``MIN_ROW`` elements, at least two
    of them), else None."""
    if e.prim.name not in SPLIT:
        return None
    shape, axes = tuple(e.inputs[0].aval.shape), tuple(sorted(e.params["axes"]))
    if len(shape) < 2 or not axes or axes[0] < 1 or axes != tuple(range(axes[0], len(shape))):
        return None
    return axes if numel([shape[a] for a in axes]) >= MIN_ROW and rows(shape, axes) >= 2 \
        else None


def split_whole_reductions(program: Program) -> Program:
    """``program`` with its whole-array reductions split in two where a row-wise kernel over
    the same shape will hold the first part."""
    row_axes: dict = {}
    for e in program.eqns:
        red = _row_axes(e)
        if red is not None:
            row_axes.setdefault(tuple(e.inputs[0].aval.shape), red)
    return rewrite(program, lambda e, ctx: _rule(e, ctx, row_axes))


__all__ = ["split_whole_reductions", "MIN_ROW"]
