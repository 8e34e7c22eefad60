"""Matmul kernels: products as generated loops or BLAS calls, with their elementwise epilogue.

A ``matmul`` equation (``[..., m, k] @ [..., k, n]``, float32/float64/int64) becomes a
*matmul kernel* (:class:`~gradgen.codegen.steps.Kernel` with ``gemm`` set), rendered by
``templates/matmul.c.jinja``:

- Small products (at most ``SMALL_MACS`` multiply-adds) and all int64 products run as a
  generated loop nest: the output in tiles of rows by vectors of columns whose accumulators
  stay in vector registers while the loop walks the shared dimension (module.c.jinja's
  ``gg_tile_*``; 6 rows x 2 vectors, or 12 rows x 1 vector when the output has at most one
  vector of columns, see :func:`tile`). The last vector of a row is partial when the column
  count is not a multiple of the vector: it is loaded element by element and its unused
  lanes are zero. float32 accumulates in float, as BLAS does (an addition and a
  multiplication, no FMA: ``-ffp-contract=off``). When the left operand's columns are
  contiguous and the output is narrower than it is tall (``h.T @ g`` with ``g`` 10 wide), the
  loop computes the transpose ``B^T A^T`` instead, vectors then running along the output's
  rows (:func:`swapped`), and stores it transposed. Row blocks split among the module's
  threads from ``PARALLEL_MACS``. A dispatch into numpy's BLAS costs more than such a product.
- Larger float products call ``sgemm``/``dgemm`` of the BLAS numpy uses, through function
  pointers the module receives when it is loaded (:mod:`gradgen.runtime.blas`); no BLAS is
  needed to build the module. Without one, the same function runs a plain (not inlined) loop
  with the tile loops' exact numerics, which costs the compiler next to nothing.
- Operand layouts: any strides are read by index arithmetic (batch strides of 0 included).
  A loop product whose right operand's rows are not contiguous, or a BLAS product whose
  operand has no unit stride along either matrix axis, reads a contiguous copy made by the
  scheduler's copy kernel; a transposed operand goes to BLAS with its transpose flag.
- Epilogue: an elementwise kernel over exactly the product's shape that reads the product
  element for element (bias add and relu; the relu-gradient mask) moves into the matmul
  kernel and runs on each block of rows (of columns, when the loop computes the transpose)
  right after it is computed. The product is then
  stored only if something else reads it; otherwise it is written into an epilogue output
  of its shape and dtype and overwritten there, or kept in a workspace buffer if none fits.

Matmuls stay host ops while the scheduler runs (the rematerialization pass then keeps their
operands stored) and become kernels in :func:`lower_matmuls` afterwards.
"""
from __future__ import annotations

from typing import Any

from ..ir.core import Eqn, Var
from ..ops.linalg import matmul
from . import clower
from .layout import access_strides, numel
from .steps import HostOp, Kernel, View

# Products up to this many multiply-adds run the generated loop. Measured (float32, 2 threads,
# whole compiled calls): the loop wins up to ~0.5M (the MLP's 128x256x10: 10-13 us against
# numpy's 14-20), they tie around 1M, BLAS wins clearly from 2M (128^3: 76 us against 99).
SMALL_MACS = 1 << 20
PARALLEL_MACS = 1 << 19  # loop products from this size split their row blocks among threads
VECTOR_BYTES = 32        # a vector of the tiles: AVX2's (16 registers of 32 bytes)
MR, NV = 6, 2            # a loop tile: rows x vectors of accumulators (12 registers)
MR_NARROW = 12           # rows of a tile one vector wide (12 accumulators)
_DTYPES = ("f32", "f64", "i64")


def lowers(e: Eqn) -> bool:
    """Whether ``e`` is a matmul this module turns into a kernel."""
    return e.prim is matmul and e.out.aval.dtype.short in _DTYPES


def dims(e: Eqn) -> tuple[int, int, int, int]:
    """``(batches, m, k, n)`` of matmul ``e``."""
    *batch, m, k = e.inputs[0].aval.shape
    return numel(batch), m, k, e.out.aval.shape[-1]


