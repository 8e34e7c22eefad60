"""One-pass reduction kernels (a reduction fused with its elementwise producers) in one of
three loop forms, all rendered by ``reduction.c.jinja``:

- ``rows``: loops over the kept axes outside, the reduced axes inside, one scalar
  accumulator per output element (an ``omp simd reduction`` over the innermost loop).
  Used when the data is contiguous along a reduced axis (``x.sum(dim=-1)``).
- ``columns``: when the innermost axis is kept and the data runs along it
  (``x.sum(dim=0)`` of a row-major ``[N, C]``): the kept tail is cut into blocks of
  ``COLUMN_BLOCK``; per block, a vector of partial accumulators on the stack, the
  reduced loops outside and a contiguous ``omp simd`` loop over the block inside.
  Each output still accumulates its elements in order, one at a time.
- ``chunks``: a whole-array reduction over at least ``CHUNK_MIN`` elements, or a smaller
  one whose work is worth threads (calls per element: ``layout.worth_threads``). The
  outermost reduced loop is cut into chunks whose count and size depend on the program
  only (never on the thread count); each chunk reduces into its own partial (the chunks
  are split among the threads), then the partials combine in chunk order. The result is
  therefore the same bit for bit on any number of threads.

float32 sums and products accumulate in double in every form; float max/min keep a NaN
flag beside a vectorizable compare/select accumulator (see :func:`clower.accumulators`).
"""
from __future__ import annotations

from ..ir.core import Eqn
from . import clower, sums
from .layout import (access_strides, coalesce_groups, contiguous, index, kept_axes,
                     kept_pattern, numel, worth_threads)

CHUNK_MIN = 1 << 15      # whole-array reductions this large are split into chunks
CHUNK = 1 << 14          # elements per chunk, at least, from CHUNK_FEW * CHUNK elements on
CHUNK_FEW = 8            # smaller arrays still get this many chunks (load balance) ...
CHUNK_LEAST = 1 << 10    # ... of at least this many elements
MAX_CHUNKS = 256         # partials kept on the stack: chunks grow for larger arrays
COLUMN_BLOCK = 512       # partial accumulators per column block (4 KiB of doubles)

_KEPT, _RED, _TAIL = 0, 1, 2


def _loops(dom, red, accesses, columns: bool):
    """Coalesced loops (extents, per-access strides, group per loop) in the form's order."""
    kept = kept_axes(dom, red)
    if columns:
        tail = [a for a in kept if a > max(red)]
        order = [a for a in kept if a not in tail] + list(red) + tail
        groups = [_KEPT] * (len(kept) - len(tail)) + [_RED] * len(red) + [_TAIL] * len(tail)
    else:
        order = kept + list(red)
        groups = [_KEPT] * len(kept) + [_RED] * len(red)
    return coalesce_groups([dom[a] for a in order], [[s[a] for a in order] for s in accesses],
                           groups)


def _prefers_columns(dom, red, load_accesses) -> bool:
    """Whether the loads run contiguously along the (kept) last axis more than along the
    innermost reduced axis, each load weighted by the elements it reads (a per-row vector
    broadcast over the domain counts one row's worth, not the domain's)."""
    last = len(dom) - 1
    inner_red = [a for a in red if dom[a] != 1]
    if not red or last in red or dom[last] == 1 or not inner_red:
        return False

    def weight(s) -> int:
        return numel([n for n, st in zip(dom, s) if st != 0])

    along_last = sum(weight(s) for s in load_accesses if s[last] == 1)
    along_red = sum(weight(s) for s in load_accesses if s[inner_red[-1]] == 1)
    return along_last > 0 and along_last >= along_red


