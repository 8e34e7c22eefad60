"""Elementwise primitives: unary math, binary arithmetic, comparisons, select, convert.

Each primitive is one ``defprim`` call: numpy implementation, shape rule, VJP
rule (written with primitives, so it is itself differentiable), and what it saves.
"""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import bool_, dtype
from .erf import erf_numpy
from .registry import Aval, defprim


# ---------------------------------------------------------------- C lowering facets
# An elementwise primitive's ``c_lowering`` maps an operand dtype ("f32", "f64", "i32",
# "i64", "bool"), "int" (either integer dtype) or "expr" (any dtype) to a C expression
# over its operands {0}, {1}, {2} (always plain C names) and {t}, the result's C type.
# A dtype with no entry has no C lowering (gradgen.codegen runs the equation on the host).
# Integer arithmetic goes through the unsigned type so overflow wraps as in numpy.


def _libm(fn: str, f32: str | None = None) -> dict:
    """libm's ``fn`` for float64; for float32 ``fn + "f"``, or ``f32``: gradgen's own vectorized
    function (templates/vecmath.c.jinja)."""
    return {"f64": f"{fn}({{0}})", "f32": f"{f32 or fn + 'f'}({{0}})"}


def _wrapping(op: str) -> dict:
    return {"f32": f"({{0}} {op} {{1}})", "f64": f"({{0}} {op} {{1}})",
            "int": f"(({{t}})((u{{t}}){{0}} {op} (u{{t}}){{1}}))"}


def zeros_like(x):
    """A zero tensor of x's type, built from primitives (a broadcast constant)."""
    from .shape import full
    return full(0.0, x.shape, x.dtype)

# ---------------------------------------------------------------- shape rules


def _common_shape(avals: tuple[Aval, ...], name: str) -> tuple[int, ...]:
    shape: tuple[int, ...] | None = None
    for a in avals:
        if a.ndim == 0:
            continue
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise TypeError(f"{name}: operand shapes differ: "
                            + ", ".join(str(list(x.shape)) for x in avals)
                            + " (elementwise operands must have one shape or be rank-0 constants)")
    return shape if shape is not None else ()


def _same_dtype(avals: tuple[Aval, ...], name: str) -> dtype:
    d = avals[0].dtype
    for a in avals[1:]:
        if a.dtype is not d:
            raise TypeError(f"{name}: operand dtypes differ: " + ", ".join(a.dtype.name for a in avals))
    return d


def _float_unary(name: str):
    def rule(x: Aval) -> Aval:
        if not x.dtype.is_floating_point:
            raise TypeError(f"{name}: expected a floating dtype, got {x.dtype.name}")
        return x
    return rule


def _binary(name: str, out: dtype | None = None):
    def rule(*avals: Aval) -> Aval:
        d = _same_dtype(avals, name)
        return Aval(_common_shape(avals, name), out if out is not None else d)
    return rule


def _any_unary(x: Aval) -> Aval:
    return x


# ---------------------------------------------------------------- unary math

neg = defprim("neg", np.negative, _any_unary, lambda g, ins, out, needs: (neg(g),), "NegBackward0")
neg.c_lowering = {"f32": "(-{0})", "f64": "(-{0})", "int": "(({t})(0u - (u{t}){0}))"}
exp = defprim("exp", np.exp, _float_unary("exp"),
              lambda g, ins, out, needs: (mul(g, out),), "ExpBackward0", save_output=True)
exp.c_lowering = _libm("exp", "gg_expf")
log = defprim("log", np.log, _float_unary("log"),
              lambda g, ins, out, needs: (div(g, ins[0]),), "LogBackward0", save_inputs=True)
log.c_lowering = _libm("log")
log1p = defprim("log1p", np.log1p, _float_unary("log1p"),
                lambda g, ins, out, needs: (div(g, add(ins[0], 1.0)),), "Log1PBackward0",
                save_inputs=True)
