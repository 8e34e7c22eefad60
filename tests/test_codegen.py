"""The C code generator: kernel schedule, golden C text, and compiled kernels vs the IR interpreter.

Execution tests compile every program of this file into one shared object (one
``cc`` run), load it with cffi's ABI mode and run each schedule's kernels, with
host ops as numpy calls, checking against ``gradgen.ir.interpreter.run``.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import gradgen as gg
from gradgen.ad import partition, vjp
from gradgen.codegen import HostOp, Kernel, View, build_schedule, render_module
from gradgen.codegen.clower import buffer_ctype, constant
from gradgen.dtypes import bool_, float32, float64, int32, int64
from gradgen.ir.builder import Builder
from gradgen.ir.interpreter import run
from gradgen.ir.parser import parse
from gradgen.ir.trace import trace
from gradgen.passes.pipeline import optimize

CC = shutil.which("cc") or shutil.which("gcc")
FLAGS = ["-O2", "-shared", "-fPIC", "-std=gnu11", "-fno-math-errno", "-ffp-contract=off",
         "-fopenmp-simd"]
RNG = np.random.default_rng(0)

# ---------------------------------------------------------------- programs under test

UNARY = ["neg", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh", "logistic", "erf",
         "abs", "sign", "stop_gradient"]
BINARY = ["add", "sub", "mul", "div", "pow", "max", "min"]
COMPARE = ["lt", "le", "gt", "ge", "eq", "ne"]
SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-30]


def _values(shape, d, specials=True):
    if d is bool_:
        return RNG.random(shape) < 0.5
    if not d.is_floating_point:
        return RNG.integers(-50, 50, shape).astype(d.np)
    x = (RNG.standard_normal(shape) * 2).astype(d.np)
    if specials and x.size >= len(SPECIALS):
        x.reshape(-1)[RNG.permutation(x.size)[:len(SPECIALS)]] = SPECIALS
    return x


def _elementwise_case(prim: str, d, arity: int):
    """prim over x[3,4], a broadcast row [4] and a transposed [4,3] input."""
    b = Builder()
    x = b.input((3, 4), d)
    row = b.input((4,), d)
    col = b.input((4, 3), d)
    y = b.add("broadcast_in_dim", row, shape=(3, 4), dims=(1,))
    z = b.add("transpose", col, perm=(1, 0))
    ops = [z, x, y][:arity] if arity < 3 else [b.add("lt", x, y), x, z]
    out = b.add(prim, *ops)
    return b.build([out, b.add(prim, *([x, y][:arity]))] if arity < 3 else [out])


def _cases():
    cases = {}
    for d in (float32, float64):
        for p in UNARY:
            cases[f"{p}-{d.short}"] = (_elementwise_case(p, d, 1), "ew")
        for p in BINARY + COMPARE:
            cases[f"{p}-{d.short}"] = (_elementwise_case(p, d, 2), "ew")
        cases[f"select-{d.short}"] = (_elementwise_case("select", d, 3), "ew")
    for d in (int32, int64):
        for p in ["add", "sub", "mul", "neg", "abs", "sign", "max", "min", "lt", "eq"]:
            arity = 1 if p in ("neg", "abs", "sign") else 2
            cases[f"{p}-{d.short}"] = (_elementwise_case(p, d, arity), "ew")
    for p in ["and", "or", "not"]:
        cases[f"{p}-bool"] = (_elementwise_case(p, bool_, 1 if p == "not" else 2), "ew")
    for src, dst in [(float32, float64), (float64, float32), (int64, float32), (float32, bool_),
                     (bool_, float64), (int32, int64)]:
        b = Builder()
        x = b.input((3, 4), src)
        t = b.add("transpose", x, perm=(1, 0))
        cases[f"convert-{src.short}-{dst.short}"] = (
            b.build([b.add("convert", t, dtype=dst)]), "ew")
    for d in (float32, float64):
        for p in ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod"]:
            for axes in [(0,), (1,), (0, 2), (0, 1, 2), (2,)]:
                cases[f"{p}{axes}-{d.short}"] = (_reduction_case(p, d, axes), "red")
    return cases


def _reduction_case(prim: str, d, axes):
    """prim(tanh(x) * y) over axes of [2,3,4], y a transposed [4,3,2] input; also prim(x)."""
    b = Builder()
    x = b.input((2, 3, 4), d)
    yt = b.input((4, 3, 2), d)
    y = b.add("transpose", yt, perm=(2, 1, 0))
    prod = b.add("mul", b.add("tanh", x), y)
    return b.build([b.add(prim, prod, axes=axes), b.add(prim, x, axes=axes)])


def _chain(x, w, b):
    return (gg.tanh(x * w + b) * gg.sigmoid(x) + gg.exp(-x * x)).sum()


def _mse(x, y):
    return ((x - y) ** 2).mean()


def _leaky(x, w):
    h = x * w
    return gg.where(h > 0, h, 0.1 * h).sum(dim=1).max()


def _logsumexp(x):
    m = x.amax(dim=1, keepdim=True)
    return (gg.log(gg.exp(x - m).sum(dim=1)) + m.squeeze(1)).sum()


def _mlp(x, w, b):
    return gg.relu(x @ w + b).sum()


CORPUS = {"chain": (_chain, [(6, 5), (5,), (5,)]), "mse": (_mse, [(4, 5), (4, 5)]),
          "leaky": (_leaky, [(3, 4), (4,)]), "logsumexp": (_logsumexp, [(3, 4)]),
          "mlp": (_mlp, [(3, 4), (4, 2), (2,)])}


def _corpus_cases():
    cases = {}
    for name, (fn, shapes) in CORPUS.items():
        for d in (np.float32, np.float64):
            args = [gg.from_numpy(RNG.standard_normal(s).astype(d)).requires_grad_() for s in shapes]
            prog = trace(fn, *args)
            part = partition(vjp(prog, tuple(range(len(args)))))
            tag = np.dtype(d).name
            cases[f"{name}-{tag}-fwd"] = (optimize(part.forward), "fwd")
            cases[f"{name}-{tag}-bwd"] = (optimize(part.backward), "bwd")
    return cases


CASES = {**_cases(), **_corpus_cases()}


# ---------------------------------------------------------------- compiling and running

def _compile(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler")
    names = list(CASES)
    scheds = [build_schedule(CASES[n][0]) for n in names]
    module = render_module(scheds, cache_key="test", prefixes=[f"c{k}_" for k in range(len(names))])
    d = tmp_path_factory.mktemp("codegen")
    src, lib = d / "m.c", d / "m.so"
    src.write_text(module.source)
    libs = ["-lmvec", "-lm"]
    r = subprocess.run([CC, *FLAGS, "-o", str(lib), str(src), *libs], capture_output=True, text=True)
    if r.returncode != 0 and "mvec" in r.stderr:
        r = subprocess.run([CC, *FLAGS, "-o", str(lib), str(src), "-lm"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:4000]
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(module.cdef)
    return ffi, ffi.dlopen(str(lib)), module, dict(zip(names, scheds))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return _compile(tmp_path_factory)


def _array(view: View, mem: dict) -> np.ndarray:
    base = mem[view.buffer] if view.buffer.kind != "const" else view.buffer.value
    base = np.ascontiguousarray(base)
    return np.lib.stride_tricks.as_strided(base, view.shape,
                                           tuple(s * base.itemsize for s in view.strides))


def execute(compiled, name: str, inputs: list) -> list:
    """Run one schedule: kernels through cffi, host ops as the primitive's numpy implementation."""
    ffi, lib, module, scheds = compiled
    sched = scheds[name]
    prefix = f"c{list(scheds).index(name)}_"
    mem = {b: np.ascontiguousarray(x) for b, x in zip(sched.inputs, inputs)}
    for step in sched.steps:
        if isinstance(step, Kernel):
            for buf in step.stores.values():
                mem[buf] = np.empty(buf.var.aval.shape, buf.var.aval.dtype.np)
            args = []
            for buf in module.args[prefix + step.name]:
                arr = np.ascontiguousarray(buf.value) if buf.kind == "const" else mem[buf]
                args.append(ffi.from_buffer(f"{buffer_ctype(buf.var.aval.dtype)}[]", arr))
            getattr(lib, prefix + step.name)(*args)
        else:
            ins = [_array(a, mem) if isinstance(a, View) else a.value for a in step.inputs]
            mem[step.output] = np.asarray(step.eqn.prim.impl(*ins, **step.eqn.params))
    return [_array(o, mem) if isinstance(o, View) else o.value for o in sched.outputs]


