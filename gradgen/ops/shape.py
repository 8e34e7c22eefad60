"""Layout primitives that move no arithmetic: broadcast_in_dim, reshape, transpose."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..dtypes import dtype
from .registry import Aval, defprim


def _bid_rule(x: Aval, shape: tuple[int, ...], dims: tuple[int, ...]) -> Aval:
    if len(dims) != x.ndim or any(d < 0 or d >= len(shape) for d in dims) or list(dims) != sorted(set(dims)):
        raise TypeError(f"broadcast_in_dim: dims {dims} do not map operand {list(x.shape)} into {list(shape)}")
    for i, d in enumerate(dims):
        if x.shape[i] not in (1, shape[d]):
            raise TypeError(f"broadcast_in_dim: operand dimension {i} of size {x.shape[i]} "
                            f"cannot broadcast to size {shape[d]}")
    return Aval(tuple(shape), x.dtype)


def _bid_impl(x: np.ndarray, shape: tuple[int, ...], dims: tuple[int, ...]) -> np.ndarray:
    if len(dims) != len(shape):
        expanded = [1] * len(shape)
        for i, d in enumerate(dims):
            expanded[d] = x.shape[i]
        x = x.reshape(expanded)
    return np.broadcast_to(x, shape)


def _bid_vjp(g, ins, out, needs, shape, dims):
    x = ins[0]
    summed = tuple(a for a in range(len(shape)) if a not in dims
                   or (x.shape[dims.index(a)] == 1 and shape[a] != 1))
    r = reduce_sum(g, axes=summed) if summed else g
    return (reshape(r, shape=tuple(x.shape)) if tuple(r.shape) != tuple(x.shape) else r,)


broadcast_in_dim = defprim("broadcast_in_dim", _bid_impl, _bid_rule, _bid_vjp, "ExpandBackward0",
                           is_view=True,
                           doc="Broadcast x to `shape`; operand axis i becomes output axis dims[i].")


def _bid_strides(in_shape, strides, shape, dims):
    out = [0] * len(shape)
    for i, d in enumerate(dims):
        out[d] = 0 if in_shape[i] == 1 and shape[d] != 1 else strides[i]
    return tuple(out)


# C lowering: index arithmetic, not a copy. A "view" facet maps the operand's
# (shape, element strides) to the result's strides, or None when no strides can
# describe the result (then gradgen.codegen copies the operand first).
broadcast_in_dim.c_lowering = {"view": _bid_strides}


def _reshape_rule(x: Aval, shape: tuple[int, ...]) -> Aval:
    n = 1
    for s in shape:
        n *= s
    if n != x.size or any(s < 0 for s in shape):
        raise TypeError(f"reshape: cannot reshape {list(x.shape)} ({x.size} elements) to {list(shape)}")
    return Aval(tuple(shape), x.dtype)


reshape = defprim("reshape", lambda x, shape: np.reshape(x, shape), _reshape_rule,
                  lambda g, ins, out, needs, shape: (reshape(g, shape=tuple(ins[0].shape)),),
                  "ViewBackward0", is_view=True)


def _reshape_strides(in_shape, strides, shape):
    """numpy's no-copy reshape rule: match runs of axes of equal element count; each run
    of operand axes must be contiguous within itself."""
    if 0 in shape:
        return (0,) * len(shape)  # nothing is ever read
    old = [(n, st) for n, st in zip(in_shape, strides) if n != 1]
    new = [k for k, n in enumerate(shape) if n != 1]
    out = [0] * len(shape)
    oi = ni = 0
    while ni < len(new) and oi < len(old):
        nj, oj = ni + 1, oi + 1
        np_, op = shape[new[ni]], old[oi][0]
        while np_ != op:
            if np_ < op:
                np_ *= shape[new[nj]]
                nj += 1
            else:
                op *= old[oj][0]
                oj += 1
        if any(old[k][1] != old[k + 1][0] * old[k + 1][1] for k in range(oi, oj - 1)):
            return None
        out[new[nj - 1]] = old[oj - 1][1]
        for k in range(nj - 1, ni, -1):
            out[new[k - 1]] = out[new[k]] * shape[new[k]]
        ni, oi = nj, oj
    return tuple(out)


reshape.c_lowering = {"view": _reshape_strides}


def _transpose_rule(x: Aval, perm: tuple[int, ...]) -> Aval:
    if sorted(perm) != list(range(x.ndim)):
        raise TypeError(f"transpose: {perm} is not a permutation of the {x.ndim} axes of {list(x.shape)}")
    return Aval(tuple(x.shape[p] for p in perm), x.dtype)


def _inverse(perm: Sequence[int]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


transpose = defprim("transpose", lambda x, perm: np.transpose(x, perm), _transpose_rule,
                    lambda g, ins, out, needs, perm: (transpose(g, perm=_inverse(perm)),),
                    "PermuteBackward0", is_view=True)
transpose.c_lowering = {"view": lambda in_shape, strides, perm: tuple(strides[p] for p in perm)}


def full(value: float, shape: Sequence[int], dt: dtype):
    """A constant tensor of ``shape`` filled with ``value`` (a broadcast literal)."""
    return broadcast_in_dim(np.asarray(value, dt.np), shape=tuple(shape), dims=())


from .reduce import reduce_sum  # noqa: E402  (rules above call it lazily)
