"""Tables of expressions and what PyTorch 2.13 makes of them, shared by the ``*_vs_torch`` tests.

An outcome is ``(dtype, shape, values)`` for a tensor, ``(exception type, first message line)``
for an error, or the value itself; tables compare outcomes by ``repr`` (NaN equals NaN, 1
differs from 1.0). Each table's test recomputes it with torch when torch is installed, so a
wrong table entry cannot hide a wrong gradgen result.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def outcome(mod: Any, expr: str) -> Any:
    """What ``expr`` (with ``torch`` bound to ``mod`` and ``np`` in scope) builds or raises."""
    try:
        r = eval(expr, {"torch": mod, "np": np})
    except Exception as e:  # noqa: BLE001 - the exception is the outcome under test
        return type(e), (str(e).splitlines() or [""])[0]
    if isinstance(r, mod.Tensor):
        return str(r.dtype).removeprefix("torch."), tuple(r.shape), r.tolist()
    return r


def mismatches(mod: Any, table: list) -> list:
    """The ``(expr, outcome, expected)`` rows of ``table`` whose outcome under ``mod`` differs."""
    rows = [(e, outcome(mod, e), w) for e, w in table]
    return [r for r in rows if repr(r[1]) != repr(r[2])]
