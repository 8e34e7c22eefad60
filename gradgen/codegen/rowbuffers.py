"""Row buffers of row-wise kernels: which libm values a later pass reads back from a row-local
array (``rbN``) instead of calling exp/log/... again, and what rows too long for those arrays
may not do (:func:`kept_values`; used by :mod:`gradgen.codegen.rowwise`, whose ``Plan`` and
kernel text ``kt`` are the arguments)."""
from __future__ import annotations

from typing import Any

from ..ir.core import Var
from ..ops.elementwise import COMPARISONS
from . import clower
from .layout import numel

# Row-local arrays keep a value with a libm call for later passes over rows of at most this
# many elements (a float32 row of 8192 is 32 KiB of stack, within L1/L2 while the row is live).
ROW_BUFFER_MAX = 8192


def kept_values(kt: Any, pl: Any, row_ext: list) -> dict[int, tuple[int, str]]:
    """Values with a libm call that several passes need: the first computes each into a
    row-local array (``rbN``), later ones read it back instead of calling exp/log/... again.
    Only for rows of at most ``ROW_BUFFER_MAX`` elements (the arrays live on the stack).
    Returns ``id(eqn) -> (pass computing it, array name)``."""
    if not row_ext:
        return {}
    first: dict[int, int] = {}
    again: set[int] = set()
    for q, p in enumerate(pl.passes):
        for e in p.eqns:
            if id(e) in first:
                again.add(id(e))
            elif clower.calls(kt.let(e)["expr"]):
                first[id(e)] = q
    if numel(row_ext) > ROW_BUFFER_MAX:
        _refuse_unstable_comparisons(kt, pl, first)
        return {}
    return {i: (first[i], f"rb{n}") for n, i in enumerate(sorted(again, key=list(first).index))}


def _refuse_unstable_comparisons(kt: Any, pl: Any, first: dict[int, int]) -> None:
    """Rows too long for row buffers recompute a libm value in each pass that needs it. A
    function libmvec vectorizes (``clower.simd_libm``) may round differently in a vector loop
    than in a scalar one, and two passes' loops need not be vectorized alike: a comparison
    in a later pass of a value recomputed from one (max's gradient mask ``x == max(x)`` with
    ``x = exp(...)``) may then not see what the earlier pass saw, and a gradient goes
    missing. Such a kernel is refused (the call runs eagerly, with this reason); gradgen's
    own vecmath functions give the same bits in any loop and pass."""
    for q, p in enumerate(pl.passes):
        unstable: set = set()
        for e in p.eqns:
            ins = {a for a in e.inputs if type(a) is Var}
            if ins & unstable and e.prim.name in COMPARISONS:
                raise NotImplementedError(
                    f"a row-wise kernel over rows of more than {ROW_BUFFER_MAX} elements "
                    f"compares a value it recomputes through a libm function in a later pass "
                    f"({kt.line(e)}): its bits may differ between passes")
            if ins & unstable or (first.get(id(e), q) < q
                                  and clower.simd_libm([kt.let(e)["expr"]])):
                unstable.add(e.out)


__all__ = ["kept_values", "ROW_BUFFER_MAX"]
