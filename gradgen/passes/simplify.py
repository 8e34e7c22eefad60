"""Algebraic simplification: identities that remove or merge equations.

Each rule looks at one equation (operands already simplified) and, where an
identity applies, returns the simpler value: ``x*1``, ``1*x``, ``x/1``, ``x+0``,
``0+x``, ``x-0`` -> ``x``; ``0-x`` -> ``neg x``; ``neg(neg x)`` -> ``x``; a
broadcast of a broadcast (or of a reshape that only inserts size-1 axes), a
reshape of a reshape and a transpose of a transpose become one equation (or
none, when the composite is the identity); a sum over
size-1 axes becomes a reshape, and a sum over axes a broadcast created is a
multiplication by their count; ``convert`` to the operand's own dtype is
dropped. "1" and "0" are literals with all elements equal to it, or broadcasts
of rank-0 ones. A rule applies
only when the replacement has exactly the equation's type, so no rule ever
changes a shape or dtype, and none changes a value, the sign of a zero included:
on floats ``x+0`` is ``x`` only for a -0.0 literal (``-0.0 + 0.0`` is +0.0), ``x-0``
only for +0.0, ``0-x`` is ``neg x`` only for -0.0, and a sum over size-1 axes adds
+0.0 to its reshape (a sum starts from +0.0, as eager's numpy and PyTorch's do).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..ir.core import Eqn, Literal, Program
from ._rewrite import Context, rewrite, splat_value


def _const(atom: Any, ctx: Context, value: float, negative: bool | None = None) -> bool:
    """Whether ``atom`` is the splat ``value``; for a zero of a float type, ``negative`` also
    asks its sign (None: either)."""
    v = splat_value(atom, ctx)
    if v is None or v.dtype.kind == "b" or not bool(v == value):
        return False
    return negative is None or v.dtype.kind != "f" or bool(np.signbit(v)) is negative


def _same_type(atom: Any, e: Eqn) -> bool:
    return atom.aval == e.out.aval


def _with(e: Eqn, prim: Any, inputs: tuple, **params: Any) -> Eqn:
    return Eqn(prim, inputs, e.out, params, e.loc)


def _either_side(e: Eqn, ctx: Context, identity: float, negative: bool | None = None) -> Any:
    """The other operand when one operand of ``e`` is ``identity`` (x*1, 1*x, x+0, 0+x)."""
    x, y = e.inputs
    if _const(y, ctx, identity, negative) and _same_type(x, e):
        return x
    if _const(x, ctx, identity, negative) and _same_type(y, e):
        return y
    return None


def _mul(e: Eqn, ctx: Context) -> Any:
    return _either_side(e, ctx, 1)


def _div(e: Eqn, ctx: Context) -> Any:
    x, y = e.inputs
    return x if _const(y, ctx, 1) and _same_type(x, e) else None


def _add(e: Eqn, ctx: Context) -> Any:
    return _either_side(e, ctx, 0, negative=True)  # (x + 0.0 is +0.0 at x = -0.0)


def _sub(e: Eqn, ctx: Context) -> Any:
    from ..ops.elementwise import neg  # noqa: PLC0415
    x, y = e.inputs
    if _const(y, ctx, 0, negative=False) and _same_type(x, e):
        return x
    if _const(x, ctx, 0, negative=True) and _same_type(y, e):  # (0.0 - 0.0 is +0.0)
        return _with(e, neg, (y,))
    return None


def _neg(e: Eqn, ctx: Context) -> Any:
    inner = ctx.defn(e.inputs[0])
    if inner is not None and inner.prim.name == "neg" and _same_type(inner.inputs[0], e):
        return inner.inputs[0]
    return None


def _broadcast(e: Eqn, ctx: Context) -> Any:
    x = e.inputs[0]
    shape, dims = e.params["shape"], e.params["dims"]
    if tuple(x.shape) == tuple(shape) and tuple(dims) == tuple(range(len(shape))):
        return x
    inner = ctx.defn(x)
    if inner is not None and inner.prim.name == "broadcast_in_dim":
        # operand axis i -> inner axis d1[i] -> outer axis dims[d1[i]]
        composed = tuple(dims[d] for d in inner.params["dims"])
        return _with(e, e.prim, inner.inputs, shape=tuple(shape), dims=composed)
    if inner is not None and inner.prim.name == "reshape":
        # A reshape that only inserts size-1 axes (keepdim) before a broadcast: broadcast the
        # original directly, so it matches the broadcasts reverse mode emits (and CSE merges them).
        base = inner.inputs[0]
        kept = [k for k, n in enumerate(x.shape) if n != 1]
        if 1 not in base.shape and [x.shape[k] for k in kept] == list(base.shape):
            return _with(e, e.prim, (base,), shape=tuple(shape), dims=tuple(dims[k] for k in kept))
    return None


def _reshape(e: Eqn, ctx: Context) -> Any:
    x = e.inputs[0]
    if tuple(x.shape) == tuple(e.params["shape"]):
        return x
    inner = ctx.defn(x)
    if inner is not None and inner.prim.name == "reshape":
        base = inner.inputs[0]
        if tuple(base.shape) == tuple(e.params["shape"]):
            return base
        return _with(e, e.prim, (base,), shape=tuple(e.params["shape"]))
    return None


def _transpose(e: Eqn, ctx: Context) -> Any:
    x, perm = e.inputs[0], tuple(e.params["perm"])
    if perm == tuple(range(len(perm))):
        return x
    inner = ctx.defn(x)
    if inner is not None and inner.prim.name == "transpose":
        # output axis i reads inner axis perm[i], which reads operand axis p1[perm[i]]
        composed = tuple(inner.params["perm"][p] for p in perm)
        if composed == tuple(range(len(composed))):
            return inner.inputs[0]
        return _with(e, e.prim, inner.inputs, perm=composed)
    return None


def _sum_of_broadcast(e: Eqn, ctx: Context) -> Any:
    """``sum(broadcast(y))`` over axes the broadcast created only: ``broadcast(y) * count``
    (reverse mode makes these from the cotangent of a sum). Exact for integers; for floats the
    product rounds once where the sum rounded per addition, within reduction tolerance (and
    inf, NaN and -0.0 come out as the sum's)."""
    from ..ops.elementwise import mul  # noqa: PLC0415
    x, axes = e.inputs[0], set(e.params["axes"])
    inner = ctx.defn(x)
    if inner is None or inner.prim.name != "broadcast_in_dim" or e.out.aval.dtype.np.kind not in "fiu":
        return None
    dims = tuple(inner.params["dims"])
    if axes & set(dims):
        return None
    kept = [a for a in range(len(x.shape)) if a not in axes]
    count = 1
    for a in axes:
        count *= x.shape[a]
    y, out = inner.inputs[0], e.out.aval
    times = Literal(np.asarray(count, out.dtype.np))
    new_dims = tuple(kept.index(d) for d in dims)
    if y.aval == out and new_dims == tuple(range(len(new_dims))):
        return _with(e, mul, (y, times))
    small = ctx.fresh(out)
    spread = Eqn(inner.prim, (y,), small, {"shape": tuple(out.shape), "dims": new_dims}, e.loc)
    return [spread, _with(e, mul, (small, times))]


def _reduce_sum(e: Eqn, ctx: Context) -> Any:
    from ..ops.shape import reshape  # noqa: PLC0415
    x, axes = e.inputs[0], tuple(e.params["axes"])
    if not axes:  # a sum over nothing: x, but a float -0.0 sums to +0.0 (numpy, PyTorch)
        if e.out.aval.dtype.np.kind != "f":
            return x
        from ..ops.elementwise import add  # noqa: PLC0415
        return _with(e, add, (x, Literal(np.asarray(0.0, e.out.aval.dtype.np))))
    if tuple(e.out.aval.shape) == tuple(s for i, s in enumerate(x.shape) if i not in axes):
        spread = _sum_of_broadcast(e, ctx)
        if spread is not None:
            return spread
    real = tuple(a for a in axes if x.shape[a] != 1)
    if real == axes:
        return None
    out_shape = tuple(e.out.aval.shape)
    if not real:
        if e.out.aval.dtype.np.kind != "f":
            return _with(e, reshape, (x,), shape=out_shape)
        from ..ops.elementwise import add  # noqa: PLC0415
        mid = ctx.fresh(e.out.aval)  # (+0.0 + x: a sum's -0.0 is +0.0)
        return [Eqn(reshape, (x,), mid, {"shape": out_shape}, e.loc),
                _with(e, add, (mid, Literal(np.asarray(0.0, e.out.aval.dtype.np))))]
    kept = tuple(s for i, s in enumerate(x.shape) if i not in real)
    mid = ctx.fresh(type(e.out.aval)(kept, e.out.aval.dtype))
    summed = Eqn(e.prim, (x,), mid, {"axes": real}, e.loc)
    return [summed, _with(e, reshape, (mid,), shape=out_shape)]


def _convert(e: Eqn, ctx: Context) -> Any:
    x = e.inputs[0]
    return x if x.dtype is e.params["dtype"] and _same_type(x, e) else None


RULES: dict[str, Callable[[Eqn, Context], Any]] = {
    "mul": _mul, "div": _div, "add": _add, "sub": _sub, "neg": _neg,
    "broadcast_in_dim": _broadcast, "reshape": _reshape, "transpose": _transpose,
    "reduce_sum": _reduce_sum, "convert": _convert,
}


def simplify(program: Program) -> Program:
    """``program`` with the algebraic identities of this module applied."""
    def rule(e: Eqn, ctx: Context) -> Any:
        result = None
        for _ in range(8):  # a rewritten equation may simplify further (reshape of reshape of ...)
            r = RULES.get(e.prim.name)
            step = r(e, ctx) if r is not None else None
            if step is None:
                return result
            result = step
            if not isinstance(step, Eqn):
                return result
            e = step
        return result

    return rewrite(program, rule)
