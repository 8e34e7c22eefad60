"""Per-element C expressions from the registry's ``c_lowering`` facets.

Everything here returns C *expressions* (text the templates place inside their
own statements): types, exact constants, an equation's value over its operands'
C names, reduction combiners. Operand names are always generated identifiers
(``v12``), and constants are printed from their values, so no user string can
reach the C text.
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import numpy as np

from ..dtypes import dtype
from ..ir.core import Eqn, Literal

CTYPES = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t", "bool": "bool"}

# libm functions glibc's vector math library (libmvec) provides variants of; the module
# declares them `omp declare simd` so gcc vectorizes calls without -ffast-math. Others
# (sqrt, fabs: single instructions anyway) are left alone: declaring a function libmvec
# lacks would make gcc call a vector symbol that does not exist.
SIMD_LIBM = {f"{name}{suffix}": ("float" if suffix else "double", nargs)
             for name, nargs in (("exp", 1), ("log", 1), ("log1p", 1), ("expm1", 1), ("sin", 1),
                                 ("cos", 1), ("tanh", 1), ("erf", 1), ("pow", 2))
             for suffix in ("", "f")}
# gradgen's own vectorizable float32 functions (templates/vecmath.c.jinja).
VECMATH = ("gg_expf", "gg_tanhf")
# A function call in a C expression: libm's (expf) or vecmath's (gg_expf); not gg_select_*.
_CALL = re.compile(r"\b((?:gg_)?[a-z][a-z0-9]*)\(")
_IDENTITIES = {
    "lowest": {"f32": "-INFINITY", "f64": "-INFINITY", "i32": "INT32_MIN", "i64": "INT64_MIN",
               "bool": "0"},
    "highest": {"f32": "INFINITY", "f64": "INFINITY", "i32": "INT32_MAX", "i64": "INT64_MAX",
                "bool": "1"},
}


def ctype(d: dtype) -> str:
    """The C type of dtype ``d``."""
    return CTYPES[d.short]


def buffer_ctype(d: dtype) -> str:
    """The C element type of a buffer of dtype ``d``: booleans are read and written as uint8_t
    (numpy stores them as bytes 0/1), because gcc does not vectorize loops that load ``_Bool``
    from memory; values in C scalars stay ``bool``."""
    return "uint8_t" if d.short == "bool" else CTYPES[d.short]


def constant(value: Any, d: dtype) -> str:
    """``value`` as an exact C constant of dtype ``d`` (hex floats; INFINITY/NAN)."""
    v = np.asarray(value).reshape(())[()]
    if d.is_floating_point:
        x = float(v)
        suffix = "f" if d.short == "f32" else ""
        if math.isnan(x):
            return "NAN" if suffix else "((double)NAN)"
        if math.isinf(x):
            text = "INFINITY" if x > 0 else "-INFINITY"
            return text if suffix else f"((double){text})"
        return f"{x.hex()}{suffix}"  # float32 values are exact doubles: the hex is exact
    if d.short == "bool":
        return "1" if bool(v) else "0"
    n = int(v)
    if d.short == "i64":
        # -2**63 has no literal: its magnitude does not fit the signed type.
        return "INT64_MIN" if n == -2**63 else f"INT64_C({n})"
    return "INT32_MIN" if n == -2**31 else f"INT32_C({n})"


def elementwise_template(e: Eqn) -> str | None:
    """The facet's expression template for this equation's operand dtype, or None."""
    low = e.prim.c_lowering
    if not isinstance(low, dict) or "view" in low or "reduce" in low:
        return None
    d = e.inputs[0].aval.dtype.short if e.inputs else e.out.aval.dtype.short
    literal = low.get("literal")  # templates for a literal last operand of a given value
    if literal and isinstance(e.inputs[-1], Literal) and e.inputs[-1].aval.ndim == 0:
        special = literal.get(float(e.inputs[-1].value))
        if special is not None and d in special:
            return special[d]
    for key in (d, "int" if d in ("i32", "i64") else None, "expr"):
        if key in low:
            return low[key]
    return None


def elementwise(e: Eqn, operands: Sequence[str]) -> str:
    """The C expression of elementwise equation ``e`` over operand expressions."""
    template = elementwise_template(e)
    if template is None:
        raise ValueError(f"{e.prim.name} has no C lowering for {e.inputs[0].aval.dtype.name}")
    return template.format(*operands, t=ctype(e.out.aval.dtype))


def is_reduction(e: Eqn) -> bool:
    """Whether ``e`` lowers to the reduction template (for its dtype)."""
    low = e.prim.c_lowering
    return isinstance(low, dict) and "reduce" in low and e.inputs[0].aval.dtype.short in CTYPES


def accumulator_type(e: Eqn) -> str:
    """The C type a reduction accumulates in (float32 sums and products: double; integer sums
    and products: the unsigned type, so overflow wraps as numpy's does instead of being
    undefined behaviour in C)."""
    d = e.out.aval.dtype
    low = e.prim.c_lowering
    if d.short == "f32" and low.get("f32_acc"):
        return low["f32_acc"]
    if d.short in ("i32", "i64") and low.get("int_acc") == "unsigned":
        return "u" + ctype(d)
    return ctype(d)


def reduction_identity(e: Eqn) -> str:
    """The accumulator's initial value."""
    ident = e.prim.c_lowering["identity"]
    return _IDENTITIES[ident][e.out.aval.dtype.short] if ident in _IDENTITIES else ident