log1p.c_lowering = _libm("log1p")
expm1 = defprim("expm1", np.expm1, _float_unary("expm1"),
                lambda g, ins, out, needs: (mul(g, add(out, 1.0)),), "Expm1Backward0",
                save_output=True)
expm1.c_lowering = _libm("expm1")
sqrt = defprim("sqrt", np.sqrt, _float_unary("sqrt"),
               lambda g, ins, out, needs: (div(g, mul(out, 2.0)),), "SqrtBackward0",
               save_output=True)
sqrt.c_lowering = _libm("sqrt")
sin = defprim("sin", np.sin, _float_unary("sin"),
              lambda g, ins, out, needs: (mul(g, cos(ins[0])),), "SinBackward0", save_inputs=True)
sin.c_lowering = _libm("sin")
cos = defprim("cos", np.cos, _float_unary("cos"),
              lambda g, ins, out, needs: (mul(g, neg(sin(ins[0]))),), "CosBackward0",
              save_inputs=True)
cos.c_lowering = _libm("cos")
tanh = defprim("tanh", np.tanh, _float_unary("tanh"),
               lambda g, ins, out, needs: (mul(g, sub(1.0, mul(out, out))),), "TanhBackward0",
               save_output=True)
tanh.c_lowering = _libm("tanh", "gg_tanhf")


def _logistic_impl(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-x)) overflows harmlessly to 0 for very negative x.
    with np.errstate(over="ignore"):
        return np.reciprocal(np.exp(np.negative(x)) + x.dtype.type(1))


logistic = defprim("logistic", _logistic_impl, _float_unary("logistic"),
                   lambda g, ins, out, needs: (mul(g, mul(out, sub(1.0, out))),),
                   "SigmoidBackward0", save_output=True)
logistic.c_lowering = {"f32": "(1.0f / (gg_expf(-{0}) + 1.0f))",
                        "f64": "(1.0 / (exp(-{0}) + 1.0))"}
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
erf = defprim("erf", erf_numpy, _float_unary("erf"),
              lambda g, ins, out, needs: (
                  mul(g, mul(exp(neg(mul(ins[0], ins[0]))), _TWO_OVER_SQRT_PI)),),
              "ErfBackward0", save_inputs=True)
erf.c_lowering = _libm("erf")
abs_ = defprim("abs", np.abs, _any_unary,
               lambda g, ins, out, needs: (mul(g, sign(ins[0])),), "AbsBackward0",
               save_inputs=True)
abs_.c_lowering = {"f32": "fabsf({0})", "f64": "fabs({0})", "int": "({0} < 0 ? ({t})(0u - (u{t}){0}) : {0})"}


def _sign_impl(x: np.ndarray) -> np.ndarray:
    """numpy's sign, but 0 at NaN: PyTorch's sign(nan) is 0 (numpy's is nan); a bool is its own
    sign (numpy has none)."""
    if x.dtype == np.bool_:
        return x.copy()
    out = np.sign(x)
    if out.dtype.kind == "f":
        out = np.where(out != out, out.dtype.type(0), out)
    return out


sign = defprim("sign", _sign_impl, _any_unary,
               lambda g, ins, out, needs: (zeros_like(g),), "SignBackward0")
# sign(-0.0) is 0.0 (as numpy's, PyTorch's), sign(nan) is 0.0 (as PyTorch's, see _sign_impl).
sign.c_lowering = {"f32": "({0} > 0.0f ? 1.0f : ({0} < 0.0f ? -1.0f : 0.0f))",
                   "f64": "({0} > 0.0 ? 1.0 : ({0} < 0.0 ? -1.0 : 0.0))",
                   "int": "(({t})(({0} > 0) - ({0} < 0)))"}

# ---------------------------------------------------------------- binary arithmetic

add = defprim("add", np.add, _binary("add"), lambda g, ins, out, needs: (g, g), "AddBackward0")
add.c_lowering = _wrapping("+")
sub = defprim("sub", np.subtract, _binary("sub"),
              lambda g, ins, out, needs: (g, neg(g) if needs[1] else None), "SubBackward0")
