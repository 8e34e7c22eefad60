"""Indexing primitives: slice, pad, rev, concatenate, take, scatter_add and the along-axis pair.

They follow JAX's ``lax`` primitives of the same names, cut down to what the
front end needs: every parameter is static (ints and tuples of ints), steps are
positive (``rev`` reverses axes, into a copy as ``flip``), padding is with
zeros and never negative. The pairs are each other's transposes, so every VJP
rule is one primitive: slice <-> pad, take <-> scatter_add, take_along <->
scatter_add_along, rev <-> rev, and concatenate's is one slice per operand.

``take`` and ``scatter_add`` receive their indices as an integer operand (not a
parameter) so a traced program can vary them; their nodes save only the indices
(as PyTorch's IndexBackward0 does), so writing into the gathered-from tensor later
does not invalidate the gather's backward. Indices may be negative (they
wrap once, as in PyTorch); anything outside ``[-size, size)`` raises PyTorch's
IndexError naming the index and the size.

``take_along`` / ``scatter_add_along`` are the elementwise gather (PyTorch's
``gather``, numpy's ``take_along_axis``) and its transpose (``scatter_add``):
one index per output element, replacing the coordinate along ``axis``.
``check_index`` checks (and wraps) indices on their own, so the front end can
record PyTorch's data-dependent checks in a traced program (a compiled call
re-runs them on its new data) and the compiler can lower the along-axis pair to
comparisons with the checked indices (:mod:`gradgen.codegen.onehot`).
"""
from __future__ import annotations

import math

import numpy as np

from .registry import Aval, defprim

Ints = tuple[int, ...]


def _check_per_axis(name: str, x: Aval, **params: Ints) -> None:
    for key, val in params.items():
        if len(val) != x.ndim:
            raise TypeError(f"{name}: {key} {val} must give one entry per axis of {list(x.shape)}")


# ---------------------------------------------------------------- slice and pad

def _slice_len(start: int, stop: int, step: int) -> int:
    return max(0, -(-(stop - start) // step))


def _slice_rule(x: Aval, starts: Ints, stops: Ints, steps: Ints) -> Aval:
    _check_per_axis("slice", x, starts=starts, stops=stops, steps=steps)
    for n, a, b, s in zip(x.shape, starts, stops, steps):
        if s < 1 or not 0 <= a <= b <= n:
            raise TypeError(f"slice: start {starts}, stop {stops}, step {steps} do not select a "
                            f"slice of {list(x.shape)} (need 0 <= start <= stop <= size, step >= 1)")
    return Aval(tuple(_slice_len(a, b, s) for a, b, s in zip(starts, stops, steps)), x.dtype)


def _slice_impl(x: np.ndarray, starts: Ints, stops: Ints, steps: Ints) -> np.ndarray:
    return x[tuple(map(slice, starts, stops, steps))]


def _slice_vjp(g, ins, out, needs, starts, stops, steps):
    shape = ins[0].shape
    lo, hi, interior = [], [], []
    for n, a, s, m in zip(shape, starts, steps, g.shape):
        # The m kept elements sit at a, a+s, ..., a+(m-1)s: pad zeros around and between them.
        covered = (m - 1) * s + 1 if m else 0
        lo.append(a)
        hi.append(n - a - covered)
        interior.append(s - 1 if m else 0)
    return (pad(g, lo=tuple(lo), hi=tuple(hi), interior=tuple(interior)),)


slice_ = defprim("slice", _slice_impl, _slice_rule, _slice_vjp, "SliceBackward0", is_view=True,
                 doc="x[starts[i]:stops[i]:steps[i]] on every axis i (steps >= 1); a view.")


def _pad_shape(n: int, lo: int, hi: int, interior: int) -> int:
    return lo + hi + n + max(n - 1, 0) * interior


def _pad_rule(x: Aval, lo: Ints, hi: Ints, interior: Ints) -> Aval:
    _check_per_axis("pad", x, lo=lo, hi=hi, interior=interior)
    if min(lo + hi + interior, default=0) < 0:
        raise TypeError(f"pad: lo {lo}, hi {hi} and interior {interior} must be non-negative")
    return Aval(tuple(map(_pad_shape, x.shape, lo, hi, interior)), x.dtype)


def _pad_where(shape: Ints, lo: Ints, interior: Ints) -> tuple:
    return tuple(slice(a, a + (n - 1) * (i + 1) + 1 if n else a, i + 1)
                 for n, a, i in zip(shape, lo, interior))


def _pad_impl(x: np.ndarray, lo: Ints, hi: Ints, interior: Ints) -> np.ndarray:
    out = np.zeros(tuple(map(_pad_shape, x.shape, lo, hi, interior)), x.dtype)
    out[_pad_where(x.shape, lo, interior)] = x
    return out


def _pad_vjp(g, ins, out, needs, lo, hi, interior):
    where = _pad_where(ins[0].shape, lo, interior)
    return (slice_(g, starts=tuple(w.start for w in where), stops=tuple(w.stop for w in where),
                   steps=tuple(w.step for w in where)),)


pad = defprim("pad", _pad_impl, _pad_rule, _pad_vjp, "ConstantPadNdBackward0",
              doc="Zeros around (lo, hi) and between (interior) the elements of every axis.")

# ---------------------------------------------------------------- rev and concatenate


def _rev_rule(x: Aval, axes: Ints) -> Aval:
    if len(set(axes)) != len(axes) or any(a < 0 or a >= x.ndim for a in axes):
        raise TypeError(f"rev: axes {axes} are not distinct axes of {list(x.shape)}")
    return x


# Not a view primitive: PyTorch's flip copies, so a compiled call must not hand out its input's
# memory reversed (the C backend reverses by index arithmetic all the same).
rev = defprim("rev", lambda x, axes: np.flip(x, axes).copy(), _rev_rule,
              lambda g, ins, out, needs, axes: (rev(g, axes=axes),), "FlipBackward0",
              doc="Reverse the order of elements along `axes` (a copy).")


def _concat_rule(*xs: Aval, axis: int) -> Aval:
    if not xs:
        raise TypeError("concatenate: needs at least one operand")
    first = xs[0]
    if not 0 <= axis < first.ndim:
        raise TypeError(f"concatenate: axis {axis} is not an axis of {list(first.shape)}")
    total = 0
    for x in xs:
        if x.dtype is not first.dtype:
            raise TypeError("concatenate: operand dtypes differ: " + ", ".join(x.dtype.name for x in xs))
        if x.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape))
                                       if i != axis):
            raise TypeError("concatenate: operand shapes differ off axis "
                            f"{axis}: " + ", ".join(str(list(x.shape)) for x in xs))
        total += x.shape[axis]
    return Aval(first.shape[:axis] + (total,) + first.shape[axis + 1:], first.dtype)


