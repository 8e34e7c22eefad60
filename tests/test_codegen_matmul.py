"""Matmul kernels (gradgen.codegen.gemm): generated loops, BLAS calls and fused epilogues,
checked against numpy in float64 (int64: exactly), on the generated-loop and the BLAS path."""
from __future__ import annotations

import numpy as np
import pytest

import gradgen as gg
import gradgen.nn.functional as F
from gradgen.codegen import build_schedule, gemm
from gradgen.codegen.steps import View
from gradgen.ir.trace import trace
from gradgen.ir.trace_inputs import input_values
from gradgen.passes.pipeline import optimize
from gradgen.runtime import blas
from gradgen.runtime.executor import build_programs

from conftest import needs_cc

RNG = np.random.default_rng(7)
DTYPES = [np.float32, np.float64, np.int64]


def _array(shape, dt):
    if np.dtype(dt).kind == "i":
        return RNG.integers(-5, 6, shape).astype(dt)
    return RNG.standard_normal(shape).astype(dt)


def _mm(a, b):
    return a @ b


# name -> (function, operand shapes). Transposes and broadcast batches are views of the inputs.
CASES = {
    "1x1x1": (_mm, [(1, 1), (1, 1)]),
    "3x5x7": (_mm, [(3, 5), (5, 7)]),
    "vector-matrix": (_mm, [(5,), (5, 7)]),
    "matrix-vector": (_mm, [(3, 5), (5,)]),
    "dot": (_mm, [(6,), (6,)]),
    "at-b": (lambda a, b: a.T @ b, [(5, 3), (5, 7)]),
    "a-bt": (lambda a, b: a @ b.T, [(3, 5), (7, 5)]),
    "at-bt": (lambda a, b: a.T @ b.T, [(5, 3), (7, 5)]),
    "bmm": (_mm, [(2, 3, 4), (2, 4, 5)]),
    "broadcast-batch": (_mm, [(2, 3, 4), (4, 5)]),
    "broadcast-batch-1": (_mm, [(1, 3, 4), (3, 4, 6)]),
    "sliced": (lambda a, b: a[:, 1:4] @ b[::2], [(9, 6), (6, 17)]),
    "k0": (_mm, [(3, 0), (0, 4)]),
    "mlp-fwd": (_mm, [(128, 256), (256, 10)]),
    "mlp-gh": (lambda g, w: g @ w.T, [(128, 10), (256, 10)]),
    "mlp-gw": (lambda h, g: h.T @ g, [(128, 256), (128, 10)]),
    "tiles": (_mm, [(13, 40), (40, 35)]),
}


def _run(fn, arrays, threads=2):
    """``fn`` traced on ``arrays``, built as C, run; also the program's schedule."""
    prog = optimize(trace(fn, *[gg.tensor(a) for a in arrays]))
    built = build_programs([prog], threads)
    outs = built.executables[0](*input_values(prog, *[gg.tensor(a) for a in arrays]))
    return outs, built


def _check(got, want, dt, k=1):
    """House tolerances against the float64 (int64: exact) product."""
    if np.dtype(dt).kind == "i":
        np.testing.assert_array_equal(got, want)
        return
    assert got.dtype == dt
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(want))
    ok = np.isfinite(want)
    if not ok.any():
        return
    rtol = 1e-4 if dt == np.float32 else 1e-10
    scale = float(np.abs(want[ok]).max()) if want.size else 1.0
    np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=rtol * max(scale, 1e-30))


def _oracle(fn, arrays, dt):
    wide = [a.astype(np.float64) if np.dtype(dt).kind == "f" else a for a in arrays]
    return np.asarray(fn(*wide))