sub.c_lowering = _wrapping("-")
mul = defprim("mul", np.multiply, _binary("mul"),
              lambda g, ins, out, needs: (mul(g, ins[1]) if needs[0] else None,
                                          mul(g, ins[0]) if needs[1] else None),
              "MulBackward0", save_inputs=True, saved_for=lambda n: (n[1], n[0]))
mul.c_lowering = _wrapping("*")
div = defprim("div", np.divide, _binary("div"),
              lambda g, ins, out, needs: (
                  div(g, ins[1]) if needs[0] else None,
                  # -g * ((x / y) / y), as PyTorch: no y * y to overflow or underflow
                  neg(mul(g, div(div(ins[0], ins[1]), ins[1]))) if needs[1] else None),
              "DivBackward0", save_inputs=True, saved_for=lambda n: (n[1], True))
div.c_lowering = {"f32": "({0} / {1})", "f64": "({0} / {1})"}


def _pow_vjp(g, ins, out, needs):
    x, y = ins
    gx = gy = None
    if needs[0]:
        # d/dx x**y = y * x**(y-1), defined as 0 where y == 0 (PyTorch's convention).
        gx = mul(g, select(eq(y, 0.0), 0.0, mul(y, pow(x, sub(y, 1.0)))))
    if needs[1]:
        # d/dy x**y = x**y * log(x), defined as 0 where x == 0 and y >= 0.
        gy = mul(g, select(logical_and(eq(x, 0.0), ge(y, 0.0)), 0.0, mul(pow(x, y), log(x))))
    return gx, gy


def _rsqrt(x: np.ndarray) -> np.ndarray:
    return np.reciprocal(np.sqrt(x))


# PyTorch's pow with a Python-number exponent computes these exponents with their own
# functions, whose special values differ from C's pow: sqrt(-0.0) is -0.0 and sqrt(-inf) nan
# (pow: +0.0, +inf); 1/sqrt(-0.0) is -inf and 1/sqrt(-inf) nan (pow: +inf, +0.0). The
# derivative of x**0.5, 0.5 * x**-0.5, is -inf at -0.0 in PyTorch for that reason.
_SCALAR_EXPONENTS = {0.5: np.sqrt, -0.5: _rsqrt}


