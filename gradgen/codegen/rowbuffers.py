"""Row buffers of row-wise kernels: which libm values a later pass reads back from a row-local
array (``rbN``) instead of calling exp/log/... again (:func:`kept_values`; used by
:mod:`gradgen.codegen.rowwise`, whose ``Plan`` and kernel text ``kt`` are the arguments), and
where those arrays live (:func:`on_heap`).

Keeping the value is not only faster: a function libmvec vectorizes (``clower.simd_libm``)
may round differently in a vector loop than in a scalar one, and two passes' loops need not be
vectorized alike, so a value recomputed in a later pass need not have the bits the first pass
saw -- max's gradient mask ``x == max(x)`` with ``x = exp(...)`` would then miss. Every value
a later pass needs is therefore kept, for rows of any length.
"""
from __future__ import annotations

from typing import Any

from . import clower
from .layout import numel

# Row buffers of rows of at most this many elements live on the stack (a float32 row of 8192
# is 32 KiB, within L1/L2 while the row is live); longer rows' buffers are allocated on the
# heap, once per piece of the kernel's rows (templates/kernel_macros.c.jinja, ``heap_arrays``).
ROW_BUFFER_MAX = 8192


def kept_values(kt: Any, pl: Any, row_ext: list) -> dict[int, tuple[int, str]]:
    """Values with a libm call that several passes need: the first computes each into a
    row-local array (``rbN``), later ones read it back instead of calling exp/log/... again.
    ``row_ext``: the extents of the row's loops (none: nothing is kept).
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
    return {i: (first[i], f"rb{n}") for n, i in enumerate(sorted(again, key=list(first).index))}


def on_heap(row_ext: list) -> bool:
    """Whether the row buffers of rows of extents ``row_ext`` are allocated on the heap."""
    return numel(row_ext) > ROW_BUFFER_MAX


__all__ = ["kept_values", "on_heap", "ROW_BUFFER_MAX"]