@needs_cc
@pytest.mark.parametrize("path", ["loop", "blas"])
@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: np.dtype(d).name)
def test_products_match_numpy(dt, path, monkeypatch):
    """Every case of CASES, built as one module (one compiler run) per dtype and path."""
    if path == "blas":
        if np.dtype(dt).kind == "i":
            pytest.skip("int64 products are always the generated loop (exact)")
        monkeypatch.setattr(gemm, "SMALL_MACS", 0)
    names = list(CASES)
    inputs = [[_array(s, dt) for s in CASES[n][1]] for n in names]
    progs = [optimize(trace(CASES[n][0], *[gg.tensor(a) for a in arrays]))
             for n, arrays in zip(names, inputs)]
    built = build_programs(progs, 2)
    for name, prog, arrays, ex, sched in zip(names, progs, inputs, built.executables,
                                             built.schedules):
        (got,) = ex(*input_values(prog, *[gg.tensor(a) for a in arrays]))
        try:
            _check(got, _oracle(CASES[name][0], arrays, dt), dt)
        except AssertionError as exc:
            raise AssertionError(f"case {name}: {exc}") from None
        assert any(k.gemm is not None for k in sched.kernels), name
    assert ("gg_gemm_" in built.source) == (path == "blas")


@needs_cc
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_nan_and_inf_propagate(dt, monkeypatch):
    a, b = _array((7, 9), dt), _array((9, 18), dt)
    a[2, 3], b[4, 5], b[6, 7], a[5, 6] = np.nan, np.inf, -np.inf, 0.0
    for small in (gemm.SMALL_MACS, 0):
        monkeypatch.setattr(gemm, "SMALL_MACS", small)
        with np.errstate(invalid="ignore"):
            (got,), _ = _run(_mm, [a, b])
            _check(got, a.astype(np.float64) @ b.astype(np.float64), dt)


def _affine_relu(x, w, b):
    return F.relu(x @ w + b)


@needs_cc
@pytest.mark.parametrize("small", [True, False])
def test_epilogue_runs_inside_the_matmul(small, monkeypatch):
    if not small:
        monkeypatch.setattr(gemm, "SMALL_MACS", 0)
    x, w, b = _array((20, 30), np.float32), _array((30, 40), np.float32), _array((40,), np.float32)
    (got,), built = _run(_affine_relu, [x, w, b])
    (sched,) = built.schedules
    (k,) = sched.kernels
    assert k.gemm is not None and [e.prim.name for e in k.eqns][1:] == ["add", "le", "select"]
    assert k.gemm.out not in k.stores  # the product lives in the output buffer only
    want = np.maximum(x.astype(np.float64) @ w + b, 0)
    _check(got, want, np.float32)


def _product_and_mask(x, w):
    y = x @ w
    return y, F.relu(y) * 2.0, y.sum(0)


@needs_cc
def test_product_read_elsewhere_is_stored():
    x, w = _array((9, 11), np.float64), _array((11, 5), np.float64)
    (y, m, s), built = _run(_product_and_mask, [x, w])
    ks = [k for k in built.schedules[0].kernels if k.gemm is not None]
    assert len(ks) == 1 and ks[0].gemm.out in ks[0].stores
    want = x @ w
    _check(y, want, np.float64)
    _check(m, np.maximum(want, 0) * 2.0, np.float64)
    _check(s, want.sum(0), np.float64)


@needs_cc
def test_schedule_copies_only_what_the_loop_cannot_read():
    a, b = gg.tensor(_array((4, 6), np.float32)), gg.tensor(_array((5, 6), np.float32))
    sched = build_schedule(optimize(trace(lambda a, b: a @ b.T, a, b)))
    assert [k.gemm is not None for k in sched.kernels] == [False, True]  # b.T copied: small
    c = gg.tensor(_array((4, 3), np.float32))
    sched = build_schedule(optimize(trace(lambda a, c: a.T @ c, a, c)))
    assert [k.gemm is not None for k in sched.kernels] == [True]  # a.T: strided scalar loads