def _pow_impl(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x ** y with PyTorch's special values for a Python-number exponent of 0.5 or -0.5
    (``Tensor.pow(Scalar)``: sqrt, 1/sqrt); any other exponent is C's pow.

    A constant exponent is rank-0 here, or broadcast from rank 0 (every stride 0) once the
    front end has expanded it; the compiler folds such a broadcast of a literal back to the
    literal, which the C lowering's "literal" entries read, so both count as one number.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind == "b":  # (x ** True is x, x ** False is True, in bool as in PyTorch)
        return x | ~y.astype(bool)
    if x.dtype.kind in "iu" and y.dtype.kind in "iu" and (y < 0).any():
        # PyTorch's integer pow: a negative exponent gives 1 for a base of 1, +-1 for -1
        # (by the exponent's parity), else 0 (numpy refuses it).
        small = np.where(x == -1, np.where(y % 2 == 0, 1, -1), (x == 1).astype(x.dtype))
        return np.where(y < 0, small.astype(x.dtype), np.power(x, np.maximum(y, 0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        if x.dtype.kind == "f" and y.size and not any(y.strides):
            fn = _SCALAR_EXPONENTS.get(float(y.flat[0]))
            if fn is not None:
                return fn(x)
        return np.power(x, y)


pow = defprim("pow", _pow_impl, _binary("pow"), _pow_vjp, "PowBackward0", save_inputs=True)
# A literal (rank-0) exponent of 0.5 or -0.5 lowers to sqrt or 1/sqrt, as _pow_impl computes it
# ("literal": exponent value -> templates); any other exponent to C's pow.
pow.c_lowering = {"f32": "powf({0}, {1})", "f64": "pow({0}, {1})",
                  "literal": {0.5: {"f32": "sqrtf({0})", "f64": "sqrt({0})"},
                              -0.5: {"f32": "(1.0f / sqrtf({0}))", "f64": "(1.0 / sqrt({0}))"}}}


def _minmax_vjp(strictly_loses):
    # PyTorch: ties split the gradient in half; the strictly smaller (for
    # maximum) operand gets zero; a NaN compares false, so both get the gradient.
    def rule(g, ins, out, needs):
        x, y = ins
        half = select(eq(x, y), mul(g, 0.5), g)
        gx = select(strictly_loses(x, y), 0.0, half) if needs[0] else None
        gy = select(strictly_loses(y, x), 0.0, half) if needs[1] else None
        return gx, gy
    return rule


maximum = defprim("max", np.maximum, _binary("max"), _minmax_vjp(lambda a, b: lt(a, b)),
                  "MaximumBackward0", save_inputs=True)
# numpy propagates a NaN from either side (C fmax would not).
maximum.c_lowering = {"expr": "(({0} > {1} || {0} != {0}) ? {0} : {1})"}
minimum = defprim("min", np.minimum, _binary("min"), _minmax_vjp(lambda a, b: gt(a, b)),
                  "MinimumBackward0", save_inputs=True)
minimum.c_lowering = {"expr": "(({0} < {1} || {0} != {0}) ? {0} : {1})"}

# ---------------------------------------------------------------- comparisons and logic


def _cmp(name: str, fn, c_op: str) -> object:
    prim = defprim(name, fn, _binary(name, bool_), None, "")
    prim.c_lowering = {"expr": f"({{0}} {c_op} {{1}})"}
    return prim


lt = _cmp("lt", np.less, "<")
le = _cmp("le", np.less_equal, "<=")
gt = _cmp("gt", np.greater, ">")
ge = _cmp("ge", np.greater_equal, ">=")
eq = _cmp("eq", np.equal, "==")
ne = _cmp("ne", np.not_equal, "!=")
COMPARISONS = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})  # their names
logical_and = _cmp("and", np.logical_and, "&&")
logical_or = _cmp("or", np.logical_or, "||")
logical_not = defprim("not", np.logical_not, _any_unary, None, "")
logical_not.c_lowering = {"expr": "(!{0})"}


def _select_rule(c: Aval, a: Aval, b: Aval) -> Aval:
    if c.dtype is not bool_:
        raise TypeError(f"select: condition must be bool, got {c.dtype.name}")
    d = _same_dtype((a, b), "select")
    return Aval(_common_shape((c, a, b), "select"), d)


select = defprim("select", np.where, _select_rule,
                 lambda g, ins, out, needs: (None,
                                             select(ins[0], g, 0.0) if needs[1] else None,
                                             select(ins[0], 0.0, g) if needs[2] else None),
                 "WhereBackward0", save_inputs=True, saved_for=lambda n: (True, False, False))
select.c_lowering = {"expr": "gg_select_{t}({0}, {1}, {2})"}  # see templates/module.c.jinja

# ---------------------------------------------------------------- dtype and gradient flow


def _convert_impl(x: np.ndarray, dtype: dtype) -> np.ndarray:
    # Memory order kept (clone's preserve_format), except for broadcast (stride-0) arrays,
    # whose copy is C-contiguous as PyTorch's clone of an expanded tensor is.
    return x.astype(dtype.np, order="C" if 0 in x.strides else "K")


def _convert_vjp(g, ins, out, needs, dtype):
    src = ins[0].dtype
    return (convert(g, dtype=src) if src.is_floating_point else None,)


convert = defprim("convert", _convert_impl, lambda x, dtype: Aval(x.shape, dtype), _convert_vjp,
                  "ToCopyBackward0")
convert.c_lowering = {"expr": "(({t}){0})"}
stop_gradient = defprim("stop_gradient", lambda x: x, _any_unary, None, "", is_view=True,
                        doc="Identity whose output never carries a gradient (detach).")
stop_gradient.c_lowering = {"expr": "{0}"}