def uses_blas(e: Eqn) -> bool:
    """Whether matmul ``e`` calls BLAS (when one is found at load time)."""
    nb, m, k, n = dims(e)
    return e.out.aval.dtype.short != "i64" and min(m, k, n) > 0 and nb * m * k * n > SMALL_MACS


def blas_layout(rows: int, cols: int, s_row: int, s_col: int) -> tuple[bool, int] | None:
    """``(transposed, leading dimension)`` passing a ``rows x cols`` matrix read at element
    strides ``(s_row, s_col)`` to a row-major BLAS, or None when it has no such layout."""
    s_row = s_row if rows > 1 else max(cols, 1)  # the stride of a unit axis is never used
    s_col = s_col if cols > 1 else 1
    if s_col == 1 and s_row >= max(cols, 1):
        return False, s_row
    if s_row == 1 and s_col >= max(rows, 1) and cols > 1:
        return True, s_col
    return None


def _readable(e: Eqn, which: int, view: View) -> bool:
    r, c = view.shape[-2:]
    sr, sc = view.strides[-2:]
    if uses_blas(e):
        return blas_layout(r, c, sr, sc) is not None
    return which == 0 or c == 1 or sc == 1  # the loop reads rows of the right operand


def schedule_matmul(s: Any, e: Eqn) -> None:
    """Schedule matmul ``e`` in scheduler ``s`` (a ``schedule._Scheduler``): a host op for now,
    over operand views the kernel reads well (copies where needed)."""
    views = []
    for which, a in enumerate(e.inputs):
        view = s.as_view(a)
        views.append(view if _readable(e, which, view) else s.copy(a))
    s.host(e, views)


def lower_matmuls(s: Any, outputs: list) -> None:
    """Turn the matmul host ops of scheduler ``s`` into matmul kernels, with epilogues."""
    for pos, step in enumerate(list(s.steps)):
        if isinstance(step, HostOp) and lowers(step.eqn):
            e = step.eqn
            k = Kernel(tuple(e.out.aval.shape), eqns=[e], stores={e.out: step.output}, gemm=e)
            k.loads = dict(zip(e.inputs, step.inputs))
            s.steps[s.steps.index(step)] = k
            s.producer[step.output] = k
    for k in [k for k in s.steps if isinstance(k, Kernel) and k.gemm is not None]:
        _fuse_epilogue(s, k, outputs)


def _fuse_epilogue(s: Any, g: Kernel, outputs: list) -> None:
    c = g.gemm.out
    buf = g.stores[c]
    for k in [k for k in s.steps if isinstance(k, Kernel) and k is not g]:
        if _is_epilogue(s, g, k, buf):
            break
    else:
        return
    del k.loads[c]
    s.absorb(k, g, g.eqns + k.eqns)  # the epilogue runs after the product
    read = {o.buffer for o in outputs if isinstance(o, View)}
    for step in s.steps:
        views = step.loads.values() if isinstance(step, Kernel) else step.inputs
        read |= {w.buffer for w in views if isinstance(w, View)}
    if buf not in read and any(_fits(c, v) for v in g.stores if v is not c):
        del g.stores[c]  # written into an epilogue output instead (see product_home)
        s.producer.pop(buf, None)


def _is_epilogue(s: Any, g: Kernel, k: Kernel, buf) -> bool:
    """Whether kernel ``k`` can run as ``g``'s epilogue: elementwise over the product's shape,
    reading the product element for element, and nothing it reads depends on ``g``."""
    c = g.gemm.out
    if k.gemm is not None or k.red_axes is not None or k.row_values or k.domain != g.domain:
        return False
    if any(_operand(g.gemm, a) for a in k.loads):
        return False  # (a load keyed by an operand would be taken for the operand's view)
    reads = [(a, w) for a, w in k.loads.items() if w.buffer is buf]
    if not reads or any(a is not c or not w.is_whole for a, w in reads):
        return False
    others = [w for a, w in k.loads.items() if w.buffer is not buf]
    return not s.reaches(others, g)


def _fits(c: Var, v: Var) -> bool:
    return v.aval.shape == c.aval.shape and v.aval.dtype is c.aval.dtype


