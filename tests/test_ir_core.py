"""The IR core: builder, printer (golden text), parser round trip, checker, interpreter.

The interpreter is checked against eager execution for every registry primitive
(the sweep iterates ``gradgen.ops.PRIMITIVES``, so a new primitive without a
sample here fails ``test_every_primitive_has_a_sample``).
"""
from __future__ import annotations

import numpy as np
import pytest

import gradgen
from gradgen.dtypes import bool_, float32, float64, int32, int64
from gradgen.ir import Builder, IRError, Literal, Var, building, check, constant_table, parse, run
from gradgen.ops import PRIMITIVES
from gradgen.ops import elementwise as E
from gradgen.ops.shape import full
from gradgen.tensor import Tensor

RNG = np.random.default_rng(0)


def _f(*shape, dt=np.float64, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, shape).astype(dt)


def _pos(*shape, dt=np.float64):
    return _f(*shape, dt=dt, lo=0.5, hi=2.0)


def _b(*shape):
    return RNG.random(shape) < 0.5


def _i(*shape, lo=-3, hi=4):
    return RNG.integers(lo, hi, shape).astype(np.int64)


_UNARY = [((_pos(2, 3),), {}), ((_pos(3, dt=np.float32),), {}), ((np.float64(0.7) * np.ones(()),), {})]
_TIES = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, np.nan]])


def _binary():
    return [((_pos(2, 3), _pos(2, 3)), {}), ((_pos(4, dt=np.float32), 2.0), {}),
            ((3.0, _pos(2, 2)), {}), ((_TIES, _TIES[::-1].copy()), {})]


def _compare():
    return [((_TIES, _TIES[::-1].copy()), {}), ((_i(2, 3), _i(2, 3)), {}), ((_f(5), 0.5), {})]