def _inputs(program):
    return [_values(v.aval.shape, v.aval.dtype) for v in program.inputs]


def _check(got, want, rtol):
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=rtol)


def _rtol(dtype, kind):
    if dtype != np.float32:
        return 1e-10
    return 1e-5 if kind == "ew" else 1e-4


@pytest.mark.cc
@pytest.mark.parametrize("name", [n for n, (_, k) in CASES.items() if k in ("ew", "red")])
def test_kernels_match_interpreter(compiled, name):
    program, kind = CASES[name]
    xs = _inputs(program)
    with np.errstate(all="ignore"):
        want = run(program, *xs)
        got = execute(compiled, name, xs)
    for g, w in zip(got, want, strict=True):
        _check(g, w, _rtol(w.dtype, kind))


@pytest.mark.cc
@pytest.mark.parametrize("name", [n for n in CORPUS])
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_corpus_forward_and_backward(compiled, name, dt):
    fwd = CASES[f"{name}-{dt}-fwd"][0]
    bwd = CASES[f"{name}-{dt}-bwd"][0]
    xs = [_values(v.aval.shape, v.aval.dtype, specials=False) for v in fwd.inputs]
    want_f = run(fwd, *xs)
    got_f = execute(compiled, f"{name}-{dt}-fwd", xs)
    for g, w in zip(got_f, want_f, strict=True):
        _check(g, w, _rtol(w.dtype, "red"))
    # The backward reads saved inputs, residuals and cotangents: feed it the interpreter's values.
    bx = [_values(v.aval.shape, v.aval.dtype, specials=False) for v in bwd.inputs]
    want_b = run(bwd, *bx)
    got_b = execute(compiled, f"{name}-{dt}-bwd", bx)
    for g, w in zip(got_b, want_b, strict=True):
        _check(g, w, _rtol(w.dtype, "red"))