def body(kt) -> dict:
    """The template context of one-pass reduction kernel ``kt.k`` (``kt``: the renderer's
    per-kernel helper, see :mod:`gradgen.codegen.render`)."""
    k = kt.k
    dom, red = k.domain, tuple(k.red_axes or ())
    reds = [e for e in k.eqns if clower.is_reduction(e)]
    red_outs = {e.out for e in reds}
    loads = sorted(k.loads.items(), key=lambda kv: kt.key(kv[0]))
    stores = sorted(((v, b) for v, b in k.stores.items() if v not in red_outs),
                    key=lambda vb: kt.num[vb[0]])
    load_acc = [access_strides(view.shape, view.strides, dom) for _, view in loads]
    accesses = load_acc + [contiguous(dom)] * len(stores) + [kept_pattern(dom, red)] * len(reds)
    form = "columns" if _prefers_columns(dom, red, load_acc) else "rows"
    ext, acc, groups = _loops(dom, red, accesses, form == "columns")
    if form == "columns" and (groups.count(_TAIL) != 1 or _RED not in groups):
        form = "rows"
        ext, acc, groups = _loops(dom, red, accesses, False)
    parallel = worth_threads(numel(dom), [kt.let(e) for e in k.eqns if e not in reds])
    if form == "rows" and _KEPT not in groups and _RED in groups and \
            (numel(dom) >= CHUNK_MIN or parallel):
        form = "chunks"
    idx = [index(s) for s in acc]
    loops = [{"var": f"i{j}", "extent": n} for j, n in enumerate(ext)]
    one_loop = groups.count(_RED) == 1  # float sums in lanes (rows, chunks) or row blocks
    red_loop = loops[groups.index(_RED)] if one_loop else None
    in_lanes = one_loop and (form == "chunks" or
                             form == "rows" and red_loop["extent"] > sums.SUM_BLOCK)
    lane = "[j]" if form == "columns" else ""
    stmts = [kt.load(v, view, idx[j]) for j, (v, view) in enumerate(loads)]
    tails, accs, finals, lanes, row_sums = list(stmts), [], [], [], []
    for e in k.eqns:
        if e in reds:
            name = f"acc{len(finals)}"
            accs += clower.accumulators(e, name)
            x = kt.v(e.inputs[0])
            ls = sums.lane_sum(e, name, red_loop["var"]) if in_lanes else None
            if ls is not None:
                lanes.append(ls)
                stmts.append(sums.update(ls, x))
                tails.append(sums.tail_update(ls, x))
            elif one_loop and form == "columns" and sums.floats_in_double(e):
                row_sums.append({"name": name, "block": name + "b",
                                 "ctype": clower.ctype(e.inputs[0].aval.dtype),
                                 "acc_ctype": clower.accumulator_type(e)})
                stmts.append({"kind": "set", "name": f"{name}b[j]", "expr": f"({name}b[j] + {x})"})
            else:
                got = clower.reduction_updates(e, name + lane, x)
                stmts += got
                tails += got
            finals.append({"ptr": kt.p(k.stores[e.out]), "ctype": clower.ctype(e.out.aval.dtype),
                           "index": idx[len(loads) + len(stores) + len(finals)],
                           "value": clower.reduction_result(e, name + lane)})
        else:
            stmts.append(kt.let(e))
            tails.append(stmts[-1])
    for j, (v, buf) in enumerate(stores):
        stmts.append({"kind": "store", "ptr": kt.p(buf), "index": idx[len(loads) + j],
                      "value": kt.v(v)})
        tails.append(stmts[-1])
    others = [{"op": a["op"], "name": a["name"]} for a in accs
              if not any(a["name"] == ls["name"] for ls in lanes)]
    ctx = {"template": "reduction.c.jinja", "kind": "reduction", "form": form, "body": stmts,
           "accs": accs, "finals": finals, "parallel": parallel,
           "simd_reduction": [{"op": a["op"], "name": a["name"]} for a in accs]
           if all(a["op"] for a in accs) else None,
           "merges": [{"name": a["name"], "expr": a["merge"].format(acc=a["name"],
                                                                    x=f"{a['name']}_p[c]")}
                      for a in accs],
           "row_sums": row_sums, "row_block": sums.ROW_BLOCK,
           "params_in": [view.buffer for _, view in loads],
           "params_out": list(k.stores.values())}
    outer = [lp for lp, g in zip(loops, groups) if g == _KEPT]
    inner = [lp for lp, g in zip(loops, groups) if g == _RED]
    ctx["parallel"] = ctx["parallel"] and (bool(outer) or form != "rows")
    if form == "columns":
        tail = loops[groups.index(_TAIL)]
        ctx["tail"] = {**tail, "block": min(COLUMN_BLOCK, tail["extent"])}
    if form == "chunks":
        rest = numel([lp["extent"] for lp in inner[1:]])
        size = numel(dom)
        least = max(min(CHUNK, size // CHUNK_FEW), CHUNK_LEAST, -(-size // MAX_CHUNKS))
        per = -(-least // rest)  # outer iterations per chunk
        ctx["chunk"] = {"size": per, "count": -(-inner[0]["extent"] // per)}
        ctx["partials"] = [{"ctype": a["ctype"], "name": a["name"] + "_p", "init": a["name"] + "_p"}
                           for a in accs]
    ctx["lanes"] = None
    if lanes:
        start, stop = ("c * " + str(ctx["chunk"]["size"]), "end") if form == "chunks" \
            else ("0", str(red_loop["extent"]))
        ctx["lanes"] = sums.lane_loop(red_loop["var"], start, stop, lanes, stmts, tails, others,
                                      all(o["op"] for o in others))
    return {**ctx, "outer": outer, "inner": inner}


def is_reduction_kernel(eqns: list[Eqn]) -> bool:
    """Whether a simple kernel's equations include a reduction (else: elementwise)."""
    return any(clower.is_reduction(e) for e in eqns)


__all__ = ["body", "is_reduction_kernel", "CHUNK_MIN", "CHUNK", "MAX_CHUNKS",
           "COLUMN_BLOCK"]
