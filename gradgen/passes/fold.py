"""Constant folding: evaluate equations whose operands are all constants.

Two kinds of constant are recognised: literals, and *splats* (a rank-0 literal
broadcast to a shape, which is how ``full``/``zeros_like`` appear in the IR).

Policy, so constants never grow: an equation over literals is folded into a
literal only when the result has no more elements than its largest literal
operand (``neg`` of a literal folds, ``broadcast_in_dim`` of a scalar to
[1000,1000] does not). An elementwise equation, layout change or sum over
splats becomes a splat of the folded scalar: the result stays a broadcast of
one number, whatever its shape.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.core import Eqn, Literal, Program
from ..ops import elementwise as _elementwise
from ..ops.registry import Primitive
from ._rewrite import Context, rewrite, splat_value

# Primitives computed independently per element (and so per splat value).
ELEMENTWISE = frozenset(p.name for p in vars(_elementwise).values() if isinstance(p, Primitive))
_LAYOUT = frozenset({"broadcast_in_dim", "reshape", "transpose"})
_SPLAT_FOLDABLE = ELEMENTWISE | _LAYOUT | {"reduce_sum"}


def _evaluate(e: Eqn, values: list[np.ndarray]) -> np.ndarray | None:
    """The equation's value, or None when evaluating it fails (the error is left for run time)."""
    try:
        with np.errstate(all="ignore"):  # folding must not warn where running would not
            out = np.asarray(e.prim.impl(*values, **e.params))
    except Exception:  # noqa: BLE001  (e.g. an out-of-bounds index: raise when the program runs)
        return None
    return out.astype(e.out.aval.dtype.np, copy=False)


def _splat(value: np.ndarray, e: Eqn) -> Eqn:
    lit = Literal(np.asarray(value, e.out.aval.dtype.np).reshape(()))
    return Eqn(_bid(), (lit,), e.out, {"shape": tuple(e.out.aval.shape), "dims": ()}, e.loc)


def _bid() -> Primitive:
    from ..ops.shape import broadcast_in_dim  # noqa: PLC0415
    return broadcast_in_dim


def _fold_literals(e: Eqn) -> Any:
    values = [a.value for a in e.inputs]
    if e.out.aval.size > max([v.size for v in values] + [1]):
        return None
    out = _evaluate(e, values)
    if out is None or tuple(out.shape) != tuple(e.out.aval.shape):
        return None
    return Literal(out)


def _fold_splats(e: Eqn, ctx: Context) -> Any:
    name = e.prim.name
    if name not in _SPLAT_FOLDABLE:
        return None
    scalars = []
    for a in e.inputs:
        s = splat_value(a, ctx)
        if s is None:
            return None
        scalars.append(s)
    if name == "broadcast_in_dim" and type(e.inputs[0]) is Literal:
        return None  # already a splat
    if name in ELEMENTWISE:
        value = _evaluate(e, scalars)
        return None if value is None else _splat(value, e)
    if name == "reduce_sum":
        x = e.inputs[0]
        count = 1
        for ax in e.params["axes"]:
            count *= x.aval.shape[ax]
        return _splat(np.asarray(scalars[0] * count), e)
    return _splat(scalars[0], e)


def fold(program: Program) -> Program:
    """``program`` with constant subcomputations evaluated (see the module's policy)."""
    def rule(e: Eqn, ctx: Context) -> Any:
        if e.inputs and all(type(a) is Literal for a in e.inputs):
            folded = _fold_literals(e)
            if folded is not None:
                return folded
        return _fold_splats(e, ctx)

    return rewrite(program, rule)
