"""Row-wise kernels: passes over each row holding reductions and their broadcast consumers.

The scheduler (:mod:`gradgen.codegen.schedule`) puts in one kernel the
reductions over the same axes and the elementwise equations around them; the
*per-row values* (reduction results, equations over them, their broadcasts back
over the row) are C scalars, one set per iteration of the loops over the kept
axes. This module orders such a kernel into passes over the row:

- every value gets a *level*: loads are 0; a reduction whose operand has level p
  runs in pass p and its result has level p + 1; any other equation takes the
  highest level of its operands;
- pass p holds the reductions of level-p operands and the stores of whole-domain
  values of level p, with the elementwise equations they need (recomputed in each
  pass that needs them: they are cheap next to a second trip through memory --
  except a value calling libm (``exp``, ``log``, ...) that a later pass needs: the
  first pass keeps it in a row-local array the later ones read);
- after pass p come, per row, the reduction results of pass p, the per-row
  equations of level p + 1 and the per-row stores; per-row equations of level 0
  (over per-row loads) come before the first pass.

Softmax forward: pass 0 takes the max, pass 1 sums exp(x - max), pass 2 stores
exp(x - max) / sum. Softmax backward: pass 0 sums g * y, pass 1 stores y * (g - s).

A *pick* -- the one-hot lowering's ``reduce_max(select(iota == t, x, -inf))`` with ``x`` read
from memory and ``t`` a checked index (``check_index`` for the row's length, so in range) --
is no reduction here but one load per row before the first pass: ``x[row, t]``. That is the
maximum of one element and -infs exactly (NaN, +-inf and -0.0 included).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.core import Eqn, Literal, Var
from . import clower, colsums, sums
from .layout import (access_strides, coalesce, contiguous, index, kept_pattern, numel,
                     row_access, worth_threads)
from .steps import Kernel, is_iota
from .rowbuffers import ROW_BUFFER_MAX, kept_values, on_heap
from .sums import SUM_BLOCK



@dataclass
class Pass:
    """One trip over the row: its reductions, whole-domain stores, and what they need."""

    reductions: list[Eqn] = field(default_factory=list)
    stores: list[Var] = field(default_factory=list)
    loads: list[Var] = field(default_factory=list)
    eqns: list[Eqn] = field(default_factory=list)
    column_sums: list[int] = field(default_factory=list)  # positions in Kernel.column_sums


@dataclass
class Plan:
    """The passes of a row-wise kernel, and per-row work by level (``after[a]`` runs once
    the first ``a`` passes are done; ``after[0]`` before the first)."""

    passes: list[Pass]
    after: list[list[tuple[str, object]]]  # ("final", reduction eqn) | ("eqn", e) | ("store", v)
    row_loads: list[Var]


def reductions(k: Kernel) -> list[Eqn]:
    """The kernel's reduction equations, in program order."""
    return [e for e in k.eqns if clower.is_reduction(e)]


def is_simple(k: Kernel) -> bool:
    """Whether ``k`` is an elementwise kernel or a one-pass reduction storing its results
    (rendered by elementwise.c.jinja / reduction.c.jinja)."""
    outs = {e.out for e in reductions(k)}
    return k.row_values == outs and all(o in k.stores for o in outs) and \
        not any(isinstance(a, Var) and a in outs for e in k.eqns for a in e.inputs) and \
        not k.column_sums