def _concat_vjp(g, ins, out, needs, axis):
    grads = []
    offset = 0
    starts = [0] * len(g.shape)
    for x, need in zip(ins, needs):
        n = x.shape[axis]
        if need:
            lo, hi = list(starts), list(g.shape)
            lo[axis], hi[axis] = offset, offset + n
            grads.append(slice_(g, starts=tuple(lo), stops=tuple(hi), steps=(1,) * len(lo)))
        else:
            grads.append(None)
        offset += n
    return tuple(grads)


concatenate = defprim("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis), _concat_rule,
                      _concat_vjp, "CatBackward0",
                      doc="Join operands of one dtype along an existing `axis`.")

# ---------------------------------------------------------------- take and scatter_add


def check_bounds(idx: np.ndarray, size: int, dim: int) -> None:
    """Raise PyTorch's IndexError if an index lies outside ``[-size, size)``."""
    if idx.size == 0:
        return
    if idx.max() >= size or idx.min() < -size:
        bad = idx[(idx >= size) | (idx < -size)].flat[0]
        raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size {size}")


def _index_rule(name: str, idx: Aval) -> None:
    if idx.dtype.is_floating_point or idx.dtype.name == "bool":
        raise TypeError(f"{name}: indices must be an integer tensor, got {idx.dtype.name}")


def _take_rule(x: Aval, idx: Aval, axis: int) -> Aval:
    _index_rule("take", idx)
    if not 0 <= axis < x.ndim:
        raise TypeError(f"take: axis {axis} is not an axis of {list(x.shape)}")
    return Aval(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)


