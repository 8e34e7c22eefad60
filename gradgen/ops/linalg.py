"""The linear-algebra primitive: batched matrix multiplication.

``matmul(x, y)`` multiplies ``x: [..., m, k]`` by ``y: [..., k, n]`` with
identical batch dimensions ``...`` (possibly none). The front end
(``gradgen.functions.linalg``) turns vectors into matrices with ``reshape`` and
broadcasts batch dimensions with ``broadcast_in_dim`` for differentiated
operands, so the VJP rule never reshapes or unbroadcasts. Operands nothing
differentiates may arrive with broadcastable batch dimensions, which numpy's
``matmul`` broadcasts.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import float32, float64, int64
from .registry import Aval, defprim

_DTYPES = (float32, float64, int64)


def _matmul_rule(x: Aval, y: Aval) -> Aval:
    if x.ndim < 2 or y.ndim < 2:
        raise TypeError(f"matmul: operands must have at least 2 dimensions, got {list(x.shape)} "
                        f"and {list(y.shape)}")
    if x.ndim != y.ndim or x.shape[:-2] != y.shape[:-2]:
        raise TypeError(f"matmul: batch dimensions differ: {list(x.shape)} and {list(y.shape)} "
                        "(the front end broadcasts them explicitly)")
    if x.shape[-1] != y.shape[-2]:
        raise TypeError(f"matmul: contracted dimensions differ: {list(x.shape)} @ {list(y.shape)}")
    if x.dtype is not y.dtype or x.dtype not in _DTYPES:
        raise TypeError(f"matmul: operand dtypes must be one of float32, float64, int64 and equal, "
                        f"got {x.dtype.name} and {y.dtype.name}")
    return Aval(x.shape[:-1] + y.shape[-1:], x.dtype)


def _mT(a):
    """``a`` with its last two axes swapped."""
    n = len(a.shape)
    return transpose(a, perm=tuple(range(n - 2)) + (n - 1, n - 2))


def _matmul_vjp(g, ins, out, needs):
    x, y = ins
    gx = matmul(g, _mT(y)) if needs[0] else None
    gy = matmul(_mT(x), g) if needs[1] else None
    return gx, gy


# gx reads only y and gy only x: a node keeps just the operand its wanted cotangent needs.
matmul = defprim("matmul", np.matmul, _matmul_rule, _matmul_vjp, "MmBackward0", save_inputs=True,
                 saved_for=lambda needs: (needs[1], needs[0]),
                 doc="[..., m, k] @ [..., k, n] -> [..., m, n] over identical batch dims.")

from .shape import transpose  # noqa: E402