@needs_cc
def test_no_blas_still_correct(monkeypatch):
    monkeypatch.setattr(gemm, "SMALL_MACS", 0)
    monkeypatch.setattr(blas, "_found", [None, "test: none"])
    assert blas.describe().startswith("no BLAS: test: none")
    x, w = _array((33, 20), np.float32), _array((20, 17), np.float32)
    cases = [(lambda x, w: x.T.T @ w, [x, w]), (lambda a, b: a.T @ b.T, [x.T.copy(), w.T.copy()])]
    fallback = []
    for fn, arrays in cases:
        (got,), built = _run(fn, arrays)
        assert "gg_set_blas" in built.source and "gg_gemm_loop_float(" in built.source
        _check(got, x.astype(np.float64) @ w, np.float32)
        fallback.append(got)
    monkeypatch.setattr(blas, "_found", [])  # the next module load finds the BLAS again
    monkeypatch.setattr(gemm, "SMALL_MACS", 1 << 30)  # the tile loops: bitwise the same sums
    for (fn, arrays), got in zip(cases, fallback):
        (tiles,), built = _run(fn, arrays)
        assert "gg_set_blas" not in built.source
        np.testing.assert_array_equal(tiles, got)


def test_blas_discovery():
    b = blas.find()
    if b is None:
        assert blas.describe().startswith("no BLAS")
        return
    assert b.sgemm and b.dgemm and b.sgemm_symbol in blas.describe()
    assert (b.sgemm_symbol, b.dgemm_symbol, b.ilp64) in blas.SYMBOLS


@pytest.mark.parametrize("shape, strides, want", [
    ((3, 5), (5, 1), (False, 5)),
    ((3, 5), (1, 3), (True, 3)),
    ((3, 5), (8, 1), (False, 8)),    # a slice of wider rows
    ((1, 5), (0, 1), (False, 5)),    # one row: its stride is never used
    ((3, 1), (1, 0), (False, 1)),
    ((3, 5), (0, 1), None),          # rows broadcast
    ((3, 5), (10, 2), None),         # no unit stride
])
def test_blas_layout(shape, strides, want):
    assert gemm.blas_layout(*shape, *strides) == want


@needs_cc
def test_mlp_gradients_compiled_match_eager():
    x, t = _array((128, 784), np.float32), RNG.integers(0, 10, 128)
    w1, b1 = _array((784, 256), np.float32) * 0.05, _array((256,), np.float32)
    w2, b2 = _array((256, 10), np.float32) * 0.05, _array((10,), np.float32)

    def loss(x, w1, b1, w2, b2, t):
        return F.cross_entropy(F.relu(x @ w1 + b1) @ w2 + b2, t)

    args = [gg.tensor(a) for a in (x, w1, b1, w2, b2, t)]
    vg = gg.value_and_grad(loss, argnums=(1, 2, 3, 4))
    compiled = gg.compile(vg, fullgraph=True)
    for _ in range(2):
        val, grads = compiled(*args)
    ev, egrads = vg(*args)
    np.testing.assert_allclose(float(val), float(ev), rtol=1e-5)
    for g, e in zip(grads, egrads):
        g, e = g.numpy(), e.numpy()
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4 * np.abs(e).max())
    src = compiled.inspect()[0]["c_source"]
    assert "matmul over [128,256]" in src and "= matmul " in src


def _at(a, b):
    return a.T @ b


def _bat(a, b):
    return (a.permute(0, 2, 1) if isinstance(a, gg.Tensor) else a.transpose(0, 2, 1)) @ b


def _at_relu(a, b, c):
    return F.relu(a.T @ b + c)


# (function, operand shapes) around the tile edges: every output width 1..17 (partial last
# vectors of 8 floats / 4 doubles, one- and two-vector tiles), K = 1, row counts that leave a
# partial row block of the 6- and 12-row tiles; then the transposed form (a.T @ b, b narrow)
# with its batched and epilogue variants, and shapes where it is not chosen.
EDGE_CASES = [(_mm, [(m, k), (k, n)]) for n in range(1, 18)
              for m, k in [[(13, 1), (7, 9), (25, 3)][n % 3]]]
