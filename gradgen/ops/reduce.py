"""Reduction primitives. Each removes the reduced axes (keepdim is a reshape in the front end).

``axes`` is a sorted tuple of distinct non-negative axes; ``axis`` (argmax/argmin)
is one such axis. VJP rules re-expand reduced values with ``broadcast_in_dim``
and never branch on data, so they also serve double backward and the IR.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import int64
from .registry import Aval, defprim


def _check_axes(name: str, x: Aval, axes: tuple[int, ...]) -> None:
    if len(set(axes)) != len(axes) or any(a < 0 or a >= x.ndim for a in axes):
        raise TypeError(f"{name}: axes {axes} are not distinct axes of a rank-{x.ndim} operand")


def _reduce_rule(name: str, needs_identity: bool = False):
    def rule(x: Aval, axes: tuple[int, ...]) -> Aval:
        _check_axes(name, x, axes)
        if needs_identity and any(x.shape[a] == 0 for a in axes):
            raise TypeError(f"{name}: cannot reduce the empty axes {axes} of {list(x.shape)} "
                            "(the operation has no identity)")
        return Aval(tuple(s for i, s in enumerate(x.shape) if i not in axes), x.dtype)
    return rule


def _restore(t, x, axes: tuple[int, ...]):
    """Broadcast reduced ``t`` back over the axes of ``x`` it was reduced along."""
    shape = tuple(x.shape)
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    return broadcast_in_dim(t, shape=shape, dims=kept)


def _sum_vjp(g, ins, out, needs, axes):
    return (_restore(g, ins[0], axes),)


# (dtype=: numpy would widen int32 and bool to int64; the result keeps the operand's dtype,
# as the abstract rule and PyTorch's sum(dtype=int32) say)
reduce_sum = defprim("reduce_sum", lambda x, axes: np.add.reduce(x, axis=axes, dtype=x.dtype),
                     _reduce_rule("reduce_sum"), _sum_vjp, "SumBackward1")
# C lowering: the reduction template, the combiner over the accumulator {acc} and the
# element {x}, the identity ("lowest"/"highest" are the dtype's extremes) and the
# `omp simd reduction` operator when the combiner is one. float32 sums and products
# accumulate in double (as accurate as numpy's pairwise float32 sums, or better), integer
# ones in the unsigned type (wrapping on overflow as numpy does; signed overflow is UB in C).
reduce_sum.c_lowering = {"reduce": "reduction.c.jinja", "combine": "({acc} + {x})",
                         "identity": "0", "simd": "+", "f32_acc": "double",
                         "int_acc": "unsigned"}


def _extremum_vjp(g, ins, out, needs, axes):
    # PyTorch's amax/amin rule: the gradient is shared evenly among the elements equal to
    # the result. A NaN result equals none: the share is 0/0, NaN over the whole slice, as in
    # PyTorch (written g / NaN, which numpy does not warn about). max()/min() and the inf-norm
    # share a NaN among the NaNs instead (functions.reductions.extremum_sharing_nan).
    x = ins[0]
    hit = convert(eq(x, _restore(out, x, axes)), dtype=x.dtype)
    count = reduce_sum(hit, axes=axes)
    share = div(g, select(eq(count, 0.0), np.asarray(np.nan, x.dtype.np), count))
    return (mul(_restore(share, x, axes), hit),)


reduce_max = defprim("reduce_max", lambda x, axes: np.maximum.reduce(x, axis=axes),
                     _reduce_rule("reduce_max", True), _extremum_vjp, "AmaxBackward0",
                     save_inputs=True, save_output=True)
# NaN wins, as in numpy (the comparison alone would drop a NaN after the first element).
# max/min: a compare/select accumulator that a NaN never enters (so `omp simd
# reduction(max:...)` vectorizes it) plus, for floats, a NaN flag ("nan": "any"):
# the result is NaN when any element is, as numpy's. Which zero a -0.0/+0.0 tie
# gives is unspecified, as in numpy (whose answer depends on the element positions).
reduce_max.c_lowering = {"reduce": "reduction.c.jinja", "identity": "lowest", "simd": "max",
                         "combine": "(({x} > {acc}) ? {x} : {acc})", "nan": "any"}
reduce_min = defprim("reduce_min", lambda x, axes: np.minimum.reduce(x, axis=axes),
                     _reduce_rule("reduce_min", True), _extremum_vjp, "AminBackward0",
                     save_inputs=True, save_output=True)
reduce_min.c_lowering = {"reduce": "reduction.c.jinja", "identity": "highest", "simd": "min",
                         "combine": "(({x} < {acc}) ? {x} : {acc})", "nan": "any"}


def _prod_vjp(g, ins, out, needs, axes):
    # d out / d x_i is the product of the other elements. Written as
    # (product of the non-zeros) / (x_i unless it is a zero) * (product of the
    # zeros other than x_i), where that last factor is 1 with no other zero, the
    # other zero itself (value 0, derivative 1: keeps double backward right)
    # with one, and 0 with more. No division by zero, no data-dependent branch.
    # A product over no axis (of a 0-d tensor) is the identity: its gradient is g, also where
    # x is inf or NaN (x / x would make it NaN).
    if not axes:
        return (g,)
    x = ins[0]
    is_zero = eq(x, 0.0)
    zf = convert(is_zero, dtype=x.dtype)
    nonzero = select(is_zero, 1.0, x)
    others = sub(_restore(reduce_sum(zf, axes=axes), x, axes), zf)
    zero_sum = _restore(reduce_sum(select(is_zero, x, 0.0), axes=axes), x, axes)
    other_zero = sub(zero_sum, select(is_zero, x, 0.0))
    factor = select(eq(others, 0.0), 1.0, select(eq(others, 1.0), other_zero, 0.0))
    rest = mul(div(_restore(reduce_prod(nonzero, axes=axes), x, axes), nonzero), factor)
    return (mul(_restore(g, x, axes), rest),)


reduce_prod = defprim("reduce_prod", lambda x, axes: np.multiply.reduce(x, axis=axes, dtype=x.dtype),
                      _reduce_rule("reduce_prod"), _prod_vjp, "ProdBackward1", save_inputs=True)
reduce_prod.c_lowering = {"reduce": "reduction.c.jinja", "combine": "({acc} * {x})",
                          "identity": "1", "simd": "*", "f32_acc": "double",
                          "int_acc": "unsigned"}


def _arg_rule(name: str):
    def rule(x: Aval, axis: int) -> Aval:
        _check_axes(name, x, (axis,))
        if x.shape[axis] == 0:
            raise TypeError(f"{name}: cannot reduce the empty axis {axis} of {list(x.shape)}")
        return Aval(tuple(s for i, s in enumerate(x.shape) if i != axis), int64)
    return rule


def _arg_impl(fn):
    # numpy returns the first occurrence on ties and treats NaN as the extremum,
    # as PyTorch does.
    def impl(x: np.ndarray, axis: int) -> np.ndarray:
        return np.asarray(fn(x, axis=axis), dtype=np.int64)
    return impl


argmax = defprim("argmax", _arg_impl(np.argmax), _arg_rule("argmax"), None, "",
                 doc="Index (int64) of the first maximum along `axis`; NaN counts as the maximum.")
argmin = defprim("argmin", _arg_impl(np.argmin), _arg_rule("argmin"), None, "",
                 doc="Index (int64) of the first minimum along `axis`; NaN counts as the minimum.")

from .elementwise import convert, div, eq, mul, select, sub  # noqa: E402
from .shape import broadcast_in_dim  # noqa: E402