def plan(k: Kernel, picks: dict | None = None) -> Plan:
    """Levels, passes and per-row work of kernel ``k`` (see the module docstring);
    ``picks``: reductions done as one load per row (:func:`picks`), ``id(eqn) -> (x, t)``."""
    picks = picks or {}
    level: dict[Var, int] = {}
    red_pass: dict[int, int] = {}
    made = {e.out: e for e in k.eqns}
    reds = [e for e in reductions(k) if id(e) not in picks]

    def lv(a) -> int:
        return level.get(a, 0) if isinstance(a, Var) else 0

    for e in k.eqns:
        if id(e) in picks:
            level[e.out] = 0
        elif clower.is_reduction(e):
            red_pass[id(e)] = lv(e.inputs[0])
            level[e.out] = red_pass[id(e)] + 1
        else:
            level[e.out] = max((lv(a) for a in e.inputs), default=0)
    row_stores = [v for v in k.stores if v in k.row_values and k.is_row_shaped(v)]
    elem_stores = [v for v in _stores(k) if v not in row_stores]
    col_pass = [lv(c.eqn.inputs[0]) for c in k.column_sums]
    n = max([red_pass[id(e)] for e in reds] + [lv(v) for v in elem_stores] + col_pass) + 1
    passes = [Pass() for _ in range(n)]
    for e in reds:
        passes[red_pass[id(e)]].reductions.append(e)
    for v in elem_stores:
        passes[lv(v)].stores.append(v)
    # Column sums go to the last pass (their operands are ready by then): usually the one
    # storing the kernel's results, a plain loop. In a pass summing in lanes, gcc kept the
    # lanes in memory once the vector's update was there (seen on layer norm's kernel).
    passes[-1].column_sums.extend(range(len(col_pass)))
    for p in passes:
        _close(k, p, made, [k.column_sums[j].eqn.inputs[0] for j in p.column_sums])
    after: list[list] = [[] for _ in range(n + 1)]
    for e in k.eqns:
        if id(e) in picks:
            after[0].append(("pick", e))
        elif clower.is_reduction(e):
            after[red_pass[id(e)] + 1].append(("final", e))
        elif e.out in k.row_values:
            after[level[e.out]].append(("eqn", e))
    for v in row_stores:
        after[lv(v)].append(("store", v))
    row_eqns = [e for e in k.eqns if e.out in k.row_values and not clower.is_reduction(e)]
    row_loads = [v for v in k.loads if any(v in e.inputs for e in row_eqns)]
    # No pass is empty: a level above 0 needs a reduction in the pass before it.
    return Plan(passes, after, row_loads)


def picks(k: Kernel, defn: dict) -> dict[int, tuple[Var, Var]]:
    """The reductions of row-wise kernel ``k`` that are picks (module docstring), as
    ``id(eqn) -> (x, t)``; ``defn`` maps the program's values to their equations (to find
    that ``t`` was checked). Only for one reduced axis longer than 1, and never every
    reduction of the kernel (a pass stays)."""
    red = k.red_axes or ()
    if len(red) != 1 or k.domain[red[0]] < 2:
        return {}
    made = {e.out: e for e in k.eqns}
    found = {}
    for e in reductions(k):
        got = _pick(k, e, made, defn, red[0]) if e.prim.name == "reduce_max" else None
        if got is not None:
            found[id(e)] = got
    return found if len(found) < len(reductions(k)) else {}


def _pick(k: Kernel, e: Eqn, made: dict, defn: dict, axis: int) -> tuple[Var, Var] | None:
    """``(x, t)`` when reduction ``e`` is ``reduce_max(select(iota == t, x, -inf))``."""
    sel = made.get(e.inputs[0])
    if sel is None or sel.prim.name != "select":
        return None
    c, x, low = sel.inputs
    if not (isinstance(low, Literal) and low.aval.ndim == 0 and float(low.value) == -np.inf):
        return None
    cmp = made.get(c)
    if cmp is None or cmp.prim.name != "eq" or not isinstance(x, Var) or x in made \
            or x not in k.loads:
        return None
    for iota, t in (cmp.inputs, cmp.inputs[::-1]):
        if _along(k, iota, axis) and _checked(k, t, defn, axis):
            return x, t
    return None


def _along(k: Kernel, a, axis: int) -> bool:
    """Whether load ``a`` is the positions 0..n-1 along ``axis`` (an iota, constant elsewhere)."""
    view = k.loads.get(a) if isinstance(a, Var) else None
    if view is None or not is_iota(view):
        return False
    st = access_strides(view.shape, view.strides, k.domain)
    return all(s == (1 if d == axis else 0) for d, s in enumerate(st))


def _checked(k: Kernel, t, defn: dict, axis: int) -> bool:
    """Whether load ``t`` is constant along ``axis`` and holds a ``check_index`` result for
    the axis' length (through reshapes, broadcasts and integer conversions)."""
    view = k.loads.get(t) if isinstance(t, Var) else None
    if view is None or access_strides(view.shape, view.strides, k.domain)[axis] != 0:
        return False
    v = view.buffer.var
    while True:
        e = defn.get(v)
        if e is None or e.out.aval.dtype.is_floating_point or e.out.aval.dtype.short == "bool":
            return False
        if e.prim.name == "check_index":
            return e.params["size"] == k.domain[axis]
        if e.prim.name not in ("reshape", "broadcast_in_dim", "convert"):
            return False
        v = e.inputs[0]


def _stores(k: Kernel) -> list[Var]:
    """The values kernel ``k`` stores itself (its column sums' partials are stored per block)."""
    partials = {c.partial for c in k.column_sums}
    return [v for v in k.stores if v not in partials]


