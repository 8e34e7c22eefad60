"""Float32 sums in float lanes and double: fast without losing numpy's accuracy.

A float32 ``reduce_sum`` accumulates in double (``clower.accumulator_type``). Converting
every element to double halves the vector width, and one accumulator is one chain of
dependent additions (3-4 cycles each) with a horizontal sum per block; that made layer
norm's row passes latency-bound. So along one loop a sum runs in *lanes*
(:func:`lane_loop`, the ``lane_sums`` macro of ``kernel_macros.c.jinja``):

- the loop runs in blocks of ``SUM_BLOCK`` elements; per block, ``LANES`` float partial
  sums, lane ``l`` adding the elements ``l, l + LANES, ...`` of the block in order
  (``SUM_BLOCK / LANES`` = 8 of them; numpy's pairwise sum adds 8 accumulators of up to
  16 elements per block of at most 128);
- at the end of each block, lane ``l`` is added into double lane ``l`` (vector
  conversions, no horizontal sum per block);
- elements past the last whole group of ``LANES`` go straight into the double lanes
  (element ``main + l`` into lane ``l``), and at the end the double lanes combine pairwise.

Above the block, numpy goes on adding pairwise in float; here everything is double, and
the float part is shallower than numpy's: the error is at most numpy's (tests/
test_sum_accuracy.py measures it against float64). The order of every addition is fixed by
the shape alone: the result does not depend on the thread count nor on the vector width gcc
picks. 16 lanes are two AVX2 vectors: two independent chains of additions per sum.

Column sums (``reduction.c.jinja``'s columns form: each output adds one element per row)
add ``ROW_BLOCK`` rows in a float vector of partial sums, then that into the double one.
(numpy sums columns in float32 one row after the other.)
"""
from __future__ import annotations

from ..ir.core import Eqn
from . import clower

LANES = 16       # float partial sums per block (numpy's pairwise sum keeps 8)
SUM_BLOCK = 128  # elements per block: 8 float additions per lane (numpy: up to 16)
ROW_BLOCK = 16   # rows a column sum adds in float before adding into double


def floats_in_double(e: Eqn) -> bool:
    """Whether reduction ``e`` is a float sum accumulating in a wider (double) type."""
    return e.prim.name == "reduce_sum" and e.inputs[0].aval.dtype.is_floating_point and \
        clower.accumulator_type(e) != clower.ctype(e.inputs[0].aval.dtype)


def lane_sum(e: Eqn, name: str, var: str) -> dict | None:
    """The lanes of float sum ``e`` whose double accumulator is ``name``, along loop ``var``
    (None when ``e`` is no float sum in double): names, types, the pairwise combination of the
    double lanes, and the lvalues :func:`update` and :func:`tail_update` add into."""
    if not floats_in_double(e):
        return None
    lanes, block = name + "d", name + "b"
    return {"name": name, "lanes": lanes, "block": block, "acc_ctype": clower.accumulator_type(e),
            "ctype": clower.ctype(e.inputs[0].aval.dtype), "combine": _pairwise(lanes, 0, LANES),
            "lane": f"{block}[{var}l]", "tail": f"{lanes}[{var} - {var}m]"}


def update(s: dict, x: str) -> dict:
    """The statement adding element ``x`` into its float lane of sum ``s`` (:func:`lane_sum`)."""
    return {"kind": "set", "name": s["lane"], "expr": f"({s['lane']} + {x})"}


def tail_update(s: dict, x: str) -> dict:
    """The statement adding element ``x`` (past the last whole group of lanes) into its
    double lane of sum ``s``."""
    return {"kind": "set", "name": s["tail"], "expr": f"({s['tail']} + (({s['acc_ctype']}){x}))"}


def _pairwise(array: str, lo: int, n: int) -> str:
    """``array[lo] + ... + array[lo + n - 1]`` added pairwise (n a power of two)."""
    if n == 1:
        return f"{array}[{lo}]"
    return f"({_pairwise(array, lo, n // 2)} + {_pairwise(array, lo + n // 2, n // 2)})"


def lane_loop(var: str, start: str, stop: str, sums: list[dict], body: list, tail: list,
              others: list | None, vectorize: bool) -> dict:
    """The context of the ``lane_sums`` macro: loop ``var`` over ``[start, stop)`` (C
    expressions) holding the sums ``sums`` (:func:`lane_sum`); ``body`` / ``tail``: the
    statements per element in the lanes and past the last whole group; ``others``: the
    ``omp simd reduction`` clauses of the loop's other accumulators; ``vectorize``: whether
    the lanes loop may carry ``#pragma omp simd`` (not when another accumulator cannot). The
    tail carries it too when its length is a constant; a tail of run-time length (under one
    group, at the end of a chunk) stays a plain loop: vectorizing it costs gcc about a fifth
    of a chunked kernel's compile time and saves nothing at run time."""
    whole = start == "0" and stop.isdigit()
    main = str(int(stop) - int(stop) % LANES) if whole else \
        f"{stop} - ({stop} - {start}) % {LANES}"
    return {"var": var, "start": start, "stop": stop, "main": main, "lanes": LANES,
            "block": SUM_BLOCK, "sums": sums, "body": body, "tail": tail,
            "has_tail": not whole or int(main) < int(stop), "others": others or [],
            "vectorize": vectorize, "vectorize_tail": vectorize and whole}


__all__ = ["LANES", "SUM_BLOCK", "ROW_BLOCK", "floats_in_double", "lane_sum", "update",
           "tail_update", "lane_loop"]
