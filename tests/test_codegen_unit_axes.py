"""Reductions over axes of extent 1, compiled with their gradients: compiled == eager.

A reduction whose reduced axes all have extent 1 made a row-wise kernel whose rows are
single elements; the scheduler took its whole-domain values for per-row ones and the C did
not compile (a value used outside the pass computing it, a load declared twice). The code
generator now writes such reductions as reshapes (:mod:`gradgen.codegen.unitaxes`). Each
case is compiled with ``fullgraph=True`` (a C failure raises instead of falling back),
called three times with ``backward()``, and compared with eager gradgen: outputs and
``x.grad``.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from gradgen.codegen import build_schedule
from gradgen.codegen.unitaxes import drop_unit_axes
from gradgen.dtypes import float32
from gradgen.ir.builder import Builder
from gradgen.ir.interpreter import run

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


def _sign_abs(x):
    return gg.sign(x) * gg.abs(x)


# name -> (fn, input shape). Shapes with several 1s, 0-d inputs reshaped, keepdim both ways,
# elementwise work before and after, and a second reduction in the same function.
CASES = {
    # the fuzzer's three
    "prod keepdim then sum": (lambda x: x.prod(1, keepdim=True).sum(), (7, 1)),
    "0-d reshaped, amax": (lambda x: x.reshape(1).amax(0), ()),
    "logsumexp of a transpose": (
        lambda x: gg.logsumexp(_sign_abs(x).T, 0, keepdim=True).mean(), (1, 1)),
    # one reduction over unit axes
    "sum keepdim": (lambda x: (x.sum(1, keepdim=True) * x).sum(), (7, 1)),
    "mean": (lambda x: x.mean(0), (1, 5)),
    "prod": (lambda x: x.prod(1), (7, 1)),
    "prod of all, one element": (lambda x: x.prod(), (1, 1)),
    "amax keepdim": (lambda x: x.amax(1, keepdim=True), (7, 1)),
    "amin": (lambda x: x.amin(0), (1, 6)),
    "amax over two unit axes": (lambda x: x.amax((1, 3)), (3, 1, 4, 1)),
    "amin over all, several 1s": (lambda x: x.amin(), (1, 1, 1)),
    "max with dim": (lambda x: x.max(dim=1)[0], (7, 1)),
    "min with dim keepdim": (lambda x: x.min(dim=0, keepdim=True)[0], (1, 4)),
    "logsumexp": (lambda x: gg.logsumexp(x, 1), (5, 1)),
    "logsumexp keepdim, middle axis": (lambda x: gg.logsumexp(x, 1, keepdim=True), (3, 1, 4)),
    "var": (lambda x: x.var(1, correction=0), (5, 1)),
    "var unbiased (nan)": (lambda x: x.var(1), (5, 1)),
    "std keepdim": (lambda x: x.std(0, keepdim=True, correction=0) + x, (1, 4)),
    "norm": (lambda x: x.norm(dim=1), (6, 1)),
    "norm of one element": (lambda x: x.norm(), (1, 1)),
    "softmax": (lambda x: F.softmax(x, 1), (7, 1)),
    "log_softmax": (lambda x: F.log_softmax(x, 0), (1, 5)),
    "softmax over a middle axis": (lambda x: F.softmax(x, 1), (2, 1, 3)),
    "layer_norm": (lambda x: F.layer_norm(x, (1,)), (7, 1)),
    "layer_norm over 1x1": (lambda x: F.layer_norm(x, (1, 1)), (3, 1, 1)),
    # partly unit axes
    "amax over a unit and a long axis": (lambda x: x.amax((1, 2)), (3, 1, 4)),
    "prod over a unit and a long axis": (lambda x: x.prod(0), (1, 6)),
    "layer_norm over 1x4": (lambda x: F.layer_norm(x, (1, 4)), (3, 1, 4)),
    "logsumexp over all of 1x6": (lambda x: gg.logsumexp(x, (0, 1)), (1, 6)),
    # 0-d inputs reshaped
    "0-d, prod": (lambda x: x.reshape(1, 1).prod(1).sum(), ()),
    "0-d, logsumexp": (lambda x: gg.logsumexp(x.reshape(1, 1, 1), (0, 2)), ()),
    "0-d, softmax": (lambda x: F.softmax(x.reshape(1), 0) * x, ()),
    "0-d, max with dim": (lambda x: x.reshape(1, 1).max(dim=0)[0] * 3.0, ()),
    # elementwise before and after
    "tanh, amax, exp": (lambda x: gg.exp(gg.tanh(x) * x).amax(1, keepdim=True).exp() * x,
                        (4, 1)),
    "amax, subtract, exp, sum": (
        lambda x: gg.log(gg.exp(x - x.amax(1, keepdim=True)).sum(1)), (6, 1)),
    "amax over a unit leading axis, exp": (
        lambda x: gg.exp(gg.exp(gg.tanh(x) * x).amax(0, keepdim=True)) * x, (1, 4)),
    "prod of abs, sqrt": (lambda x: gg.sqrt(gg.abs(x).prod(0, keepdim=True) + 1.0), (1, 3)),
    # another reduction in the same function
    "amax and sum": (lambda x: x.amax(1).sum() + x.sum(0).mean(), (7, 1)),
    "amin and softmax over the long axis": (
        lambda x: (x.amin(0, keepdim=True) * F.softmax(x, 1)).sum(), (1, 8)),
    "logsumexp and layer_norm": (
        lambda x: gg.logsumexp(x, 2).sum() + (F.layer_norm(x, (3,)) * x).sum(), (4, 1, 3)),
    "max and min over unit axes": (
        lambda x: (x.max(dim=1)[0] - x.min(dim=1)[0] + x.prod(1)) * x.mean(), (5, 1)),
    "var and amax": (lambda x: x.var(0, correction=0) + x.amax(0).sum(), (1, 1, 5)),
    "log_softmax and prod": (lambda x: F.log_softmax(x, 1).sum(1) * x.prod(1), (9, 1)),
}

DTYPES = {"f64": np.float64, "f32": np.float32}

def _input(shape, dtype, seed: int) -> np.ndarray:
    """Values away from zero (norm, std and sqrt of |x| stay differentiable)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.25, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return np.asarray(x, dtype)


