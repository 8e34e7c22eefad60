"""Outputs of a compiled call that eager returns as views: made again by the view primitives.

Eager returns ``x[0]`` or ``x.reshape(6)`` sharing ``x``'s memory, and ``y[0]`` returned next to
``y`` sharing ``y``'s: an in-place write through one reaches the other, and the view's grad_fn
is the view's node. A compiled call makes such outputs again from the input (or from the other
output, once that has its grad_fn) rather than returning the kernels' copy.
"""
from __future__ import annotations

from typing import Any

from ..autograd.grad_mode import _state
from ..autograd.node import rename
from ..ir.core import Program, Var
from ..tensor import Tensor


def view_chain(program: Program, a: Any, pos: dict, outs: dict) -> tuple[int, list, bool] | None:
    """``(index, [(view primitive, params), ...], of_output)`` when output ``a`` of the traced
    ``program`` is made by view primitives alone from an input (``x[0]``, ``x.reshape(6)``) or
    from another output (``y, y[0]``; ``outs``: output variable -> its first index): eager
    returns a view sharing that tensor's memory, so a call makes it again that way rather
    than returning the kernels' copy (an in-place write through it must reach its base)."""
    made = {e.out: e for e in program.eqns}
    chain = []
    while type(a) is Var and a not in pos and not (chain and a in outs):
        e = made.get(a)
        if e is None or not e.prim.is_view or len(e.inputs) != 1:
            return None
        chain.append((e.prim, dict(e.params)))
        a = e.inputs[0]
    if not chain or type(a) is not Var:
        return None
    return (pos[a], chain[::-1], False) if a in pos else (outs[a], chain[::-1], True)


def replay(tensors: list, view: tuple[int, list, bool], name: str | None = None,
           multi: int | None = None) -> Tensor:
    """The view ``view`` (see :func:`view_chain`) made again on ``tensors[view[0]]``; its
    grad_fn displayed as ``name``, the traced output's (``x[0]``'s SelectBackward0 over the
    reshape primitive's node), and marked as output ``multi`` of a call returning several
    views (split's: an in-place write into it is refused as in eager) when the traced one was."""
    t = tensors[view[0]]
    for prim, params in view[1]:
        t = prim(t, **params)
    if name is not None and t._grad_fn is not None:
        rename(t._grad_fn, name)
    if multi is not None and _state.enabled and t._view_op is not None:
        t._view_op[4] = multi
    return t


__all__ = ["view_chain", "replay"]
