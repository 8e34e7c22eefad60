"""Index arithmetic shared by the scheduler and the renderer: strides, and the *row map* of
row-wise kernels.

A row-wise kernel loops over the kept (not reduced) axes of its domain -- one
iteration per *row* -- and keeps per-row values (reduction results and what is
computed from them) in C scalars. A per-row value of shape ``S`` is numbered
canonically: its row-major flat index is the row number, which is also the
row-major index over the kept axes of the domain.
"""
from __future__ import annotations

from typing import Sequence

from .clower import calls

# A kernel splits its outermost parallel loop among the module's threads
# (templates/threadpool.c.jinja) when its work is worth the hand-off (about a microsecond to
# a spinning worker). Work is counted in *element-calls*: elements times the function calls
# (libm, vecmath: ~0.5-1 ns each, vectorized) per element. Arithmetic alone runs well under
# 1 ns per element, so a kernel without calls needs many more elements: right after a numpy
# BLAS call (whose threads spin for a while) a worker may not get a core at once, and the
# caller then runs the pieces itself.
PARALLEL_MIN_CALLS = 1 << 13
PARALLEL_MIN_ARITHMETIC = 1 << 18


def calls_per_element(statements: list) -> int:
    """Function calls (libm, vecmath) per element in ``statements`` (template dicts)."""
    return sum(calls(s["expr"]) for s in statements if "expr" in s)


def worth_threads(elements: int, statements: list) -> bool:
    """Whether a kernel over ``elements`` whose statements are ``statements`` (template
    dicts) should run its loop on the pool."""
    c = calls_per_element(statements)
    return elements * c >= PARALLEL_MIN_CALLS if c else elements >= PARALLEL_MIN_ARITHMETIC


def contiguous(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major element strides of ``shape``."""
    strides, n = [], 1
    for s in reversed(shape):
        strides.append(n)
        n *= s
    return tuple(reversed(strides))


def numel(shape: Sequence[int]) -> int:
    """The number of elements of ``shape``."""
    n = 1
    for s in shape:
        n *= s
    return n


def kept_axes(domain: Sequence[int], red: Sequence[int] | None) -> list[int]:
    """The axes of ``domain`` a reduction over ``red`` keeps."""
    return [a for a in range(len(domain)) if a not in (red or ())]


def rows(domain: Sequence[int], red: Sequence[int] | None) -> int:
    """How many rows (kept index tuples) ``domain`` has."""
    return numel([domain[a] for a in kept_axes(domain, red)])


def kept_pattern(domain: Sequence[int], red: Sequence[int] | None) -> tuple[int, ...]:
    """Strides over ``domain`` that read the row number (0 along the reduced axes)."""
    kept = kept_axes(domain, red)
    strides = dict(zip(kept, contiguous([domain[a] for a in kept])))
    return tuple(strides.get(a, 0) for a in range(len(domain)))


def same_walk(a: Sequence[int], b: Sequence[int], shape: Sequence[int]) -> bool:
    """Whether strides ``a`` and ``b`` address the same elements of ``shape`` (unit axes ignored)."""
    return all(x == y for x, y, n in zip(a, b, shape) if n != 1)


def row_access(domain: Sequence[int], red: Sequence[int] | None, shape: Sequence[int],
               strides: Sequence[int]) -> tuple[int, ...] | None:
    """Strides over ``domain`` reading element ``row`` of a per-row view (``shape``,
    ``strides``), or None when the view's axes do not line up with the kept axes."""
    kept = [a for a in kept_axes(domain, red) if domain[a] != 1]
    mine = [k for k, n in enumerate(shape) if n != 1]
    if [domain[a] for a in kept] != [shape[k] for k in mine]:
        return None
    by_axis = dict(zip(kept, (strides[k] for k in mine)))
    return tuple(by_axis.get(a, 0) for a in range(len(domain)))


def access_strides(view_shape, strides, domain) -> tuple[int, ...]:
    """Strides over ``domain`` of a view read there (a rank-0 view: all zeros)."""
    return tuple(strides) if tuple(view_shape) == tuple(domain) else (0,) * len(domain)


def coalesce(extents: list[int], accesses: list[list[int]], split: int):
    """Drop size-1 axes and merge neighbours every access walks contiguously (not across
    ``split``, the kept/reduced boundary). Returns extents, accesses, new split."""
    groups = [int(a >= split) for a in range(len(extents))]
    ext, acc, new_groups = coalesce_groups(extents, accesses, groups)
    return ext, acc, sum(1 for g in new_groups if g == 0)


def coalesce_groups(extents: list[int], accesses: list[list[int]], groups: list[int]):
    """:func:`coalesce` with axes in labelled groups (loops of one group are adjacent):
    axes merge only within a group. Returns extents, accesses and each loop's group."""
    keep = [a for a in range(len(extents)) if extents[a] != 1]
    ext, acc, out_groups = [], [[] for _ in accesses], []
    for a in keep:
        mergeable = ext and groups[a] == out_groups[-1] and all(
            st[-1] == s[a] * extents[a] for st, s in zip(acc, accesses))
        if mergeable:
            ext[-1] *= extents[a]
            for st, s in zip(acc, accesses):
                st[-1] = s[a]
        else:
            ext.append(extents[a])
            for st, s in zip(acc, accesses):
                st.append(s[a])
            out_groups.append(groups[a])
    return ext, acc, out_groups


def index(strides: Sequence[int]) -> str:
    """The C index expression over loop variables ``i0, i1, ...`` for ``strides``."""
    terms = [f"i{k}" if s == 1 else f"i{k} * {s}" for k, s in enumerate(strides) if s]
    return " + ".join(terms) if terms else "0"


__all__ = ["contiguous", "numel", "kept_axes", "rows", "kept_pattern", "same_walk", "row_access",
           "access_strides", "coalesce", "coalesce_groups", "index"]
