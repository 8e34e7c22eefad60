"""Column sums inside row-wise kernels: ``y.sum(0)`` kept by the kernel that makes ``y`` row by row.

Layer norm's weight gradient is ``(g * xhat).sum(0)``: a sum over the rows of a value that
the row-wise kernel of the normalization computes one row at a time. Scheduled on its own
it is a second kernel reading ``x`` again (2 MB at 512x1024) to recompute ``xhat``. Here
the row-wise kernel keeps the sum itself (:class:`~gradgen.codegen.steps.ColumnSum`):

- its rows run in blocks of ``block`` consecutive rows (``sums.ROW_BLOCK`` = 16, fewer for
  fewer than 128 rows, more past 4096 rows: ``MAX_BLOCKS``), one block per iteration of its
  (parallel) loop; per block, a stack vector with one element per position in the row adds
  the value row after row (in float for float32, as the columns form of
  ``reduction.c.jinja`` adds ``ROW_BLOCK`` rows in float), then is stored in double as one
  row of a *partial* buffer ``[blocks, *row]``;
- the program's ``reduce_sum`` then runs over those partial rows (axis 0) as an ordinary
  column reduction in double, rounded to float32 at the end for float32.

So float32 adds 16 rows in float before double, as the columns form does (from 128 to 4096
rows the same additions in the same order: the same result); numpy adds all of them in
float32, one after the other. The order of every addition depends on the shapes
alone: the result is the same on any number of threads.

Taken when the operand is a float value the row-wise kernel computes over its whole domain
(not a per-row broadcast), the kernel's rows are its leading axes (it reduces trailing ones:
a kernel reducing ``x`` along axis 0 is no row kernel of ``x.sum(1)``), the sum is over exactly
those, a row has at most ``ROW_MAX`` elements, and the kernel's column sums fit
``STACK_BYTES`` of stack. The schedule is greedy: the row kernel must exist before the sum
comes in program order (in a joint gradient program it does: the forward's row sums come first).
"""
from __future__ import annotations

from typing import Any

from ..dtypes import float64
from ..ir.core import Eqn, Var
from ..ops.elementwise import convert
from ..ops.registry import Aval
from . import clower
from .layout import contiguous, kept_axes, numel, rows
from .steps import Buffer, ColumnSum, Kernel, View
from .sums import ROW_BLOCK

MIN_BLOCKS = 8        # rows split into at least this many blocks (the parallel loop's iterations)
MAX_BLOCKS = 256      # ... and at most this many (the partial buffer's rows)
ROW_MAX = 8192        # elements per row at most (a block's vector lives on the stack)
STACK_BYTES = 64 << 10  # all column sums of one kernel together


def blocks(n_rows: int) -> tuple[int, int]:
    """(rows per block, blocks) for ``n_rows`` rows: ``sums.ROW_BLOCK`` rows per block, fewer
    to make ``MIN_BLOCKS`` blocks, more to stay within ``MAX_BLOCKS``."""
    block = min(ROW_BLOCK, max(1, n_rows // MIN_BLOCKS))
    block = max(block, -(-n_rows // MAX_BLOCKS))
    return block, -(-n_rows // block)


def schedule_column_sum(s: Any, e: Eqn) -> bool:
    """Give reduction ``e`` to the row-wise kernel computing its operand as a column sum, if it
    qualifies (module docstring); ``s`` is the scheduler (``schedule._Scheduler``). The
    program's equation becomes a sum over the partial buffer, fused as any reduction."""
    a = e.inputs[0]
    k = s.where(a) if isinstance(a, Var) else None
    if e.prim.name != "reduce_sum" or not isinstance(k, Kernel) or k.red_axes is None \
            or k.gemm is not None or k.check is not None or not a.aval.dtype.is_floating_point:
        return False
    dom, red = k.domain, k.red_axes
    row_shape = tuple(dom[i] for i in red)
    n = numel(row_shape)
    stack = n * sum(c.eqn.inputs[0].aval.dtype.itemsize for c in k.column_sums) + \
        n * a.aval.dtype.itemsize
    kept = tuple(kept_axes(dom, red))
    if a.aval.shape != dom or a in k.row_values or tuple(sorted(e.params["axes"])) != kept \
            or kept != tuple(range(len(kept))) or rows(dom, red) < 2 or n > ROW_MAX or \
            stack > STACK_BYTES:
        return False
    block, count = blocks(rows(dom, red))
    partial = s.fresh(Var(0, Aval((count,) + row_shape, float64)))
    buf = k.stores[partial] = Buffer(partial, "temp")
    s.producer[buf] = k
    s.loc[partial] = View(buf, partial.aval.shape, contiguous(partial.aval.shape))
    k.column_sums.append(ColumnSum(e, partial, block))
    total = e.out if e.out.aval.dtype == float64 else s.fresh(Var(0, Aval(row_shape, float64)))
    eqns = [(Eqn(e.prim, (partial,), total, {"axes": (0,)}, e.loc),
             f"adding up its partial sums %{s.numbers[partial]} in double")]
    if total is not e.out:
        eqns.append((Eqn(convert, (total,), e.out, {"dtype": e.out.aval.dtype}, e.loc),
                     f"rounding that sum, %{s.numbers[total]}, to {e.out.aval.dtype.name}"))
    for q, note in eqns:
        s.order[id(q)] = s.order[id(e)]
        s.derived[id(q)] = (e, note)
    s.fuse(eqns[0][0], partial.aval.shape, (0,))  # the columns form of reduction.c.jinja
    if len(eqns) > 1:  # its own small kernel: as a per-row step of the sum's kernel, that
        s.fuse(eqns[1][0], row_shape, None)  # kernel would be a row-wise one over strided rows
    return True


def render_context(kt: Any, split: int, ext: list[int]) -> dict | None:
    """The template context of kernel ``kt.k``'s column sums (None without any): blocks, the
    row number's loop and the outer loop variables it gives, each sum's stack vector; ``ext``
    and ``split``: the kernel's coalesced loops and how many of them run over rows."""
    k = kt.k
    if not k.column_sums:
        return None
    n_rows, n = numel(ext[:split]), numel(ext[split:])
    block = k.column_sums[0].block
    outer = [{"var": f"i{j}", "expr": f"(gg_r / {numel(ext[j + 1:split])}) % {ext[j]}"
              if j else f"gg_r / {numel(ext[1:split])}"} for j in range(split)]
    return {"block": block, "blocks": k.column_sums[0].partial.aval.shape[0], "rows": n_rows,
            "n": n, "outer": outer,
            "sums": [{"name": f"cs{j}", "ctype": clower.ctype(c.eqn.inputs[0].aval.dtype),
                      "ptr": kt.p(k.stores[c.partial]), "value": kt.v(c.eqn.inputs[0])}
                     for j, c in enumerate(k.column_sums)]}


__all__ = ["blocks", "schedule_column_sum", "render_context", "MIN_BLOCKS", "MAX_BLOCKS",
           "ROW_MAX", "STACK_BYTES"]