def _run(fn, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fn``'s output and ``x.grad`` after ``backward()``: of the output itself when it is a
    scalar, else of its sum weighted by fixed numbers (a cotangent other than one)."""
    x = gg.tensor(value.copy(), requires_grad=True)
    out = fn(x)
    if out.ndim == 0:
        out.backward()
    else:
        weights = np.linspace(-1.5, 2.0, out.numel()).reshape(out.shape).astype(value.dtype)
        (out * gg.tensor(weights)).sum().backward()
    return out.detach().numpy().copy(), x.grad.numpy().copy()


def _close(got: np.ndarray, want: np.ndarray, tol: dict, what: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=what)
    np.testing.assert_allclose(got, want, err_msg=what, equal_nan=True, **tol)


@pytest.mark.cc
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_reductions_over_unit_axes_compile_with_gradients(name: str, dtype: str) -> None:
    fn, shape = CASES[name]
    d = DTYPES[dtype]
    cf = gg.compile(fn, fullgraph=True)
    for call in range(3):
        value = _input(shape, d, seed=call)
        want_out, want_grad = _run(fn, value)
        got_out, got_grad = _run(cf, value)
        _close(got_out, want_out, TOL[d], f"{name}: output, call {call}")
        _close(got_grad, want_grad, TOL[d], f"{name}: x.grad, call {call}")


SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5]


@pytest.mark.cc
@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("op", ["amax", "amin", "prod"])
def test_unit_axis_extremum_and_product_are_the_element(op: str, dtype: str) -> None:
    """Over one element, max, min and prod give that element bit for bit, as eager does
    (NaN, infinities and the sign of zero included), also next to their gradients."""
    d = DTYPES[dtype]
    value = np.asarray(SPECIALS, d).reshape(-1, 1)

    def fn(x):
        return getattr(x, op)(1) * 1.0

    cf = gg.compile(fn, fullgraph=True)
    for _ in range(3):
        want_out, _ = _run(fn, value)
        got_out, _ = _run(cf, value)
        np.testing.assert_array_equal(np.signbit(got_out), np.signbit(want_out))
        np.testing.assert_array_equal(got_out, want_out)


def _reduction_program(prim: str, shape, axes):
    b = Builder()
    x = b.input(shape, float32)
    return b.build([b.add(prim, b.add("tanh", x), axes=axes)])


@pytest.mark.parametrize("prim", ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod"])
@pytest.mark.parametrize("shape, axes, left", [
    ((7, 1), (1,), None),          # all reduced axes unit: a reshape
    ((1,), (0,), None),
    ((3, 1, 4, 1), (1, 3), None),
    ((3, 1, 4), (1, 2), (2,)),     # partly: a reduction over the others, then a reshape
    ((1, 6), (0, 1), (1,)),
    ((4, 5), (1,), (1,)),          # none: unchanged
])
def test_drop_unit_axes(prim: str, shape, axes, left) -> None:
    """The rewrite keeps values (IR interpreter) and leaves no reduction over a unit axis."""
    program = _reduction_program(prim, shape, axes)
    got = drop_unit_axes(program)
    reds = [e for e in got.eqns if e.prim.name == prim]
    assert [tuple(e.params["axes"]) for e in reds] == ([] if left is None else [left])
    if left == axes:
        assert got.eqns == program.eqns
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(run(got, x)[0], run(program, x)[0])


def test_schedule_has_no_row_kernel_of_single_elements() -> None:
    """The gradient of ``amax`` over a unit axis schedules no reduction at all."""
    b = Builder()
    x = b.input((7, 1), float32)
    m = b.add("reduce_max", x, axes=(1,))
    hit = b.add("eq", x, b.add("broadcast_in_dim", m, shape=(7, 1), dims=(0,)))
    sched = build_schedule(b.build([m, hit]))
    assert all(k.red_axes is None for k in sched.kernels)