def _close(k: Kernel, p: Pass, made: dict, summed: list) -> None:
    """Fill pass ``p`` with the loads and elementwise equations its roots need (``summed``:
    the operands of its column sums)."""
    need: set = set()
    stack = [e.inputs[0] for e in p.reductions] + list(p.stores) + summed
    while stack:
        v = stack.pop()
        if isinstance(v, Literal):
            if v in k.loads:  # an array constant is read from its buffer like any load
                need.add(v)
            continue
        if not isinstance(v, Var) or v in need or v in k.row_values:
            continue
        need.add(v)
        if v in made:
            stack.extend(made[v].inputs)
    p.eqns = [e for e in k.eqns if e.out in need]
    p.loads = [v for v in k.loads if v in need and v not in made]


def body(kt) -> dict:
    """The template context (loops, passes, statements) of row-wise kernel ``kt.k``;
    ``kt`` is the renderer's per-kernel helper (value names ``kt.v``, pointers ``kt.p``)."""
    k: Kernel = kt.k
    chosen = picks(k, {e.out: e for e in kt.sched.program.eqns})
    pl = plan(k, chosen)
    dom, red = k.domain, k.red_axes or ()
    elem_loads = sorted({v for p in pl.passes for v in p.loads}, key=kt.key)
    row_loads = sorted(pl.row_loads, key=kt.key)
    # Pass operands constant along the row (broadcast per row, or scalars) are loaded once per
    # row, before the passes: left in a pass loop, gcc may not vectorize it ("latch block not
    # empty", seen on layer norm's gradient pass).
    hoisted = {v for v in elem_loads if red and not any(
        access_strides(k.loads[v].shape, k.loads[v].strides, dom)[a] for a in red)}
    stores = sorted(_stores(k), key=kt.key)
    xs = sorted({a for xt in chosen.values() for a in xt}, key=kt.key)  # picks' x and t
    pattern = kept_pattern(dom, red)
    accesses = [access_strides(k.loads[v].shape, k.loads[v].strides, dom) for v in elem_loads]
    accesses += [row_access(dom, red, k.loads[v].shape, k.loads[v].strides) for v in row_loads]
    accesses += [pattern if v in k.row_values and k.is_row_shaped(v) else contiguous(dom)
                 for v in stores]
    accesses += [access_strides(k.loads[v].shape, k.loads[v].strides, dom) for v in xs]
    order = [a for a in range(len(dom)) if a not in red] + list(red)
    ext, acc, split = coalesce([dom[a] for a in order], [[s[a] for a in order] for s in accesses],
                               len(dom) - len(red))
    idx = [index(s) for s in acc]
    at = {("elem", v): idx[j] for j, v in enumerate(elem_loads)}
    at.update({("row", v): idx[len(elem_loads) + j] for j, v in enumerate(row_loads)})
    at.update({("store", v): idx[len(elem_loads) + len(row_loads) + j] for j, v in enumerate(stores)})
    first = len(elem_loads) + len(row_loads) + len(stores)
    # a pick's x and t at the row (t is constant along it), x's stride along the row
    at.update({("pick", v): (index(acc[first + j][:split]), acc[first + j][split])
               for j, v in enumerate(xs)})

    def load(v, kind):
        return kt.load(v, k.loads[v], at[(kind, v)])

    def store(v):
        return {"kind": "store", "ptr": kt.p(k.stores[v]), "index": at[("store", v)],
                "value": kt.v(v)}

    keep = kept_values(kt, pl, ext[split:])
    rb_index = " + ".join(f"i{split + j} * {numel(ext[split + j + 1:])}"
                          for j in range(len(ext) - split)) or "0"
    accs: dict[int, str] = {}
    blockable = split == len(ext) - 1 and ext[-1] > SUM_BLOCK  # one contiguous row loop
    row = (f"i{len(ext) - 1}", ext[-1]) if blockable else None
    phases = [_phase(kt, p, q, keep, rb_index, accs, row, load, store, hoisted)
              for q, p in enumerate(pl.passes)]
    rows_work = []
    for items in pl.after:
        out = []
        for kind, x in items:
            if kind == "final":
                out.append({"kind": "let", "ctype": clower.ctype(x.out.aval.dtype),
                            "name": kt.v(x.out),
                            "expr": f"({clower.ctype(x.out.aval.dtype)})"
                                    f"{clower.reduction_result(x, accs[id(x)])}"})
            elif kind == "pick":
                out.append(_pick_load(kt, x, *chosen[id(x)], at))
            elif kind == "eqn":
                out.append(kt.let(x))
            else:
                out.append(store(x))
        rows_work.append(out)
    arrays = [{"kind": "array", "ctype": clower.ctype(e.out.aval.dtype), "name": name,
               "size": numel(ext[split:])} for e in k.eqns if id(e) in keep
              for name in [keep[id(e)][1]]]
    heap = on_heap(ext[split:])
    pre = [] if heap else arrays
    pre += [load(v, "row") for v in row_loads] + [load(v, "elem") for v in elem_loads
                                                   if v in hoisted] + rows_work[0]
    for j, ph in enumerate(phases):
        ph["post"] = rows_work[j + 1]
    everything = pre + [s for ph in phases for s in ph["body"] + ph["post"]]
    return {"template": "rowwise.c.jinja", "kind": "row-wise",
            "outer": [{"var": f"i{j}", "extent": n} for j, n in enumerate(ext[:split])],
            "inner": [{"var": f"i{split + j}", "extent": n} for j, n in enumerate(ext[split:])],
            "pre": pre, "phases": phases, "body": everything,
            "heap_arrays": arrays if heap else [],
            "accs": [a for ph in phases for a in ph["accs"]],
            "parallel": worth_threads(numel(dom), everything) and split > 0,
            "colsum": colsums.render_context(kt, split, ext),
            "params_in": [k.loads[v].buffer for v in elem_loads + row_loads + xs],
            "params_out": list(k.stores.values())}


