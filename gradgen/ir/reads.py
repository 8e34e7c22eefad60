"""What a traced function reads besides its arguments: where its captured tensors come from,
and the other values it takes from its globals and closure.

A trace turns a tensor ``fn`` reads from a global or a closure cell into a *captured* input,
and bakes every other value it reads (a coefficient, a flag, the function a global names) into
the program. The compiled program's guard (``gradgen.ad.cache.make_guard``) checks at each
call that those variables still hold what the trace saw, so rebinding one traces again.
"""
from __future__ import annotations

import inspect
import sys
from typing import Any

from ..tensor import Tensor
from .location import user_frames

_SCALARS = (bool, int, float, complex, str, type(None))


def functions(fn: Any) -> list:
    """``fn`` and the functions it wraps (functools.partial, ``__wrapped__``, and gradgen's
    transforms, which keep theirs as ``fn``)."""
    out = []
    for _ in range(8):
        if fn is None:
            break
        out.append(fn)
        fn = getattr(fn, "func", None) or getattr(fn, "__wrapped__", None) or getattr(fn, "fn", None)
    return out


def closure_cells(fns: list) -> dict[int, Any]:
    """id(contents) -> cell, for the closure cells of ``fns``."""
    cells: dict[int, Any] = {}
    for f in fns:
        for cell in getattr(f, "__closure__", None) or ():
            try:
                cells.setdefault(id(cell.cell_contents), cell)
            except ValueError:  # an empty cell
                pass
    return cells


def _code_names(code: Any) -> set[str]:
    """The global names ``code`` and the code nested in it (lambdas, comprehensions) load."""
    names = set(code.co_names)
    for c in code.co_consts:
        if inspect.iscode(c):
            names |= _code_names(c)
    return names


def read_values(fns: list) -> list[tuple]:
    """``(kind, namespace or cell, name, value, by identity)`` for each non-tensor value
    ``fns`` read from their globals or closure cells, as it stands now: a trace bakes such
    values into the program (a coefficient, a flag, the function or array a global names), so
    the compiled program's guard checks them at each call (see ad.cache.make_guard). Python
    scalars (bool, int, float, complex, str, None) are compared by value, other objects by
    identity (a list or array changed in place is not seen). Tensors have their own guard."""
    return [(kind, where, name, v, type(v) not in _SCALARS) for kind, where, name, v in _read(fns)
            if not isinstance(v, Tensor)]


def _read(fns: list) -> list[tuple]:
    """``(kind, namespace or cell, name, value)`` for each variable ``fns`` read from their
    globals or closure cells (tensors too)."""
    out = []
    for f in fns:
        code, g = getattr(f, "__code__", None), getattr(f, "__globals__", None)
        if code is None:
            continue
        out += [("global", g, name, g[name]) for name in sorted(_code_names(code))
                if g is not None and name in g]
        for name, cell in zip(code.co_freevars, getattr(f, "__closure__", None) or ()):
            try:
                out.append(("cell", cell, name, cell.cell_contents))
            except ValueError:  # an empty cell
                pass
    return out


def snapshot(fns: list) -> list[tuple]:
    """What the variables ``fns`` read hold now (compare with :func:`rebound` after fn ran)."""
    return _read(fns)


def rebound(before: list[tuple], fns: list) -> str | None:
    """The name of a variable ``fns`` read whose value fn changed since ``before`` (a
    :func:`snapshot`): ``STEP += 1`` in fn. A compiled call would not run the assignment, so
    such a function cannot be traced: the variables are set back to what they held (the call
    then runs fn eagerly, which assigns them once). None when none changed."""
    old = {(kind, id(where), name): v for kind, where, name, v in before}
    changed = []
    for kind, where, name, v in _read(fns):
        was = old.get((kind, id(where), name), v)
        if was is v or (type(was) in _SCALARS and type(was) is type(v)
                        and (was == v or was != was and v != v)):
            continue
        changed.append(name)
        if kind == "global":
            where[name] = was
        else:
            where.cell_contents = was
    return changed[0] if changed else None


def global_source(obj: object, frame=None) -> tuple[str, dict, str] | None:
    """``("global", namespace, name)`` when the innermost user frame whose code names a global
    bound to ``obj`` is found (where user code read ``obj`` from), else None."""
    for f in user_frames(frame if frame is not None else sys._getframe(1)):
        g = f.f_globals
        for name in f.f_code.co_names:
            if g.get(name) is obj:
                return ("global", g, name)
    return None


__all__ = ["functions", "closure_cells", "read_values", "global_source", "snapshot", "rebound"]
