"""Reduction primitives. Each removes the reduced axes (keepdim is a reshape in the front end)."""
from __future__ import annotations

import numpy as np

from .registry import Aval, defprim


def _check_axes(name: str, x: Aval, axes: tuple[int, ...]) -> None:
    if len(set(axes)) != len(axes) or any(a < 0 or a >= x.ndim for a in axes):
        raise TypeError(f"{name}: axes {axes} are not distinct axes of a rank-{x.ndim} operand")


def _reduce_rule(name: str):
    def rule(x: Aval, axes: tuple[int, ...]) -> Aval:
        _check_axes(name, x, axes)
        return Aval(tuple(s for i, s in enumerate(x.shape) if i not in axes), x.dtype)
    return rule


def _sum_vjp(g, ins, out, needs, axes):
    shape = tuple(ins[0].shape)
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    return (broadcast_in_dim(g, shape=shape, dims=kept),)


reduce_sum = defprim("reduce_sum", lambda x, axes: np.sum(x, axis=axes), _reduce_rule("reduce_sum"),
                     _sum_vjp, "SumBackward1")

from .shape import broadcast_in_dim  # noqa: E402