# name -> list of (operands, params); operands are numpy arrays (program inputs) or Python scalars.
SAMPLES: dict[str, list] = {
    **{n: _UNARY for n in ("exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh",
                           "logistic", "erf")},
    "neg": _UNARY + [((_i(3),), {})],
    "abs": [((_f(2, 3),), {}), ((_i(4),), {})],
    "sign": [((np.array([-2.0, 0.0, 3.0, -0.0]),), {}), ((_i(5),), {})],
    **{n: _binary() for n in ("add", "sub", "mul", "div", "pow", "max", "min")},
    **{n: _compare() for n in ("lt", "le", "gt", "ge", "eq", "ne")},
    "and": [((_b(2, 3), _b(2, 3)), {}), ((_b(3), True), {})],
    "or": [((_b(2, 3), _b(2, 3)), {}), ((_b(3), False), {})],
    "not": [((_b(2, 3),), {})],
    "select": [((_b(2, 3), _f(2, 3), _f(2, 3)), {}), ((_b(4), _f(4), 0.0), {}),
               ((_b(2), 1, _i(2)), {})],
    "convert": [((_f(2, 3),), {"dtype": int32}), ((_i(3),), {"dtype": float32}),
                ((_b(3),), {"dtype": float64}), ((_f(3),), {"dtype": bool_})],
    "stop_gradient": [((_f(2, 3),), {})],
    "broadcast_in_dim": [((_f(3),), {"shape": (2, 3), "dims": (1,)}),
                         ((np.array(1.5),), {"shape": (2, 2), "dims": ()}),
                         ((_f(2, 1),), {"shape": (2, 4, 3), "dims": (0, 2)})],
    "reshape": [((_f(2, 3),), {"shape": (3, 2)}), ((_f(1, 1),), {"shape": ()})],
    "transpose": [((_f(2, 3, 4),), {"perm": (2, 0, 1)})],
    **{n: [((_f(2, 3, 4),), {"axes": (0, 2)}), ((_f(3),), {"axes": ()}), ((_i(2, 3),), {"axes": (1,)})]
       for n in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod")},
    "argmax": [((_TIES,), {"axis": 1}), ((_f(3, 4),), {"axis": 0})],
    "argmin": [((_TIES,), {"axis": 1}), ((_f(3, 4),), {"axis": 0})],
    "slice": [((_f(4, 5),), {"starts": (1, 0), "stops": (3, 5), "steps": (1, 2)})],
    "pad": [((_f(2, 3),), {"lo": (1, 0), "hi": (0, 2), "interior": (1, 0)})],
    "rev": [((_f(2, 3),), {"axes": (0, 1)})],
    "concatenate": [((_f(2, 3), _f(1, 3)), {"axis": 0}), ((_f(2, 1), _f(2, 2), _f(2, 3)), {"axis": 1})],
    "take_along": [((_f(3, 4), np.array([[0, 3], [-1, 2], [1, 1]])), {"axis": 1}),
                   ((_f(3, 4), np.array([[2, 0, 1, -1]])), {"axis": 0})],
    "scatter_add_along": [((_f(3, 2), np.array([[0, 3], [-1, 3], [1, 1]])),
                           {"axis": 1, "shape": (3, 4)}),
                          ((_f(3, 1), np.array([[2], [0], [-4]])), {"axis": 1, "shape": (3, 4)})],
    "check_index": [((np.array([[0, -1], [3, 2]]),), {"size": 4, "axis": 1, "mode": "wrap"}),
                    ((np.array([0, 3, 1]),), {"size": 4, "axis": 0, "mode": "target"})],
    "take": [((_f(4, 3), np.array([[0, 3], [-1, 2]])), {"axis": 0}),
             ((_f(2, 5), np.array([4, 4, 0])), {"axis": 1})],
    "scatter_add": [((_f(2, 2, 3), np.array([[0, 3], [3, -1]])), {"shape": (4, 3), "axis": 0}),
                    ((_f(5), np.array([1, 1, 0, 2, 1])), {"shape": (3,), "axis": 0})],
    "matmul": [((_f(2, 3), _f(3, 4)), {}), ((_f(2, 2, 3, dt=np.float32), _f(2, 3, 4, dt=np.float32)), {}),
               ((_i(2, 3), _i(3, 2)), {})],
}


def _generic(prim):
    """A sample for a new parameterless elementwise primitive (unary, then binary)."""
    from gradgen.ops.registry import Aval
    for arity in (1, 2):
        try:
            prim.abstract_eval(*[Aval((2, 3), float64)] * arity)
        except TypeError:
            continue
        return [(tuple(_pos(2, 3) for _ in range(arity)), {})]
    return None


def _program_for(prim, args, params):
    b = Builder()
    ops = [b.input(a.shape, a.dtype) if isinstance(a, np.ndarray) else a for a in args]
    return b.build([b.add(prim, *ops, **params)])


def _eager(prim, args, params):
    return prim(*[Tensor._make(a) if isinstance(a, np.ndarray) else a for a in args], **params)._data


def _cases():
    for name in sorted(PRIMITIVES):
        for k, (args, params) in enumerate(SAMPLES.get(name) or _generic(PRIMITIVES[name]) or []):
            yield pytest.param(name, args, params, id=f"{name}-{k}")


def test_every_primitive_has_a_sample():
    missing = [n for n, p in PRIMITIVES.items() if n not in SAMPLES and _generic(p) is None]
    assert not missing, f"add interpreter samples for primitives {missing}"


@pytest.mark.parametrize("name,args,params", list(_cases()))
def test_interpreter_matches_eager(name, args, params):
    prim = PRIMITIVES[name]
    prog = check(_program_for(prim, args, params))
    with np.errstate(all="ignore"):
        want = _eager(prim, args, params)
        (got,) = run(prog, *[a for a in args if isinstance(a, np.ndarray)])
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    text = str(prog)
    assert str(parse(text)) == text


# ---------------------------------------------------------------- builder


def test_builder_types_come_from_shape_rules():
    b = Builder()
    x = b.input((2, 3), float32, name="x")
    y = b.add("reduce_sum", x, axes=(1,))
    assert (y.shape, y.dtype, y.ndim) == ((2,), float32, 1)
    c = b.add(E.lt, y, 0)
    assert c.dtype is bool_
    with pytest.raises(TypeError, match="operand shapes differ"):
        b.add("add", x, y)
    with pytest.raises(KeyError, match="no primitive named 'frobnicate'"):
        b.add("frobnicate", x)


def test_builder_scalars_take_the_first_non_bool_operand_dtype():
    b = Builder()
    x = b.input((2,), float64)
    m = b.input((2,), bool_)
    e = b.eqns
    b.add("mul", x, 2)
    b.add("select", m, 1.5, x)
    b.add("and", m, True)
    assert [a.dtype for a in e[0].inputs] == [float64, float64]
    assert [a.dtype for a in e[1].inputs] == [bool_, float64, float64]
    assert e[2].inputs[1].dtype is bool_
    assert b.literal(0.5).dtype is float32 and b.literal(3).dtype is int64
    assert b.literal(0.5, float64).dtype is float64


def test_building_runs_vjp_rules_on_vars():
    b = Builder()
    x = b.input((2, 3), float32, name="x")
    g = b.input((2, 3), float32, name="g")
    with building(b):
        gx, gy = PRIMITIVES["div"].vjp(g, (x, x), None, (True, True))
        z = full(0.0, (3,), float32)
        (gt,) = PRIMITIVES["tanh"].vjp(g, (x,), E.tanh(x), (True,))
    assert all(isinstance(v, Var) for v in (gx, gy, z, gt))
    prog = check(b.build([gx, gy, z, gt]))
    xv, gv = _f(2, 3, dt=np.float32), _f(2, 3, dt=np.float32)
    rx, ry, rz, rt = run(prog, xv, gv)
    np.testing.assert_allclose(rx, gv / xv, rtol=1e-6)
    np.testing.assert_allclose(ry, -(gv * xv) / (xv * xv), rtol=1e-6)
    np.testing.assert_array_equal(rz, np.zeros(3, np.float32))
    np.testing.assert_allclose(rt, gv * (1 - np.tanh(xv) ** 2), rtol=1e-5, atol=1e-6)
    # Outside the block primitives apply to tensors again.
    assert isinstance(E.neg(Tensor._make(np.ones(2))), Tensor)


def test_building_leaves_tensor_operations_eager():
    b = Builder()
    with building(b):
        t = E.mul(Tensor._make(np.ones(2)), 2.0)
    assert isinstance(t, Tensor) and not b.eqns


def test_builder_inline_and_loc():
    inner = Builder()
    a = inner.input((2,), float64)
    inner.loc = "inner.py:1"
    sub = inner.build([inner.add("exp", a), a])
    b = Builder()
    x = b.input((2,), float64, name="x")
    e, same = b.inline(sub, x)
    assert same is x and b.eqns[0].loc == "inner.py:1"
    out = b.add("add", e, 1.0, loc="outer.py:7")
    assert b.eqns[-1].loc == "outer.py:7"
    (r,) = run(b.build([out]), np.zeros(2))
    np.testing.assert_array_equal(r, [2.0, 2.0])


# ---------------------------------------------------------------- printer golden text


def _mlp():
    b = Builder()
    x = b.input((4, 3), float32, name="x")
    w = b.input((3, 2), float32, name="w")
    bias = b.input((2,), float32, name="b")
    b.loc = "train.py:14"
    h = b.add("matmul", x, w)
    bb = b.add("broadcast_in_dim", bias, shape=(4, 2), dims=(1,))
    h = b.add("add", h, bb)
    b.loc = "train.py:15"
    s = b.add("logistic", h)
    loss = b.add("reduce_sum", s, axes=(0, 1))
    b.loc = None
    return b.build([loss, s])


_MLP_TEXT = """\
def (%x:f32[4,3], %w:f32[3,2], %b:f32[2]):
  %0:f32[4,2] = matmul %x, %w  # train.py:14
  %1:f32[4,2] = broadcast_in_dim[dims=(1,), shape=(4, 2)] %b  # train.py:14
  %2:f32[4,2] = add %0, %1  # train.py:14
  %3:f32[4,2] = logistic %2  # train.py:15
  %4:f32[] = reduce_sum[axes=(0, 1)] %3  # train.py:15
  return %4, %3"""


def _constants():
    b = Builder()
    x = b.input((3,), float64)
    small = b.literal(np.array([0.1, -0.0, np.inf]))
    big = b.literal(np.arange(100, dtype=np.float32).reshape(10, 10))
    y = b.add("add", x, small)
    y = b.add("mul", y, b.literal(np.nan, float64))
    y = b.add("max", y, b.literal(-np.inf, float64))
    y = b.add("div", y, b.literal(np.float64(1) / 3))
    m = b.add("gt", y, small)
    m = b.add("and", m, True)
    c = b.add("convert", m, dtype=int64)
    c = b.add("add", c, -7)
    f = b.add("convert", big, dtype=float64)
    f32 = b.add("mul", b.add("convert", x, dtype=float32), 0.1)
    return b.build([c, f, small, 2.5, f32])


_CONSTANTS_TEXT = """\
const $0:f64[3] = [0.1, -0.0, inf]
const $1:f32[10,10] = <sha256:6ebead7393a58c25>
def (%0:f64[3]):
  %1:f64[3] = add %0, $0
  %2:f64[3] = mul %1, nan:f64
  %3:f64[3] = max %2, -inf:f64
  %4:f64[3] = div %3, 0.3333333333333333:f64
  %5:bool[3] = gt %4, $0
  %6:bool[3] = and %5, True:bool
  %7:i64[3] = convert[dtype=i64] %6
  %8:i64[3] = add %7, -7:i64
  %9:f64[10,10] = convert[dtype=f64] $1
  %10:f32[3] = convert[dtype=f32] %0
  %11:f32[3] = mul %10, 0.1:f32
  return %8, %9, $0, 2.5:f32, %11"""


def _names():
    b = Builder()
    a = b.input((), float32, name="x")
    c = b.input((), float32, name="x")       # a clash: printed by number
    d = b.input((), float32, name="not ok")  # not an identifier: printed by number
    s = b.add("add", b.add("add", a, c), d)
    s.name = "total"
    return b.build([s])


_NAMES_TEXT = """\
def (%x:f32[], %0:f32[], %1:f32[]):
  %2:f32[] = add %x, %0
  %total:f32[] = add %2, %1
  return %total"""


def _empty():
    return Builder().build([])


_EMPTY_TEXT = "def ():\n  return"


GOLDEN = [(_mlp, _MLP_TEXT), (_constants, _CONSTANTS_TEXT), (_names, _NAMES_TEXT),
          (_empty, _EMPTY_TEXT)]


@pytest.mark.parametrize("make,text", GOLDEN, ids=[m.__name__ for m, _ in GOLDEN])
def test_printer_golden(make, text):
    prog = check(make())
    assert str(prog) == text
    assert str(make()) == text  # numbering does not depend on object identity


@pytest.mark.parametrize("make,text", GOLDEN, ids=[m.__name__ for m, _ in GOLDEN])
def test_parse_round_trip(make, text):
    prog = make()
    back = check(parse(text, constant_table(prog)))
    assert str(back) == text
    ins = [_f(*v.shape).astype(v.dtype.np) for v in prog.inputs]
    with np.errstate(all="ignore"):
        for got, want in zip(run(back, *ins), run(prog, *ins)):
            np.testing.assert_array_equal(got, want)


def test_float32_literals_print_exactly():
    for v in (np.float32(0.1), np.float32(1e-8), np.float32(3.4028235e38), np.float32(-1.5)):
        b = Builder()
        x = b.input((), float32)
        prog = b.build([b.add("mul", x, b.literal(v))])
        lit = parse(str(prog)).eqns[0].inputs[1]
        assert lit.value.dtype == np.float32 and lit.value == v


def test_big_constant_needs_its_value_to_parse():
    with pytest.raises(IRError, match=r"line 2: constant \$1 is printed by digest"):
        parse(_CONSTANTS_TEXT)


@pytest.mark.parametrize("text,msg", [
    ("def (%x:f32[2]):\n  %0:f32[2] = neg %y\n  return %0", r"line 2: variable %y is used before"),
    ("def (%x:f32[2]):\n  %x:f32[2] = neg %x\n  return %x", r"line 2: variable %x is defined twice"),
    ("def (%x:f32[2]):\n  %0:f32[2] = frob %x\n  return %0", r"line 2: no primitive named 'frob'"),
    ("def (%x:q8[2]):\n  return %x", r"line 1: bad type 'q8\[2\]'"),
    ("  %0:f32[2] = neg %x\n", r"line 1: expected `def"),
    ("def (%x:f32[2]):\n  %0:f32[2] = neg 1.0\n  return %0", r"line 2: bad operand '1.0'"),
    ("def (%x:f32[2]):\n  %0:f32[2] = reduce_sum[axes=(0,] %x\n  return %0", r"line 2: .*parameters"),
    ("def (%x:f32[2]):\n", r"needs a `def \(...\):` line and a `return`"),
])
def test_parse_errors_name_the_line(text, msg):
    with pytest.raises(IRError, match=msg):
        parse(text)


# ---------------------------------------------------------------- checker


@pytest.mark.parametrize("text,msg", [
    ("def (%x:f32[2]):\n  %0:f64[2] = neg %x\n  return %0",
     r"line 2, equation 0 `%0:f64\[2\] = neg %x`: output typed f64\[2\] but the shape rule of neg "
     r"gives f32\[2\]"),
    ("def (%x:f32[2], %y:f32[3]):\n  %0:f32[2] = exp %x  # m.py:3\n  %1:f32[2] = add %0, %y  # m.py:4\n"
     "  return %1",
     r"line 3, equation 1 `%1:f32\[2\] = add %0, %y  # m.py:4`: the shape rule of add rejects it: "
     r"add: operand shapes differ: \[2\], \[3\]"),
    ("def (%x:i64[2]):\n  %0:i64[2] = exp %x\n  return %0", r"exp: expected a floating dtype"),
    ("def (%x:f32[2,3]):\n  %0:f32[3] = reduce_sum[axes=(2,)] %x\n  return %0",
     r"axes \(2,\) are not distinct axes"),
])
def test_checker_names_the_bad_equation(text, msg):
    prog = parse(text)
    with pytest.raises(IRError, match=msg):
        check(prog)


def _neg_program(extra=None):
    b = Builder()
    x = b.input((2,), float32, name="x")
    y = b.add("neg", x)
    if extra:
        extra(b, x)
    return b.build([y])


def test_checker_catches_structural_errors():
    check(_neg_program())
    stray = Var(99, _neg_program().inputs[0].aval)
    use_before_def = _neg_program()
    use_before_def.eqns[0].inputs = (stray,)
    with pytest.raises(IRError, match=r"equation 0 `%0:f32\[2\] = neg %\?99`: operand %\?99 is used"):
        check(use_before_def)
    redefined = _neg_program()
    redefined.eqns.append(redefined.eqns[0])
    with pytest.raises(IRError, match=r"line 3, equation 1 .*already defined \(not SSA\)"):
        check(redefined)
    undefined_out = _neg_program()
    undefined_out.outputs[0] = stray
    with pytest.raises(IRError, match=r"output 0: operand %\?99 is used before it is defined"):
        check(undefined_out)
    dup_input = _neg_program()
    dup_input.inputs.append(dup_input.inputs[0])
    with pytest.raises(IRError, match=r"input 1: .* is not a distinct variable"):
        check(dup_input)
    bad_lit = _neg_program()
    lit = Literal(np.float32(1))
    lit.value = np.zeros(2)
    bad_lit.outputs.append(lit)
    with pytest.raises(IRError, match=r"output 1: literal value float64\[2\] does not match its type f32\[\]"):
        check(bad_lit)
    unhashable = _neg_program(lambda b, x: b.add("reduce_sum", x, axes=(0,)))
    unhashable.eqns[-1].params["axes"] = [0]
    with pytest.raises(IRError, match="not hashable plain values"):
        check(unhashable)


def test_checker_rejects_unregistered_primitive():
    from gradgen.ops.registry import Primitive
    fake = Primitive("neg", np.negative, lambda x: x, None, "")
    prog = parse("def (%x:f32[2]):\n  %0:f32[2] = neg %x\n  return %0")
    prog.eqns[0].prim = fake
    with pytest.raises(IRError, match="primitive 'neg' is not the registered one"):
        check(prog)


# ---------------------------------------------------------------- interpreter


def test_interpreter_checks_its_inputs_and_results():
    prog = parse("def (%x:f32[2]):\n  %0:f32[2] = neg %x\n  return %0, %x")
    with pytest.raises(IRError, match="takes 1 inputs, got 2"):
        run(prog, np.zeros(2), np.zeros(2))
    with pytest.raises(IRError, match=r"input 0 \(%x:f32\[2\]\) expects shape \[2\], got \[3\]"):
        run(prog, np.zeros(3, np.float32))
    with pytest.raises(IRError, match=r"expects dtype float32, got float64"):
        run(prog, np.zeros(2))
    neg, same = run(prog, gradgen.tensor([1.0, -2.0]))
    np.testing.assert_array_equal(neg, [-1.0, 2.0])
    assert same.dtype == np.float32
    wrong = parse("def (%x:f32[2]):\n  %0:f64[2] = neg %x\n  return %0")
    with pytest.raises(IRError, match=r"equation 0 \(neg\) produced float32\[2\], but its output is "
                                      r"typed f64\[2\]"):
        run(wrong, np.zeros(2, np.float32))
    scalar = parse("def (%s:f32[]):\n  %0:f32[] = mul %s, 2.0:f32\n  return %0")
    assert run(scalar, 1.5)[0] == np.float32(3.0)
