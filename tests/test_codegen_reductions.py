"""One-pass reduction kernels in their three loop forms (rows, columns, chunks), checked against
the IR interpreter; vectorized max/min with numpy's NaN semantics; results independent of
the thread count.

Programs are built with the runtime's own path (:func:`gradgen.runtime.executor.build_programs`:
the same compiler flags, cache and loader as ``gradgen.compile``), all of them in one module.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradgen as gg
from gradgen.codegen import build_schedule, render_module
from gradgen.codegen.reductions import CHUNK_MIN, COLUMN_BLOCK
from gradgen.dtypes import float32, float64, int32, int64
from gradgen.ir.builder import Builder
from gradgen.ir.interpreter import run
from test_codegen import _check

RNG = np.random.default_rng(7)
PRIMS = ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod"]
SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 0.0]

# name -> (input shape, axes, transposed input?, expected form); columns need the kept last axis.
# "heavy_small": below CHUNK_MIN, chunked only when the kernel calls tanh (the fused programs):
# its work is worth threads (form (plain, fused)).
SHAPES = {
    "rows": ((40, 33), (1,), False, "rows"),
    "rows_small_whole": ((7, 5), (0, 1), False, "rows"),
    "columns": ((64, 2 * COLUMN_BLOCK + 37), (0,), False, "columns"),
    "columns_mid": ((3, 50, 9), (1,), False, "columns"),
    "columns_lead2": ((5, 6, 7), (0, 1), False, "columns"),
    "transposed_rows": ((37, 45), (0,), True, "rows"),
    "chunks_2d": ((300, 400), (0, 1), False, "chunks"),
    "chunks_1d": ((CHUNK_MIN * 3 + 11,), (0,), False, "chunks"),
    "chunks_transposed": ((257, 300), (0, 1), True, "chunks"),
    "heavy_small": ((96, 100), (0, 1), False, ("rows", "chunks")),
}


def _program(prim: str, d, shape, axes, transposed: bool, fused: bool):
    """prim(x) -- or prim(tanh(x) * x) storing the product too -- over ``axes``."""
    b = Builder()
    x = b.input(tuple(reversed(shape)) if transposed else shape, d)
    if transposed:
        x = b.add("transpose", x, perm=tuple(reversed(range(len(shape)))))
    if fused:
        prod = b.add("mul", b.add("tanh", x), x) if d.is_floating_point else b.add("mul", x, x)
        return b.build([b.add(prim, prod, axes=axes), prod])
    return b.build([b.add(prim, x, axes=axes)])


def _cases():
    cases = {}
    for name, (shape, axes, tr, form) in SHAPES.items():
        form, fused_form = form if isinstance(form, tuple) else (form, form)
        for prim in PRIMS:
            for d in (float32, float64):
                for fused in (False, True):
                    if fused and not name.startswith(("columns", "chunks_2d", "rows", "heavy")):
                        continue
                    tag = f"{prim}-{name}-{d.short}{'-fused' if fused else ''}"
                    cases[tag] = (_program(prim, d, shape, axes, tr, fused),
                                  fused_form if fused else form)
        for d in (int32, int64):
            cases[f"reduce_max-{name}-{d.short}"] = (
                _program("reduce_max", d, shape, axes, tr, False), form)
        for prim in ("reduce_sum", "reduce_prod"):  # they overflow: wrap as numpy's do
            cases[f"{prim}-{name}-i64"] = (_program(prim, int64, shape, axes, tr, False), form)
    return cases


CASES = _cases()


def _values(shape, d, prim, specials: bool):
    if not d.is_floating_point:
        if prim == "reduce_sum" and d == int64:  # sums beyond the int64 range
            return RNG.integers(-2**62, 2**62, shape, dtype=np.int64)
        return RNG.integers(-1000, 1000, shape).astype(d.np)
    if prim == "reduce_prod":  # products of many numbers near 1 stay finite
        x = (1 + RNG.standard_normal(shape) * 1e-3).astype(d.np)
    else:
        x = (RNG.standard_normal(shape) * 3).astype(d.np)
    if specials and x.size >= 50:
        flat = x.reshape(-1)
        for v in SPECIALS:  # a few of each, anywhere
            flat[RNG.permutation(flat.size)[:3]] = v
    return x


@pytest.fixture(scope="module")
def built():
    from gradgen.runtime.compiler import CompilerNotFound  # noqa: PLC0415
    from gradgen.runtime.executor import build_programs  # noqa: PLC0415
    names = list(CASES)
    try:
        nb = build_programs([CASES[n][0] for n in names], 1)
    except CompilerNotFound:
        pytest.skip("no C compiler")
    return dict(zip(names, nb.executables))


def _forms(program) -> set[str]:
    src = render_module([build_schedule(program)], "forms").source
    found = set()
    if "_p[c]" in src:
        found.add("chunks")
    if "jb += " in src:
        found.add("columns")
    return found or {"rows"}


@pytest.mark.parametrize("name", list(CASES))
def test_form_is_chosen_from_the_layout(name):
    program, form = CASES[name]
    assert _forms(program) == {form}


@pytest.mark.cc
@pytest.mark.parametrize("specials", [False, True])
@pytest.mark.parametrize("name", list(CASES))
def test_reductions_match_interpreter(built, name, specials):
    program, _ = CASES[name]
    prim = name.split("-")[0]
    xs = [_values(v.aval.shape, v.aval.dtype, prim, specials) for v in program.inputs]
    with np.errstate(all="ignore"):
        want = run(program, *xs)
        got = built[name](*xs)
    for g, w in zip(got, want, strict=True):
        rtol = 1e-10 if w.dtype == np.float64 else 1e-4
        _check(g, w, rtol)


@pytest.mark.cc
@pytest.mark.parametrize("prim", ["reduce_max", "reduce_min"])
@pytest.mark.parametrize("d", [float32, float64])
@pytest.mark.parametrize("shape_name", ["rows", "columns", "chunks_1d"])
def test_max_min_nan_inf_and_signed_zero_rows(built, prim, d, shape_name):
    """Whole rows of NaN, of -inf/+inf, of zeros of both signs; one NaN among infinities."""
    name = f"{prim}-{shape_name}-{d.short}"
    program, _ = CASES[name]
    (v,) = program.inputs
    x = _values(v.aval.shape, d, prim, False)
    flat = x.reshape(-1)
    flat[:40] = np.nan
    flat[40:90] = -np.inf
    flat[90:140] = np.inf
    flat[140:200] = np.where(np.arange(60) % 2 == 0, -0.0, 0.0)
    flat[-1] = np.nan
    with np.errstate(all="ignore"):
        (want,) = run(program, x)
        (got,) = built[name](x)
    _check(got, want, 0.0)
    np.testing.assert_array_equal(got[got == 0], want[got == 0])  # zeros: value-equal


def test_max_min_vectorize():
    """The max/min accumulators carry an `omp simd` reduction (no scalar-only combiner)."""
    for prim, op in [("reduce_max", "max"), ("reduce_min", "min")]:
        program, _ = CASES[f"{prim}-rows-f32"]
        src = render_module([build_schedule(program)], "v").source
        assert f"reduction({op}:acc0) reduction(|:acc0n)" in src
        assert "!= v0" in src  # the NaN flag: the compare/select never lets NaN in


def _nan_canonical(a: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(a), np.nan, a).astype(a.dtype) if a.dtype.kind == "f" else a


@pytest.mark.cc
def test_results_do_not_depend_on_thread_count():
    """Chunked whole-array (large, and small with calls), column and row reductions: 1 thread
    (no thread pool) vs 2 threads, bitwise equal (any NaN equal to any NaN)."""
    from gradgen.runtime.compiler import CompilerNotFound, find_compiler  # noqa: PLC0415
    from gradgen.runtime.executor import build_programs  # noqa: PLC0415
    try:
        if not find_compiler().pthread:
            pytest.skip("the C compiler cannot build POSIX threads")
    except CompilerNotFound:
        pytest.skip("no C compiler")
    names = [n for n in CASES if n.endswith(("-f32", "-f32-fused")) and ("chunks" in n or
                                                                        "heavy" in n)
             or n.startswith("reduce_sum-columns-f32")]
    progs = [CASES[n][0] for n in names]
    xs = {n: [_values(v.aval.shape, v.aval.dtype, n.split("-")[0], True)
              for v in CASES[n][0].inputs] for n in names}
    old = gg.get_num_threads()
    try:
        gg.set_num_threads(1)
        one = build_programs(progs, 1).executables
        gg.set_num_threads(2)
        two = build_programs(progs, 2).executables
        with np.errstate(all="ignore"):
            for n, e1, e2 in zip(names, one, two):
                gg.set_num_threads(2)
                r2 = e2(*xs[n])
                gg.set_num_threads(1)
                r1 = e1(*xs[n])
                for a, b in zip(r1, r2, strict=True):
                    # NaN payloads and signs follow operand order (x86 keeps the first NaN;
                    # inf - inf makes a negative one): which NaN is not part of the result
                    assert _nan_canonical(a).tobytes() == _nan_canonical(b).tobytes(), n
    finally:
        gg.set_num_threads(old)