# ---------------------------------------------------------------- schedule and text

def test_chain_then_sum_is_one_kernel():
    x = gg.randn(8, 5, requires_grad=True)
    w, b = gg.randn(5), gg.randn(5)
    sched = build_schedule(optimize(trace(_chain, x, w, b)))
    assert len(sched.kernels) == 1 and not [s for s in sched.steps if isinstance(s, HostOp)]
    (k,) = sched.kernels
    assert k.red_axes == (0, 1)
    assert len(k.loads) == 3  # x, and w and b through broadcasts: each read in the one loop


def test_matmul_is_a_kernel():
    """relu(x @ w + b).sum(): a matmul kernel, then one kernel reading the product once for
    the bias add, relu and sum (a reduction is no epilogue; see test_codegen_matmul.py)."""
    sched = build_schedule(CASES["mlp-float32-fwd"][0])
    assert [type(s).__name__ for s in sched.steps] == ["Kernel", "Kernel"]
    gemm, rest = sched.steps
    assert gemm.gemm is not None and gemm.eqns == [gemm.gemm]
    assert [e.prim.name for e in rest.eqns][-1] == "reduce_sum" and len(rest.eqns) >= 3


@pytest.mark.parametrize("value, d, text", [
    (0.1, float64, "0x1.999999999999ap-4"), (np.float32(0.1), float32, "0x1.99999a0000000p-4f"),
    (-0.0, float64, "-0x0.0p+0"), (np.inf, float32, "INFINITY"), (-np.inf, float64, "((double)-INFINITY)"),
    (np.nan, float32, "NAN"), (np.float32(1e-45), float32, "0x1.0000000000000p-149f"),
    (-2**63, int64, "INT64_MIN"), (7, int32, "INT32_C(7)"), (True, bool_, "1")])
def test_constants_are_exact(value, d, text):
    assert constant(value, d) == text


def test_no_user_string_reaches_the_c_text():
    b = Builder()
    x = b.input((2,), float32, name="secret_name")
    y = b.add("exp", x, loc="/home/u/ev il*/x.py:3 */ int bad;")
    src = render_module([build_schedule(b.build([y]))], cache_key="k*/ oops").source
    assert "secret_name" not in src and "ev il" not in src and "bad;" not in src
    assert src.count("*/") == src.count("/*")  # no comment is ended early
    assert "# _int_bad_" in src  # the location: its last path part, sanitized


