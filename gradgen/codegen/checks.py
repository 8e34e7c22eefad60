"""Check kernels: ``check_index`` in C, its first bad index reported through a status buffer.

A check kernel (:class:`gradgen.codegen.steps.Kernel` with ``check`` set) runs one
loop over its indices, read flat in C order (the scheduler makes them contiguous),
and writes the checked indices: wrapped once where negatives are allowed ("wrap"),
copied otherwise. An index outside ``[lo, hi)`` (the facet's ``range``) is written
as 0, so kernels reading the result never address memory outside a row, and the
loop keeps the smallest bad position, a ``min`` reduction that vectorizes. The
kernel's *status* buffer (two int64, kept per executable) then holds that position
(``INT64_MAX``: none) and the index found there; the executable tests the first
element after the kernel runs and raises the facet's ``error`` -- ``_MODES`` of
:mod:`gradgen.ops.indexing`, the exception and message eager raises -- before any
output leaves the call. A parallel loop runs in pieces, each keeping its own
smallest bad position and folding it into the status by an atomic minimum, so
the position is the first in C order whichever piece finds it first; the index
at it is read once the pieces are done.
"""
from __future__ import annotations

from typing import Any

from ..dtypes import int64
from . import clower
from .layout import numel, worth_threads

STATUS_NONE = 2**63 - 1  # the status' first element when every index is in range (INT64_MAX)


def body(kt: Any) -> dict:
    """The template context of check kernel ``kt.k`` (``kt``: render's kernel text)."""
    k = kt.k
    e = k.check
    (a, view), = k.loads.items()
    out = k.stores[e.out]
    lo, hi, wrap = e.prim.c_lowering["range"](**e.params)
    n = numel(k.domain)
    return {"template": e.prim.c_lowering["check"], "kind": "index check", "body": [],
            "parallel": worth_threads(n, []), "simd_reduction": None,
            "params_in": [view.buffer], "params_out": [out, k.status],
            "n": n, "idx": kt.p(view.buffer), "out": kt.p(out), "status": kt.p(k.status),
            "idx_ctype": clower.ctype(a.aval.dtype), "out_ctype": clower.ctype(e.out.aval.dtype),
            "lo": clower.constant(lo, int64), "hi": clower.constant(hi, int64), "wrap": wrap}


__all__ = ["body", "STATUS_NONE"]