EDGE_CASES += [(_mm, [(1, 9), (9, 9)]), (_mm, [(12, 1), (1, 16)]), (_mm, [(5, 3), (3, 3)])]
EDGE_CASES += [(_at, [(k, m), (k, n)]) for m, k, n in
               [(20, 5, 3), (37, 4, 10), (9, 1, 2), (16, 7, 1), (3, 5, 11), (24, 6, 17)]]
EDGE_CASES += [(_bat, [(2, 5, 19), (2, 5, 3)]), (_at, [(5, 20), (2, 5, 3)]),
               (_mm, [(1, 8, 13), (13, 3)]),
               (_at_relu, [(6, 29), (6, 5), (5,)]), (_at_relu, [(6, 9), (6, 20), (20,)])]


@needs_cc
@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: np.dtype(d).name)
def test_tile_edges_match_numpy(dt):
    """EDGE_CASES built as one module per dtype, against the float64 (int64: exact) product."""
    inputs = [[_array(s, dt) for s in shapes] for _, shapes in EDGE_CASES]
    at = {(fn, tuple(shapes[1])): arrays for (fn, shapes), arrays in zip(EDGE_CASES, inputs)}
    if np.dtype(dt).kind == "f":
        at[_mm, (9, 4)][1][0, 1] = np.nan  # a NaN column in a partial vector
        at[_mm, (3, 5)][0][0, 2] = np.inf  # inf times a row of mixed signs
        at[_at, (4, 10)][1][2, 9] = -np.inf  # the transposed loop's partial vector
        at[_mm, (1, 3)][0][4, 0] = np.nan  # K = 1
    progs = [optimize(trace(fn, *[gg.tensor(a) for a in arrays]))
             for (fn, _), arrays in zip(EDGE_CASES, inputs)]
    built = build_programs(progs, 2)
    for (fn, shapes), prog, arrays, ex in zip(EDGE_CASES, progs, inputs, built.executables):
        (got,) = ex(*input_values(prog, *[gg.tensor(a) for a in arrays]))
        with np.errstate(invalid="ignore"):
            want = _oracle(fn, arrays, dt)
        try:
            _check(got, want, dt)
        except AssertionError as exc:
            raise AssertionError(f"{fn.__name__} {shapes}: {exc}") from None
    assert built.source.count("as the transpose") >= 7


@pytest.mark.parametrize("m, n, a_strides, b_strides, want", [
    (256, 10, (1, 256), (10, 1), True),    # h.T @ g: 10 columns in 2 vectors, 256 rows in 32
    (128, 10, (256, 1), (10, 1), False),   # h @ w: a's columns not contiguous
    (16, 16, (1, 16), (16, 1), False),     # no lanes to gain
    (5, 3, (1, 5), (1, 7), True),          # b's rows not contiguous, a's columns are
])
def test_swapped_when_it_saves_lanes(m, n, a_strides, b_strides, want):
    a = gg.tensor(np.zeros((m, 4), np.float32))
    b = gg.tensor(np.zeros((4, n), np.float32))
    (e,) = [e for e in optimize(trace(_mm, a, b)).eqns if gemm.lowers(e)]
    av = View(None, (m, 4), a_strides)
    bv = View(None, (4, n), b_strides)
    assert gemm.swapped(e, av, bv) == want


@needs_cc
def test_int64_products_wrap_as_numpy():
    """int64 products and sums that overflow wrap modulo 2**64, as numpy's do (the tiles compute
    in uint64_t: signed overflow is undefined behaviour in C)."""
    big = np.iinfo(np.int64).max
    a = np.array([[2**62, 3, big], [big, big, -big - 1], [-5, 7, 1]], np.int64)
    b = np.array([[4, big], [5, 2], [big, -1]], np.int64)
    (got,), _ = _run(_mm, [a, b])
    with np.errstate(over="ignore"):
        want = a @ b
    np.testing.assert_array_equal(got, want)