def product_home(k: Kernel) -> tuple[Var, Any]:
    """The value whose buffer receives matmul kernel ``k``'s product: the product's own, else
    the first epilogue output of its shape and dtype (the epilogue then overwrites it)."""
    c = k.gemm.out
    if c in k.stores:
        return c, k.stores[c]
    v = next(e.out for e in k.eqns[1:] if e.out in k.stores and _fits(c, e.out))
    return v, k.stores[v]


def _operand(e: Eqn, a: Any) -> bool:
    return any(a is x for x in e.inputs)


def _offset(var: str, shape, strides) -> str:
    """C expression: the element offset of flat (row-major) index ``var`` over ``shape``."""
    terms = []
    for a, (n, st) in enumerate(zip(shape, strides)):
        if n == 1 or st == 0:
            continue
        inner = numel(shape[a + 1:])
        t = var if inner == 1 else f"{var} / {inner}"
        if a > 0 and any(x != 1 for x in shape[:a]):
            t = f"({t}) % {n}" if inner != 1 else f"{t} % {n}"
        terms.append(f"({t}) * {st}" if st != 1 else f"({t})")
    return " + ".join(terms) if terms else "0"


def lanes(e: Eqn) -> int:
    """Elements of matmul ``e``'s dtype in one vector of the tiles."""
    return VECTOR_BYTES // e.out.aval.dtype.itemsize


def tile(n: int, width: int) -> tuple[int, int]:
    """``(rows, vectors)`` of the loop tile for products ``n`` columns wide, in vectors of
    ``width`` elements: 12 x 1 when one vector holds a row, else 6 x 2. Both keep 12
    accumulators, the row's vectors of ``b`` and one broadcast within 16 registers."""
    return (MR_NARROW, 1) if n <= width else (MR, NV)