def reduction_combine(e: Eqn, acc: str, x: str) -> str:
    """The combiner expression updating accumulator ``acc`` with element ``x``."""
    acc_t = accumulator_type(e)
    if acc_t != ctype(e.inputs[0].aval.dtype):
        x = f"(({acc_t}){x})"
    return e.prim.c_lowering["combine"].format(acc=acc, x=x)


def accumulators(e: Eqn, name: str) -> list[dict]:
    """The accumulators of reduction ``e``, the first named ``name``: ``{name, ctype, init, op,
    merge}`` each -- ``op`` is the ``omp simd reduction`` operator (None: not vectorizable),
    ``merge`` combines two partial accumulators (``{acc}``, ``{x}``). A float max/min also
    keeps a NaN flag ``<name>n`` (its facet's ``"nan": "any"``): NaN never enters the
    compare/select accumulator, so that one vectorizes, and the flag makes the result NaN."""
    low = e.prim.c_lowering
    accs = [{"name": name, "ctype": accumulator_type(e), "init": reduction_identity(e),
             "op": low.get("simd"), "merge": low["combine"]}]
    if has_nan_flag(e):
        flag_t = "int32_t" if e.inputs[0].aval.dtype.short == "f32" else "int64_t"
        accs.append({"name": name + "n", "ctype": flag_t, "init": "0", "op": "|",
                     "merge": "({acc} | {x})"})
    return accs


def has_nan_flag(e: Eqn) -> bool:
    """Whether reduction ``e`` tracks NaN in a separate flag accumulator."""
    return e.prim.c_lowering.get("nan") == "any" and e.inputs[0].aval.dtype.is_floating_point


def reduction_updates(e: Eqn, name: str, x: str) -> list[dict]:
    """Statements (``set``) folding element ``x`` into the accumulators of :func:`accumulators`
    (``name`` may be an lvalue such as ``acc0[j]``; the flag is then ``acc0n[j]``)."""
    out = [{"kind": "set", "name": name, "expr": reduction_combine(e, name, x)}]
    if has_nan_flag(e):
        flag = _flag(name)
        out.append({"kind": "set", "name": flag, "expr": f"({flag} | ({x} != {x}))"})
    return out


def reduction_result(e: Eqn, name: str) -> str:
    """The reduction's value from its accumulators (before the cast to the output type)."""
    return f"({_flag(name)} ? NAN : {name})" if has_nan_flag(e) else name


def _flag(name: str) -> str:
    base, sep, rest = name.partition("[")
    return f"{base}n{sep}{rest}"


def calls(expression: str) -> int:
    """How many functions (libm: exp, log, tanh, ...; vecmath) a C expression calls."""
    return len(_CALL.findall(expression))


def vecmath(expressions: Sequence[str]) -> list[str]:
    """The functions of templates/vecmath.c.jinja the expressions call."""
    return sorted({m for text in expressions for m in _CALL.findall(text) if m in VECMATH})


def simd_libm(expressions: Sequence[str]) -> list[dict]:
    """Declarations ``{name, ret, args}`` of the vectorizable libm functions called."""
    used = sorted({m for text in expressions for m in _CALL.findall(text) if m in SIMD_LIBM})
    return [{"name": n, "ret": SIMD_LIBM[n][0], "args": [SIMD_LIBM[n][0]] * SIMD_LIBM[n][1]}
            for n in used]