def _phase(kt, p: Pass, q: int, keep: dict, rb_index: str, accs: dict, row, load, store,
           hoisted: set) -> dict:
    """The template context of pass ``q`` (``p``): accumulators, per-element statements, and
    for float32 sums along one contiguous row loop (``row``: its variable and extent, else
    None) the lanes of :mod:`gradgen.codegen.sums`. Names each reduction's accumulator in
    ``accs`` (``id(eqn) -> name``). Loads in ``hoisted`` were made once per row before."""
    k = kt.k
    ph = {"accs": [], "body": [load(v, "elem") for v in sorted(p.loads, key=kt.key)
                               if v not in hoisted],
          "simd_reduction": None, "post": [], "lanes": None}
    ops, lanes, tail = [], [], list(ph["body"])
    for e in k.eqns:
        if e in p.eqns and id(e) in keep and keep[id(e)][0] < q:  # computed in a pass before
            got = [{"kind": "let", "ctype": clower.ctype(e.out.aval.dtype),
                    "name": kt.v(e.out), "expr": f"{keep[id(e)][1]}[{rb_index}]"}]
        elif e in p.eqns:
            got = [kt.let(e)]
            if id(e) in keep:
                got.append({"kind": "store", "ptr": keep[id(e)][1], "index": rb_index,
                            "value": kt.v(e.out)})
        elif e in p.reductions:
            name = accs[id(e)] = f"acc{len(accs)}"
            mine = clower.accumulators(e, name)
            ph["accs"] += mine
            lane = sums.lane_sum(e, name, row[0]) if row else None
            if lane is not None:
                lanes.append(lane)
                ph["body"].append(sums.update(lane, kt.v(e.inputs[0])))
                tail.append(sums.tail_update(lane, kt.v(e.inputs[0])))
                continue
            ops += [{"op": a["op"], "name": a["name"]} for a in mine]
            got = clower.reduction_updates(e, name, kt.v(e.inputs[0]))
        else:
            continue
        ph["body"] += got
        tail += got
    stores = [store(v) for v in sorted(p.stores, key=kt.key)]
    for j in p.column_sums:  # this row's value into its block's vector (colsums.py)
        x = kt.v(k.column_sums[j].eqn.inputs[0])
        stores.append({"kind": "set", "name": f"cs{j}[{rb_index}]",
                       "expr": f"(cs{j}[{rb_index}] + {x})"})
    ph["body"] += stores
    vectorizable = all(o["op"] for o in ops)
    if ops and vectorizable:
        ph["simd_reduction"] = ops
    if lanes:
        ph["lanes"] = sums.lane_loop(row[0], "0", str(row[1]), lanes, ph["body"], tail + stores,
                                     ops, vectorizable)
    return ph


def _pick_load(kt, e: Eqn, x: Var, t: Var, at: dict) -> dict:
    """The statement of pick ``e``: ``x`` at the row's offset plus ``t`` times its stride."""
    (x_row, x_step), (t_row, _) = at[("pick", x)], at[("pick", t)]
    bx, bt = kt.p(kt.k.loads[x].buffer), kt.p(kt.k.loads[t].buffer)
    step = "" if x_step == 1 else f" * {x_step}"
    return {"kind": "let", "ctype": clower.ctype(e.out.aval.dtype), "name": kt.v(e.out),
            "expr": f"{bx}[{x_row} + (int64_t){bt}[{t_row}]{step}]"}


__all__ = ["Plan", "Pass", "plan", "picks", "body", "is_simple", "reductions", "ROW_BUFFER_MAX",
           "SUM_BLOCK"]
