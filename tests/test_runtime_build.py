"""Building C source into a shared object and calling it through cffi (gradgen.runtime)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from conftest import needs_cc

from gradgen.runtime import CompileError, CompilerNotFound, LoadError, find_compiler, load
import gradgen as gg
from gradgen.codegen import render
from gradgen.codegen.render import unit_groups
from gradgen.runtime.compiler import build_shared, resolve_compiler_argv
from gradgen.runtime.units import join_units, split_units





AXPY = """
#include <stdint.h>
void axpy_f32(const float *restrict x, const float *restrict y, float *restrict out, int64_t n)
{ for (int64_t i = 0; i < n; i++) out[i] = 2.5f * x[i] + y[i]; }
void axpy_f64(const double *restrict x, const double *restrict y, double *restrict out, int64_t n)
{ for (int64_t i = 0; i < n; i++) out[i] = 2.5 * x[i] + y[i]; }
"""
AXPY_DECL = """
void axpy_f32(const float *x, const float *y, float *out, int64_t n);
void axpy_f64(const double *x, const double *y, double *out, int64_t n);
"""


@pytest.fixture
def axpy(tmp_path):
    src = tmp_path / "axpy.c"
    src.write_text(AXPY)
    build_shared(find_compiler(), src, tmp_path / "axpy.so", threads=1)
    return load(tmp_path / "axpy.so", AXPY_DECL)


@pytest.mark.parametrize("dtype, fn", [(np.float32, "axpy_f32"), (np.float64, "axpy_f64")])
@pytest.mark.parametrize("how", ["ptr_of", "pointer"])
@pytest.mark.cc
@needs_cc
def test_build_and_call_matches_numpy(axpy, dtype, fn, how) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3, 5)).astype(dtype), rng.standard_normal((2, 3, 5)).astype(dtype)
    x[0, 0, :3] = [np.inf, np.nan, -0.0]
    out = np.empty_like(x)
    conv = getattr(axpy, how)
    getattr(axpy, fn)(conv(x), conv(y), conv(out), x.size)
    expected = dtype(2.5) * x + y  # numpy in the same dtype: must be bit-identical (no FMA)
    np.testing.assert_array_equal(out, expected)
    assert np.signbit(out[0, 0, 2]) == np.signbit(expected[0, 0, 2])


@pytest.mark.cc
@needs_cc
def test_functions_table_and_missing_function(axpy) -> None:
    assert set(axpy.functions) == {"axpy_f32", "axpy_f64"}
    with pytest.raises(AttributeError, match="no function 'nope'"):
        axpy.nope


@pytest.mark.cc
@needs_cc
def test_flags_are_ieee_safe() -> None:
    info = find_compiler()
    for threads in (1, 4):
        flags = info.flags(threads)
        assert "-ffast-math" not in flags and "-ffp-contract=off" in flags
        assert "-fno-math-errno" in flags and "-fopenmp-simd" in flags
        assert "-fopenmp" not in flags  # threads come from the modules' own pool
        assert ("-DGRADGEN_THREADS" in flags) == (threads > 1 and info.pthread)
    assert info.libs()[0] == "-lm" and ("-lmvec" in info.libs()) == info.mvec
    assert info.version and os.path.isabs(info.path)
    assert find_compiler() is info  # identified once per process


def test_cc_naming_a_missing_program(monkeypatch) -> None:
    monkeypatch.setenv("CC", "/nonexistent/bin/gradgen-no-cc")
    with pytest.raises(CompilerNotFound, match="gradgen-no-cc.*CC environment variable"):
        find_compiler()


def test_no_compiler_on_path(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CompilerNotFound, match="no C compiler found"):
        find_compiler()


@pytest.mark.cc
@needs_cc
def test_compiler_failure_is_a_compile_error(tmp_path) -> None:
    src = tmp_path / "bad.c"
    src.write_text("void broken(void) { this is not C; }\n")
    with pytest.raises(CompileError) as info:
        build_shared(find_compiler(), src, tmp_path / "bad.so", threads=1)
    err = info.value
    assert err.source_path == src and err.returncode != 0
    assert "error" in err.stderr and str(src) in str(err)
    assert not (tmp_path / "bad.so").exists()


def test_loading_garbage_is_a_load_error(tmp_path) -> None:
    bogus = tmp_path / "bogus.so"
    bogus.write_bytes(b"\x7fELF this is not a shared object")
    with pytest.raises(LoadError, match="cannot load"):
        load(bogus, "void f(void);")


@pytest.mark.cc
@needs_cc
def test_missing_declared_symbol_is_a_load_error(tmp_path) -> None:
    src = tmp_path / "one.c"
    src.write_text("void present(void) {}\n")
    build_shared(find_compiler(), src, tmp_path / "one.so", threads=1)
    with pytest.raises(LoadError, match="absent"):
        load(tmp_path / "one.so", "void present(void); void absent(void);")


@pytest.mark.skipif(shutil.which("false") is None, reason="needs `false`")
def test_compiler_that_cannot_identify_itself(monkeypatch) -> None:
    monkeypatch.setenv("CC", shutil.which("false"))
    with pytest.raises(CompilerNotFound, match="--version"):
        find_compiler()


# ---------------------------------------------------------------- modules of several units

def test_units_round_trip_and_damaged_markers() -> None:
    texts = ["int a;\n", "/* ==== not a marker */\nint b;\n", "int c;\n"]
    joined = join_units(texts)
    assert split_units(joined) == [(f"unit{i}.c", t) for i, t in enumerate(texts)]
    assert split_units("/*\n * one unit\n */\nint a;\n") is None
    swapped = joined.replace("unit 1 of 3", "unit 2 of 3", 1)
    with pytest.raises(ValueError, match="out of order"):
        split_units(swapped)
    with pytest.raises(ValueError):
        join_units(["int a;\n"])


@pytest.mark.parametrize("costs, cores, groups", [
    ([400, 300], 1, [[0, 1]]),                 # one core: one unit
    ([100, 100], 2, [[0, 1]]),                 # too small to pay for a second compiler
    ([900], 2, [[0]]),                         # one kernel cannot be split
    ([300, 50, 250, 60, 40], 2, [[0, 1], [2, 3, 4]]),  # longest first to the lighter unit
])
def test_unit_groups(costs, cores, groups) -> None:
    assert unit_groups(costs, cores) == groups


def _mlp(x, w, b, w2):
    h = gg.tanh(x @ w + b)
    z = h @ w2
    return (z * z).mean() + (h - h.mean(dim=1, keepdim=True)).sum()


def _mlp_results(monkeypatch, tmp_path, split: bool) -> tuple[list[np.ndarray], str]:
    monkeypatch.setenv("GRADGEN_CACHE_DIR", str(tmp_path / ("split" if split else "one")))
    monkeypatch.setattr(render, "SPLIT_COST", 0 if split else 10**9)
    monkeypatch.setattr(render, "usable_cores", lambda: 2)
    rng = np.random.default_rng(1)
    args = [gg.tensor(rng.standard_normal(s).astype(np.float32))
            for s in ((512, 256), (256, 256), (256,), (256, 10))]  # BLAS, tiles, the pool
    cf = gg.compile(gg.value_and_grad(_mlp, argnums=(0, 1, 2, 3)), fullgraph=True)
    value, grads = cf(*args)
    return [value.numpy(), *(g.numpy() for g in grads)], cf.inspect()[0]["c_source"]


@pytest.mark.cc
@needs_cc
def test_module_in_two_units_equals_one_unit(monkeypatch, tmp_path) -> None:
    one, one_src = _mlp_results(monkeypatch, tmp_path, split=False)
    two, two_src = _mlp_results(monkeypatch, tmp_path, split=True)
    assert split_units(one_src) is None and len(split_units(two_src)) == 2
    assert two_src.count("void gg_set_blas(void") == 1  # state defined once, in unit 0
    assert "void gg_parallel_for(gg_body_fn fn, void *arg, int64_t n);" in two_src  # shared pool
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)  # same kernels, same C: bit for bit