GOLDEN_PROGRAM = """def (%x:f64[2,3], %b:f64[3], %m:bool[3,2]):
  %0:f64[2,3] = broadcast_in_dim[dims=(1,), shape=(2, 3)] %b  # m.py:7
  %1:f64[2,3] = sub %x, %0  # m.py:7
  %2:f64[2,3] = max %1, -0.0:f64  # m.py:8
  %3:bool[2,3] = transpose[perm=(1, 0)] %m  # m.py:9
  %4:f64[2,3] = select %3, %2, inf:f64  # m.py:9
  %5:f64[2] = reduce_sum[axes=(1,)] %4  # m.py:10
  return %4, %5"""

GOLDEN_C = '''
/*
 * kernel_0: reduction over [2,3], reducing axes (1).
 * IR equations:
 *   %4:f64[2,3] = sub %0, %3  # m.py:7
 *   %5:f64[2,3] = max %4, -0.0:f64  # m.py:8
 *   %7:f64[2,3] = select %6, %5, inf:f64  # m.py:9
 *   %8:f64[2] = reduce_sum[axes=(1,)] %7  # m.py:10
 * Source lines: m.py:7, m.py:8, m.py:9, m.py:10
 */
void kernel_0(const double *restrict p0, const double *restrict p1, const uint8_t *restrict p2, double *restrict p7, double *restrict p8)
{
    for (int64_t i0 = 0; i0 < 2; i0++) {
        double acc0 = 0;
        #pragma omp simd reduction(+:acc0)
        for (int64_t i1 = 0; i1 < 3; i1++) {
            const double v0 = p0[i0 * 3 + i1];
            const double v3 = p1[i1];
            const bool v6 = p2[i0 + i1 * 2];
            const double v4 = (v0 - v3);
            const double v5 = ((v4 > -0x0.0p+0 || v4 != v4) ? v4 : -0x0.0p+0);
            const double v7 = gg_select_double(v6, v5, ((double)INFINITY));
            acc0 = (acc0 + v7);
            p7[i0 * 3 + i1] = v7;
        }
        p8[i0] = (double)acc0;
    }
}
'''


def test_golden_c():
    src = render_module([build_schedule(parse(GOLDEN_PROGRAM))], cache_key="golden").source
    assert src.startswith("/*\n * Generated by gradgen ")
    assert " * Cache key: golden\n" in src
    assert " *     %6:bool[2,3] = transpose[perm=(1, 0)] %2  # m.py:9\n" in src
    assert src.endswith(GOLDEN_C), src
    assert "#pragma omp declare simd" not in src  # no libm call here


def test_golden_libm_declarations():
    b = Builder()
    x = b.input((4,), float32)
    src = render_module([build_schedule(b.build([b.add("log", b.add("sqrt", x))]))], "k").source
    assert "#pragma omp declare simd notinbranch\nextern float logf(float);\n" in src
    assert "sqrtf(float)" not in src  # libmvec has no sqrt: never declared simd
    assert "gg_expf" not in src  # vecmath's functions come only where used


def test_golden_vecmath_functions():
    """float32 exp and tanh call vecmath's inline functions (no libmvec declaration), defined
    once per module, each only where used; float64 keeps libm (declared simd)."""
    b = Builder()
    x = b.input((4,), float32)
    src = render_module([build_schedule(b.build([b.add("tanh", b.add("exp", x))]))], "k").source
    assert "= gg_expf(v0);" in src and "= gg_tanhf(v1);" in src
    assert src.count("static inline float gg_expf(float x)") == 1
    assert src.count("static inline float gg_tanhf(float x)") == 1
    assert "extern float expf(float)" not in src and "extern float tanhf(float)" not in src
    b = Builder()
    x = b.input((4,), float32)
    src = render_module([build_schedule(b.build([b.add("exp", x)]))], "k").source
    assert "gg_expf(" in src and "gg_tanhf" not in src
    b = Builder()
    x = b.input((4,), float64)
    src = render_module([build_schedule(b.build([b.add("tanh", x)]))], "k").source
    assert "extern double tanh(double);" in src and "gg_" + "tanhf" not in src