def swapped(e: Eqn, a: View, b: View) -> bool:
    """Whether the loop computes matmul ``e`` = ``a @ b`` as ``(b^T a^T)^T``: when ``a``'s
    columns are contiguous (the transposed tile then reads rows of ``a^T`` as vectors) and the
    transpose wastes fewer vector lanes in partial vectors (``h.T @ g``, ``g`` 10 wide)."""
    _, m, _, n = dims(e)
    w = lanes(e)
    a_cols = m == 1 or a.strides[-2] == 1
    b_rows = n == 1 or b.strides[-1] == 1
    return a_cols and (not b_rows or n * -(-m // w) < m * -(-n // w))


def _loop(e: Eqn, av: View, bv: View, kt: Any) -> dict:
    """The tile loop's operands, sizes and strides: ``c[TM, TN] = ta[TM, K] @ tb[K, TN]``,
    ``c`` written at strides ``(tsc0, tsc1)`` (the transpose when ``swap``)."""
    _, m, kk, n = dims(e)
    batch = e.out.aval.shape[:-2]
    a = {"p": kt.p(av.buffer), "batch": _offset("b", batch, av.strides[:-2]),
         "s0": av.strides[-2], "s1": av.strides[-1]}
    b = {"p": kt.p(bv.buffer), "batch": _offset("b", batch, bv.strides[:-2]),
         "s0": bv.strides[-2], "s1": bv.strides[-1]}
    swap = swapped(e, av, bv)
    if swap:  # ta = b^T, tb = a^T: transposing swaps the strides
        a, b = {**b, "s0": b["s1"], "s1": b["s0"]}, {**a, "s0": a["s1"], "s1": a["s0"]}
        m, n = n, m
    rows, vecs = tile(n, lanes(e))
    return {"swap": swap, "TM": m, "TN": n, "MR": rows, "NT": vecs * lanes(e), "lanes": lanes(e),
            "row_blocks": -(-m // rows), "ta": a["p"], "ta_batch": a["batch"], "tsa0": a["s0"],
            "tsa1": a["s1"], "tb": b["p"], "tb_batch": b["batch"], "tsb0": b["s0"],
            "tsb1": b["s1"], "tsc0": 1 if swap else n, "tsc1": m if swap else 1}


def body(kt: Any) -> dict:
    """The template context of matmul kernel ``kt.k`` (a ``render._KernelText``)."""
    k, e = kt.k, kt.k.gemm
    nb, m, kk, n = dims(e)
    av, bv = k.loads[e.inputs[0]], k.loads[e.inputs[1]]
    home_var, home = product_home(k)
    g = {"ctype": clower.ctype(e.out.aval.dtype), "M": m, "N": n, "K": kk, "NB": nb,
         "c": kt.p(home), "blas": None, "product": kt.v(e.out), **_loop(e, av, bv, kt)}
    g["units"] = nb * g["row_blocks"]
    if uses_blas(e):
        ta, lda = blas_layout(m, kk, av.strides[-2], av.strides[-1])
        tb, ldb = blas_layout(kk, n, bv.strides[-2], bv.strides[-1])
        g["blas"] = {"ta": int(ta), "lda": lda, "tb": int(tb), "ldb": ldb,
                     "fn": "sgemm" if g["ctype"] == "float" else "dgemm",
                     "a": kt.p(av.buffer), "b": kt.p(bv.buffer),
                     "a_batch": _offset("b", e.out.aval.shape[:-2], av.strides[:-2]),
                     "b_batch": _offset("b", e.out.aval.shape[:-2], bv.strides[:-2]),
                     "sa0": av.strides[-2], "sa1": av.strides[-1],
                     "sb0": bv.strides[-2], "sb1": bv.strides[-1]}
    stmts = _epilogue(kt, home) if len(k.eqns) > 1 else []
    parallel = g["blas"] is None and nb * m * kk * n >= PARALLEL_MACS and g["units"] > 1
    loads = [w for a, w in k.loads.items() if not _operand(e, a)]
    return {"template": "matmul.c.jinja", "kind": "matmul", "gemm": g, "outer": [], "inner": [],
            "body": stmts, "accs": [], "finals": [], "parallel": parallel,
            "simd_reduction": None, "params_in": [av.buffer, bv.buffer] + [w.buffer for w in loads],
            "params_out": list(k.stores.values())}


def _epilogue(kt: Any, home) -> list[dict]:
    """Statements of the epilogue for element (row ``r``, column ``j``) of the product."""
    k, e = kt.k, kt.k.gemm
    dom = k.domain
    ctype = clower.ctype(e.out.aval.dtype)
    stmts = [{"kind": "let", "ctype": ctype, "name": kt.v(e.out), "expr": f"{kt.p(home)}[r * {dom[-1]} + j]"}]
    for a, w in sorted(k.loads.items(), key=lambda aw: kt.key(aw[0])):
        if _operand(e, a):
            continue
        st = access_strides(w.shape, w.strides, dom)
        col = "" if st[-1] == 0 else (" + j" if st[-1] == 1 else f" + j * {st[-1]}")
        stmts.append(kt.load(a, w, f"{_offset('r', dom[:-1], st[:-1])}{col}"))
    stmts += [kt.let(x) for x in k.eqns[1:]]
    for v, b in sorted(k.stores.items(), key=lambda vb: kt.num[vb[0]]):
        if v is not e.out:
            stmts.append({"kind": "store", "ptr": kt.p(b), "index": f"r * {dom[-1]} + j",
                          "value": kt.v(v)})
    return stmts


def module_context(kernels: list[dict]) -> dict:
    """What module.c.jinja needs for the matmul kernels among ``kernels``: the C types (and
    vector lanes) of their tile functions, the largest tile, and whether any calls BLAS (the
    module then exports gg_set_blas)."""
    gs = [k["gemm"] for k in kernels if k["gemm"]]
    return {"gemm_types": sorted({(g["ctype"], g["lanes"]) for g in gs}),
            "gemm_blas": any(g["blas"] for g in gs), "gemm_mr": max(MR, MR_NARROW), "gemm_nv": NV}


__all__ = ["SMALL_MACS", "PARALLEL_MACS", "MR", "NV", "lowers", "lanes", "tile", "swapped", "uses_blas", "blas_layout",
           "schedule_matmul", "lower_matmuls", "product_home", "body", "module_context"]