def _take_impl(x: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    try:
        return np.take(x, idx, axis=axis)  # numpy checks the bounds; we only reword its error
    except IndexError:
        check_bounds(idx, x.shape[axis], axis)
        raise


take = defprim("take", _take_impl, _take_rule,
               lambda g, ins, out, needs, axis: (
                   scatter_add(g, ins[1], shape=tuple(ins[0].shape), axis=axis), None),
               "IndexSelectBackward0", save_inputs=True, saved_for=lambda needs: (False, True),
               doc="Gather along `axis`: out shape x.shape[:axis] + idx.shape + x.shape[axis+1:].")


def _scatter_rule(upd: Aval, idx: Aval, shape: Ints, axis: int) -> Aval:
    _index_rule("scatter_add", idx)
    if not 0 <= axis < len(shape):
        raise TypeError(f"scatter_add: axis {axis} is not an axis of {list(shape)}")
    want = tuple(shape[:axis]) + idx.shape + tuple(shape[axis + 1:])
    if upd.shape != want:
        raise TypeError(f"scatter_add: updates {list(upd.shape)} should have shape {list(want)} "
                        f"for indices {list(idx.shape)} into {list(shape)} along axis {axis}")
    return Aval(tuple(shape), upd.dtype)


def _scatter_impl(upd: np.ndarray, idx: np.ndarray, shape: Ints, axis: int) -> np.ndarray:
    if upd.size == 0:  # nothing to add: like take, indices that select nothing are not checked
        return np.zeros(shape, upd.dtype)
    n = shape[axis]
    check_bounds(idx, n, axis)
    if shape[axis + 1:] == () and axis == 0 and upd.dtype.kind == "f":
        # One value per index: bincount sums duplicates far faster than np.add.at.
        flat = idx.reshape(-1)
        flat = np.where(flat < 0, flat + n, flat)
        return np.bincount(flat, upd.reshape(-1), minlength=n).astype(upd.dtype, copy=False)
    out = np.zeros(shape, upd.dtype)
    np.add.at(out, (slice(None),) * axis + (idx,), upd)
    return out


scatter_add = defprim("scatter_add", _scatter_impl, _scatter_rule,
                      lambda g, ins, out, needs, shape, axis: (take(g, ins[1], axis=axis), None),
                      "ScatterAddBackward0", save_inputs=True, saved_for=lambda needs: (False, True),
                      doc="Zeros of `shape` plus `upd` added at `idx` along `axis` (duplicates "
                          "accumulate): the transpose of take.")


# ---------------------------------------------------------------- check_index

# How check_index reports an index outside its range, per ``mode``: the exception, the
# message, and whether negative indices are allowed (they wrap once, as in ``take``).
_MODES = {
    "wrap": (IndexError, "index {i} is out of bounds for dimension {d} with size {n}", True),
    "gather": (RuntimeError, "index {i} is out of bounds for dimension {d} with size {n}", False),
    "target": (IndexError, "Target {i} is out of bounds.", False),  # nll_loss / cross_entropy
    # index_select: PyTorch's CPU kernel checks dim 1 of a tensor of rank > 1 (and any dim of
    # an empty one) in one loop with the first message, every other dim with the second.
    "index_select_dim1": (RuntimeError, "INDICES element is out of DATA bounds, id={i} "
                                        "axis_dim={n}", False),
    "index_select": (IndexError, "index out of range in self", False),
}


def check_index_range(size: int, axis: int, mode: str) -> tuple[int, int, bool]:
    """``(lo, hi, wrap)``: ``mode``'s indices must lie in ``[lo, hi)``; with ``wrap`` the
    negative ones then have ``size`` added (the C lowering's facet; ``axis`` is unused)."""
    negatives = _MODES[mode][2]
    return (-size if negatives else 0), size, negatives


def check_index_error(bad: int, size: int, axis: int, mode: str) -> Exception:
    """The exception ``mode`` raises for the first out-of-range index ``bad`` (see ``_MODES``)."""
    exc, message, _ = _MODES[mode]
    return exc(message.format(i=bad, d=axis, n=size))


def check_index_values(idx: np.ndarray, size: int, axis: int, mode: str) -> None:
    """Raise ``mode``'s exception (see ``_MODES``) if an index lies outside its range:
    ``[-size, size)`` for "wrap", ``[0, size)`` otherwise. ``axis`` is named in the message."""
    lo, hi, _ = check_index_range(size, axis, mode)
    if idx.size and (idx.min() < lo or idx.max() >= hi):
        bad = idx[(idx < lo) | (idx >= hi)].flat[0]
        raise check_index_error(bad, size, axis, mode)


def _check_index_rule(idx: Aval, size: int, axis: int, mode: str) -> Aval:
    _index_rule("check_index", idx)
    if mode not in _MODES or size < 0:
        raise TypeError(f"check_index: mode {mode!r} is not one of {sorted(_MODES)} or size "
                        f"{size} < 0")
    return idx


def _check_index_impl(idx: np.ndarray, size: int, axis: int, mode: str) -> np.ndarray:
    check_index_values(idx, size, axis, mode)
    return np.where(idx < 0, idx + size, idx) if mode == "wrap" else idx.copy()


check_index = defprim("check_index", _check_index_impl, _check_index_rule, None, "",
                      doc="The indices `idx` after checking they index an axis of `size` (the "
                          "error per `mode`: 'wrap' wraps negatives once, as take does; 'gather' "
                          "and 'target' reject them with PyTorch's gather / nll_loss errors).")
# C: a check kernel (gradgen.codegen.checks) testing every index against check_index_range;
# it reports the first one outside (in C order) and the executable raises check_index_error.
check_index.c_lowering = {"check": "check_index.c.jinja", "range": check_index_range,
                          "error": check_index_error}

# ---------------------------------------------------------------- take_along and scatter_add_along


def _along_rule(name: str, idx: Aval, shape: Ints, axis: int) -> None:
    _index_rule(name, idx)
    if not 0 <= axis < len(shape):
        raise TypeError(f"{name}: axis {axis} is not an axis of {list(shape)}")
    if idx.ndim != len(shape) or any(a > b for d, (a, b) in enumerate(zip(idx.shape, shape))
                                     if d != axis):
        raise TypeError(f"{name}: indices {list(idx.shape)} must have the rank of {list(shape)} "
                        f"and be no larger off axis {axis}")


def _corner(shape: Ints, idx_shape: Ints, axis: int) -> tuple:
    """The part of an array of ``shape`` an index of ``idx_shape`` addresses (as PyTorch's
    gather reads only the leading corner when the index is smaller off ``axis``)."""
    return tuple(slice(None) if d == axis or a == b else slice(0, a)
                 for d, (a, b) in enumerate(zip(idx_shape, shape)))


def _take_along_rule(x: Aval, idx: Aval, axis: int) -> Aval:
    _along_rule("take_along", idx, x.shape, axis)
    return Aval(idx.shape, x.dtype)


def _take_along_impl(x: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    if idx.size == 0:
        return np.empty(idx.shape, x.dtype)
    check_bounds(idx, x.shape[axis], axis)
    return np.take_along_axis(x[_corner(x.shape, idx.shape, axis)], idx, axis=axis)


take_along = defprim("take_along", _take_along_impl, _take_along_rule,
                     lambda g, ins, out, needs, axis: (
                         scatter_add_along(g, ins[1], axis=axis, shape=tuple(ins[0].shape)), None),
                     "GatherBackward0", save_inputs=True, saved_for=lambda needs: (False, True),
                     doc="out[i] = x[i with coordinate `axis` replaced by idx[i]]: PyTorch's "
                         "gather (idx has x's rank and may be smaller off `axis`).")


def _scatter_along_rule(upd: Aval, idx: Aval, axis: int, shape: Ints) -> Aval:
    _along_rule("scatter_add_along", idx, tuple(shape), axis)
    if upd.shape != idx.shape:
        raise TypeError(f"scatter_add_along: updates {list(upd.shape)} and indices "
                        f"{list(idx.shape)} must have one shape")
    return Aval(tuple(shape), upd.dtype)


def _scatter_along_impl(upd: np.ndarray, idx: np.ndarray, axis: int, shape: Ints) -> np.ndarray:
    out = np.zeros(shape, upd.dtype)
    if upd.size == 0:
        return out
    n = shape[axis]
    check_bounds(idx, n, axis)
    part = out[_corner(shape, idx.shape, axis)]
    if idx.shape[axis] == 1:
        # One index per line along the axis: no duplicates, so a plain store does. Adding 0
        # first makes a -0.0 update +0.0, as adding it to the zeros would.
        np.put_along_axis(part, idx, upd + np.zeros((), upd.dtype), axis=axis)
        return out
    grid = list(np.ogrid[tuple(slice(0, k) for k in idx.shape)])
    grid[axis] = np.where(idx < 0, idx + n, idx)
    if upd.dtype.kind != "f":
        np.add.at(part, tuple(grid), upd)
        return out
    # Floats: bincount over flat positions sums duplicates far faster than np.add.at.
    flat = sum(g * math.prod(shape[d + 1:]) for d, g in enumerate(grid))
    summed = np.bincount(flat.reshape(-1), upd.reshape(-1), minlength=out.size)
    return summed.astype(upd.dtype, copy=False).reshape(shape)


scatter_add_along = defprim("scatter_add_along", _scatter_along_impl, _scatter_along_rule,
                            lambda g, ins, out, needs, axis, shape: (
                                take_along(g, ins[1], axis=axis), None),
                            "ScatterAddBackward0", save_inputs=True,
                            saved_for=lambda needs: (False, True),
                            doc="Zeros of `shape` plus upd[i] added at i with coordinate `axis` "
                                "replaced by idx[i] (duplicates accumulate): take_along's "
                                "transpose, PyTorch's scatter_add.")
